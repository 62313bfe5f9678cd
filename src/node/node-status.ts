// Pure construction of the Node object and its status, so every rule is unit-testable.
import type { Node, NodeCondition, NodeStatus, NodeSystemInfo, Taint } from '../kube/types.ts';
import type { NodeConfig } from '../providers/provider.ts';
import { rfc3339 } from '../version.ts';
import { goArch } from '../util/platform.ts';

export interface NodeIdentity {
  nodeName: string;
  providerName: string;
  nodeIP: string;
  kubeletPort: number;
  kubeletVersion: string;
  /** Labels from flags or config; they override defaults and provider labels. */
  labels: Record<string, string>;
  /** Taints from flags or config; undefined means the default provider taint. */
  taints?: Taint[];
  /** The OS from --os: wins over the provider's, labelled with both the GA and the beta key. */
  operatingSystem?: string;
}

export interface Health {
  ready: boolean;
  reason: string;
  message: string;
}

/** Annotations recording which taint and label keys this process set, so a restart can replace exactly those. */
export const MANAGED_TAINTS_ANNOTATION = 'virtual-kubelet.io/managed-taint-keys';
export const MANAGED_LABELS_ANNOTATION = 'virtual-kubelet.io/managed-label-keys';

/** Our labels as a merge patch: labels we set before and no longer want are removed (null). */
export function labelPatch(desired: Record<string, string>, previouslyManaged: string[]): Record<string, string | null> {
  const patch: Record<string, string | null> = { ...desired };
  for (const key of previouslyManaged) if (!(key in desired)) patch[key] = null;
  return patch;
}

export function managedAnnotations(labels: Record<string, string>, taints: Taint[]): Record<string, string> {
  return {
    [MANAGED_TAINTS_ANNOTATION]: JSON.stringify(taints.map((t) => t.key)),
    [MANAGED_LABELS_ANNOTATION]: JSON.stringify(Object.keys(labels)),
  };
}

export const FALLBACK_CAPACITY: Record<string, string> = { cpu: '20', memory: '100Gi', pods: '110', 'ephemeral-storage': '100Gi' };

export function defaultTaint(providerName: string): Taint {
  return { key: 'virtual-kubelet.io/provider', value: providerName, effect: 'NoSchedule' };
}

export function desiredLabels(id: NodeIdentity, config: NodeConfig): Record<string, string> {
  return {
    type: 'virtual-kubelet',
    'kubernetes.io/role': 'agent',
    'kubernetes.io/os': config.operatingSystem ?? 'linux',
    'kubernetes.io/arch': config.architecture ?? goArch(),
    'kubernetes.io/hostname': id.nodeName,
    ...config.labels,
    // Older manifests (and upstream's Windows examples) still select on the beta key.
    ...(id.operatingSystem && { 'kubernetes.io/os': id.operatingSystem, 'beta.kubernetes.io/os': id.operatingSystem }),
    ...id.labels,
  };
}

/** The provider's nodeInfo without its empty strings, which would blank the core's defaults. */
function providerNodeInfo(config: NodeConfig): Partial<NodeSystemInfo> {
  return Object.fromEntries(Object.entries(config.nodeInfo ?? {}).filter(([, value]) => value !== '' && value !== undefined));
}

export function desiredTaints(id: NodeIdentity, config: NodeConfig): Taint[] {
  return [...(id.taints ?? [defaultTaint(id.providerName)]), ...(config.taints ?? [])];
}

/**
 * Merges our taints into the Node's current ones: taints we set before (by key, from the
 * annotation) are replaced, taints others added (cordon, node lifecycle controller) are kept.
 */
export function mergeTaints(current: Taint[] | undefined, previouslyManaged: string[], desired: Taint[]): Taint[] {
  const ours = new Set([...previouslyManaged, ...desired.map((t) => t.key)]);
  return [...(current ?? []).filter((t) => !ours.has(t.key)), ...desired];
}

const PRESSURE_CONDITIONS: [type: string, reason: string, message: string][] = [
  ['MemoryPressure', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
  ['DiskPressure', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
  ['PIDPressure', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
  ['NetworkUnavailable', 'RouteCreated', 'virtual kubelet network is managed by the provider'],
];

/** Conditions for now; lastTransitionTime moves only when a condition's status changes. */
export function desiredConditions(health: Health, config: NodeConfig, previous: NodeCondition[] | undefined, now: Date): NodeCondition[] {
  const time = rfc3339(now);
  const ready: NodeCondition = {
    type: 'Ready',
    status: health.ready ? 'True' : 'False',
    reason: health.reason,
    message: health.message,
    lastHeartbeatTime: time,
    lastTransitionTime: time,
  };
  const conditions: NodeCondition[] = [
    ready,
    ...PRESSURE_CONDITIONS.map(([type, reason, message]) => ({ type, status: 'False', reason, message, lastHeartbeatTime: time, lastTransitionTime: time })),
  ];
  for (const extra of config.conditions ?? []) {
    const index = conditions.findIndex((c) => c.type === extra.type);
    const condition = { ...extra, lastHeartbeatTime: time, lastTransitionTime: time };
    if (index >= 0) conditions[index] = condition;
    else conditions.push(condition);
  }
  for (const condition of conditions) {
    const before = previous?.find((c) => c.type === condition.type);
    if (before?.status === condition.status && before.lastTransitionTime) condition.lastTransitionTime = before.lastTransitionTime;
  }
  return conditions;
}

export function desiredStatus(id: NodeIdentity, config: NodeConfig, health: Health, previous: NodeStatus | undefined, now: Date): NodeStatus {
  const capacity = { ...FALLBACK_CAPACITY, ...config.capacity };
  return {
    capacity,
    allocatable: { ...capacity, ...config.allocatable },
    conditions: desiredConditions(health, config, previous?.conditions, now),
    addresses: config.addresses ?? [
      { type: 'InternalIP', address: id.nodeIP },
      { type: 'Hostname', address: id.nodeName },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: id.kubeletPort } },
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      // `kubectl get nodes -o wide` shows <unknown> for empty ones; providers with a real kernel and image say so.
      kernelVersion: 'virtual',
      osImage: `Virtual Kubelet (${id.providerName} provider)`,
      containerRuntimeVersion: `${id.providerName}://${id.kubeletVersion}`,
      kubeProxyVersion: '',
      kubeletVersion: id.kubeletVersion,
      operatingSystem: config.operatingSystem ?? 'linux',
      architecture: config.architecture ?? goArch(),
      ...providerNodeInfo(config),
      ...(id.operatingSystem && { operatingSystem: id.operatingSystem }),
    },
  };
}

export function newNode(id: NodeIdentity, config: NodeConfig): Node {
  const taints = desiredTaints(id, config);
  const labels = desiredLabels(id, config);
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: id.nodeName, labels, annotations: managedAnnotations(labels, taints) },
    spec: { taints },
  };
}

/** Status fields compared to decide whether a write is needed; heartbeat times excluded. */
export function statusFingerprint(status: NodeStatus | undefined): string {
  if (!status) return '';
  const conditions = (status.conditions ?? []).map(({ type, status: s, reason, message }) => ({ type, s, reason, message }));
  return JSON.stringify([status.capacity, status.allocatable, conditions, status.addresses, status.daemonEndpoints, status.nodeInfo]);
}
