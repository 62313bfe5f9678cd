// Stats of our pods as the target cluster measures them, for the virtual node's /stats/summary
// and /metrics/resource. metrics.k8s.io when the target serves it (one list of our pods, by
// label; usage rates only), else the Summary API of each target node that runs our pods:
// through the target API's node proxy, or, when kube-apiserver will not proxy to that node
// (it refuses loopback and link-local node addresses), straight from the node's kubelet port
// with our target credentials. Target pods map back to source pods by their ownership labels.
import https from 'node:https';
import { KubeApiError, VkError, errorMessage } from '../../errors.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { Node, ObjectList, Pod } from '../../kube/types.ts';
import { ceilDiv, parseQuantity } from '../../kube/quantity.ts';
import type { Summary } from '../../kubelet-api/stats.ts';
import type { Logger } from '../../log.ts';
import type { ContainerStats, PodStats } from '../provider.ts';
import { LABEL_NODE, sourceOf } from './names.ts';

/** A metrics.k8s.io PodMetrics, the fields we read. */
export interface PodMetrics {
  metadata?: { name?: string; namespace?: string };
  containers?: { name: string; usage?: Record<string, string> }[];
}

type NodeRoute = 'proxy' | 'direct';

export class TargetStats {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  /** Whether the target serves metrics.k8s.io: undefined until asked. */
  private metricsApi: boolean | undefined;
  /** How each target node's summary was last read successfully. */
  private readonly routes = new Map<string, NodeRoute>();

  constructor(client: KubeClient, nodeName: string, timeoutMs: number, log: Logger) {
    this.client = client;
    this.nodeName = nodeName;
    this.timeoutMs = timeoutMs;
    this.log = log;
  }

  /** Stats of the running target pods in `pods` (our view of the target), keyed by their source pods. */
  async collect(pods: Pod[]): Promise<PodStats[]> {
    const running = pods.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName);
    if (running.length === 0) return [];
    if (this.metricsApi !== false) {
      try {
        const list = await this.client.list<ObjectList<PodMetrics>>('/apis/metrics.k8s.io/v1beta1/pods', {
          query: { labelSelector: `${LABEL_NODE}=${this.nodeName}` },
          timeoutMs: this.timeoutMs,
        });
        this.metricsApi = true;
        return fromPodMetrics(list.items, running, this.nodeName);
      } catch (err) {
        // Not served (404), not ours to read (403), or its backend down for now (503): the node summaries.
        if (!(err instanceof KubeApiError && [403, 404, 503].includes(err.status))) throw err;
        if (this.metricsApi === undefined)
          this.log.info({ err: errorMessage(err) }, "metrics.k8s.io not usable in the target; reading its nodes' /stats/summary");
        this.metricsApi = err.status === 503 ? undefined : false;
      }
    }
    const nodes = [...new Set(running.map((p) => p.spec!.nodeName!))];
    const summaries = await Promise.all(
      nodes.map((node) =>
        this.summary(node).catch((err: unknown) => {
          this.log.debug({ node, err: errorMessage(err) }, 'target node summary not readable');
          return undefined;
        }),
      ),
    );
    return fromSummaries(
      summaries.filter((s): s is Summary => s !== undefined),
      running,
      this.nodeName,
    );
  }

  private async summary(node: string): Promise<Summary> {
    if (this.routes.get(node) !== 'direct') {
      try {
        const summary = await this.client.get<Summary>(`/api/v1/nodes/${encodeURIComponent(node)}/proxy/stats/summary`, { timeoutMs: this.timeoutMs });
        this.routes.set(node, 'proxy');
        return summary;
      } catch (err) {
        if (this.routes.get(node) === 'proxy') throw err;
        this.log.debug({ node, err: errorMessage(err) }, 'the target API does not proxy to this node; reading its kubelet port directly');
      }
    }
    const summary = await this.direct(node);
    this.routes.set(node, 'direct');
    return summary;
  }

  /** GET https://<node address>:<kubelet port>/stats/summary with our target credentials. */
  private async direct(nodeName: string): Promise<Summary> {
    const node = await this.client.get<Node>(`/api/v1/nodes/${encodeURIComponent(nodeName)}`, { timeoutMs: this.timeoutMs });
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    const addresses = node.status?.addresses ?? [];
    const address = (addresses.find((a) => a.type === 'InternalIP') ?? addresses.find((a) => a.type === 'Hostname'))?.address;
    if (!port || !address) throw new VkError('VK_PROVIDER', `target node ${nodeName} publishes no kubelet address and port`);
    const { cert, key } = this.client.config.tls;
    const authorization = await this.client.config.authorization();
    const host = address.includes(':') ? `[${address}]` : address;
    return await new Promise<Summary>((resolve, reject) => {
      // As kube-apiserver without --kubelet-certificate-authority: the kubelet's serving certificate is not verified.
      const req = https.get(
        `https://${host}:${port}/stats/summary`,
        { cert, key, rejectUnauthorized: false, agent: false, headers: authorization ? { Authorization: authorization } : {}, timeout: this.timeoutMs },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            if (res.statusCode !== 200) reject(new VkError('VK_PROVIDER', `target node ${nodeName} /stats/summary: ${res.statusCode} ${body.slice(0, 200)}`));
            else {
              try {
                resolve(JSON.parse(body) as Summary);
              } catch (err) {
                reject(new VkError('VK_PROVIDER', `target node ${nodeName} /stats/summary: ${errorMessage(err)}`));
              }
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new VkError('VK_TIMEOUT', `target node ${nodeName} /stats/summary: no answer in ${this.timeoutMs} ms`)));
      req.on('error', reject);
    });
  }
}

/** Summary pods that are ours (by target UID), as source pods' stats. */
export function fromSummaries(summaries: Summary[], running: Pod[], nodeName: string): PodStats[] {
  const byUid = new Map(running.map((p) => [p.metadata?.uid ?? '', p]));
  const out: PodStats[] = [];
  for (const summary of summaries) {
    for (const pod of summary.pods ?? []) {
      const target = byUid.get(pod.podRef.uid);
      const source = target && sourceOf(target.metadata, nodeName);
      if (!source) continue;
      const containers: ContainerStats[] = (pod.containers ?? []).map((c) => ({
        name: c.name,
        ...(c.cpu?.usageNanoCores !== undefined && { cpuUsageNanoCores: c.cpu.usageNanoCores }),
        ...(c.cpu?.usageCoreNanoSeconds !== undefined && { cpuUsageCoreNanoSeconds: c.cpu.usageCoreNanoSeconds }),
        ...(c.memory?.workingSetBytes !== undefined && { memoryWorkingSetBytes: c.memory.workingSetBytes }),
        ...(c.memory?.usageBytes !== undefined && { memoryUsageBytes: c.memory.usageBytes }),
      }));
      out.push({ namespace: source.namespace, name: source.name, uid: source.uid, containers });
    }
  }
  return out;
}

/** metrics.k8s.io PodMetrics of our pods (by target namespace/name), as source pods' stats. */
export function fromPodMetrics(items: PodMetrics[], running: Pod[], nodeName: string): PodStats[] {
  const byName = new Map(running.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p]));
  const out: PodStats[] = [];
  for (const item of items) {
    const target = byName.get(`${item.metadata?.namespace}/${item.metadata?.name}`);
    const source = target && sourceOf(target.metadata, nodeName);
    if (!source) continue;
    const containers = (item.containers ?? []).map((c) => {
      const cpu = quantity(c.usage?.cpu, 1_000_000_000n);
      const memory = quantity(c.usage?.memory, 1n);
      return {
        name: c.name,
        ...(cpu !== undefined && { cpuUsageNanoCores: cpu }),
        ...(memory !== undefined && { memoryWorkingSetBytes: memory }),
      };
    });
    out.push({ namespace: source.namespace, name: source.name, uid: source.uid, containers });
  }
  return out;
}

function quantity(text: string | undefined, scale: bigint): number | undefined {
  if (!text) return undefined;
  try {
    const q = parseQuantity(text);
    return Number(ceilDiv(q.num * scale, q.den));
  } catch {
    return undefined;
  }
}
