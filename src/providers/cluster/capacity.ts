// The virtual node's capacity from the target cluster: the allocatable of its Ready nodes, minus
// what pods that are not ours request there, each resource capped by the config.
import type { KubeClient } from '../../kube/client.ts';
import { milliValue, parseQuantity } from '../../kube/quantity.ts';
import type { Node, ObjectList, Pod } from '../../kube/types.ts';
import { LABEL_NODE } from './names.ts';

/** Free resources in thousandths (milli-units), by resource name. */
type Milli = Map<string, bigint>;

function add(into: Milli, resources: Record<string, string> | undefined, sign: 1n | -1n): void {
  for (const [name, text] of Object.entries(resources ?? {})) {
    try {
      into.set(name, (into.get(name) ?? 0n) + sign * milliValue(parseQuantity(text)));
    } catch {
      // A malformed quantity in someone else's object is not ours to fail on.
    }
  }
}

/** A pod's effective requests as the scheduler counts them: max(sum of containers, each init container). */
function podRequests(pod: Pod): Milli {
  const sum: Milli = new Map();
  for (const c of pod.spec?.containers ?? []) add(sum, c.resources?.requests as Record<string, string> | undefined, 1n);
  for (const c of pod.spec?.initContainers ?? []) {
    const init: Milli = new Map();
    add(init, c.resources?.requests as Record<string, string> | undefined, 1n);
    for (const [name, v] of init) if (v > (sum.get(name) ?? 0n)) sum.set(name, v);
  }
  add(sum, pod.spec?.overhead as Record<string, string> | undefined, 1n);
  sum.set('pods', 1000n);
  return sum;
}

function format(name: string, milli: bigint): string {
  if (milli < 0n) milli = 0n;
  if (name === 'cpu') return `${milli}m`;
  return milli % 1000n === 0n ? String(milli / 1000n) : `${milli}m`;
}

/** Reads the target's nodes and pods; `cap` bounds each resource. */
export async function targetCapacity(client: KubeClient, nodeName: string, cap: Record<string, string>, signal: AbortSignal): Promise<Record<string, string>> {
  const [nodes, pods] = await Promise.all([
    client.list<ObjectList<Node>>('/api/v1/nodes', { signal }),
    client.list<ObjectList<Pod>>('/api/v1/pods', { query: { fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' }, signal }),
  ]);
  const free: Milli = new Map();
  const ready = new Set<string>();
  for (const node of nodes.items) {
    if (node.spec?.unschedulable) continue;
    if (!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) continue;
    ready.add(node.metadata?.name ?? '');
    add(free, node.status?.allocatable as Record<string, string> | undefined, 1n);
  }
  for (const pod of pods.items) {
    if (pod.metadata?.labels?.[LABEL_NODE] === nodeName) continue; // ours: they run on our capacity
    if (!pod.spec?.nodeName || !ready.has(pod.spec.nodeName)) continue;
    for (const [name, v] of podRequests(pod)) if (free.has(name)) free.set(name, free.get(name)! - v);
  }
  for (const [name, text] of Object.entries(cap)) {
    const limit = milliValue(parseQuantity(text));
    if (!free.has(name) || free.get(name)! > limit) free.set(name, limit);
  }
  const out: Record<string, string> = {};
  for (const [name, milli] of free) out[name] = format(name, milli);
  return out;
}
