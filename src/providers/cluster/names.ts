// Where a source pod lives in the target cluster, and the labels and annotations that record
// whose it is, so ownership is read, never guessed. A target pod carries the source node
// (label: what our watch selects), the source UID (label) and the source namespace and name
// (annotations).
import { createHash } from 'node:crypto';
import type { ObjectMeta } from '../../kube/types.ts';
import type { ClusterConfig } from './config.ts';

const PREFIX = 'cluster.virtual-kubelet.io';
export const LABEL_NODE = `${PREFIX}/source-node`;
export const LABEL_UID = `${PREFIX}/source-uid`;
export const ANNOTATION_NAMESPACE = `${PREFIX}/source-namespace`;
export const ANNOTATION_NAME = `${PREFIX}/source-name`;
/** The source pod's tolerations (the target pod gets the configured ones instead). */
export const ANNOTATION_TOLERATIONS = `${PREFIX}/source-tolerations`;
/** A source pod condition: a target pod was created for it (what tells a lost target pod from one never made). */
export const CONDITION_TARGET_POD = `${PREFIX}/TargetPodCreated`;
/** On namespaces the provider created. */
export const LABEL_MANAGED = `${PREFIX}/managed`;

const OURS = new Set([LABEL_NODE, LABEL_UID, ANNOTATION_NAMESPACE, ANNOTATION_NAME, ANNOTATION_TOLERATIONS]);

export interface SourceRef {
  namespace: string;
  name: string;
  uid: string;
}

export interface TargetRef {
  namespace: string;
  name: string;
}

/** Maps source namespaces and names to target ones; deterministic, so a restart finds the same names. */
export class NameMapping {
  private readonly config: ClusterConfig['namespaces'];
  /** Target namespaces that more than one source namespace maps to: names there get a hash suffix. */
  private readonly shared: Set<string>;

  constructor(config: ClusterConfig['namespaces']) {
    this.config = config;
    const counts = new Map<string, number>();
    for (const target of Object.values(config.map)) counts.set(target, (counts.get(target) ?? 0) + 1);
    this.shared = new Set([...counts].filter(([, n]) => n > 1).map(([ns]) => ns));
  }

  /** False when the config does not let this source namespace burst. */
  allows(namespace: string): boolean {
    return this.config.allow.length === 0 || this.config.allow.includes(namespace);
  }

  namespace(sourceNamespace: string): string {
    return this.config.map[sourceNamespace] ?? `${this.config.prefix}${sourceNamespace}`;
  }

  target(namespace: string, name: string): TargetRef {
    const targetNamespace = this.namespace(namespace);
    if (!this.shared.has(targetNamespace)) return { namespace: targetNamespace, name };
    // Several source namespaces share this one: the same name from two of them must not collide.
    const suffix = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 10);
    return { namespace: targetNamespace, name: `${name.slice(0, 253 - 11)}-${suffix}` };
  }
}

/** Names of the objects made for one target pod: `<pod>-<kind><n>` shortened with a hash when too long. */
export function dependentName(podName: string, part: string): string {
  const name = `${podName}-${part}`;
  if (name.length <= 253) return name;
  return `${podName.slice(0, 200)}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}-${part}`.slice(0, 253);
}

export function ownership(nodeName: string, source: SourceRef): { labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    labels: { [LABEL_NODE]: nodeName, [LABEL_UID]: source.uid },
    annotations: { [ANNOTATION_NAMESPACE]: source.namespace, [ANNOTATION_NAME]: source.name },
  };
}

/** The source pod a target object belongs to, or undefined when it is not one of this node's. */
export function sourceOf(meta: ObjectMeta | undefined, nodeName: string): SourceRef | undefined {
  const uid = meta?.labels?.[LABEL_UID];
  const namespace = meta?.annotations?.[ANNOTATION_NAMESPACE];
  const name = meta?.annotations?.[ANNOTATION_NAME];
  if (meta?.labels?.[LABEL_NODE] !== nodeName || !uid || !namespace || !name) return undefined;
  return { namespace, name, uid };
}

/** Labels or annotations without ours; undefined when nothing is left (as the source pod would have it). */
export function withoutOurs(map: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!map) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(map)) if (!OURS.has(key)) out[key] = value;
  return Object.keys(out).length > 0 ? out : undefined;
}
