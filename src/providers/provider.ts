// The one interface every provider implements. The core does all the Kubernetes work
// (watches, queues, env/volume resolution, status writes, retries); a provider only maps
// a pod onto its backend. Required methods cover the pod lifecycle; optional ones are
// capabilities, and their presence is what the core and the conformance suite see.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { NodeAddress, NodeCondition, NodeSystemInfo, Pod, PodStatus, Secret, Taint } from '../kube/types.ts';

/** A file of a resolved configMap/secret/downwardAPI/projected volume, relative to the mount point. */
export interface VolumeFile {
  path: string;
  content: Uint8Array;
  /** File mode bits (defaultMode or the item's mode), e.g. 0o644. */
  mode: number;
}

export type ResolvedVolume =
  | { name: string; type: 'files'; source: 'configMap' | 'secret' | 'downwardAPI' | 'projected'; files: VolumeFile[] }
  | { name: string; type: 'emptyDir'; medium: string; sizeLimit?: string };

/**
 * A pod as the core hands it to a provider: a copy of the API object whose containers'
 * `env` lists hold only plain `{name, value}` pairs, resolved and in the order written
 * (envFrom first, as the kubelet does), and the contents of its volumes.
 */
export interface ResolvedPod {
  pod: Pod;
  /** Resolved volumes by volume name. Volume types the core does not resolve are absent. */
  volumes: Map<string, ResolvedVolume>;
  /** The pod's imagePullSecrets that exist, in spec order (missing ones are reported as Warning events). */
  pullSecrets?: Secret[];
}

export interface NodeConfig {
  /** e.g. { cpu: '20', memory: '100Gi', pods: '110' } */
  capacity: Record<string, string>;
  allocatable?: Record<string, string>;
  labels?: Record<string, string>;
  taints?: Taint[];
  /** Extra conditions the provider reports beyond Ready and the pressure conditions. */
  conditions?: NodeCondition[];
  addresses?: NodeAddress[];
  operatingSystem?: string;
  architecture?: string;
  nodeInfo?: Partial<NodeSystemInfo>;
}

export interface LogOptions {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  limitBytes?: number;
  /** Only lines at or after this time. */
  sinceTime?: Date;
  signal: AbortSignal;
}

export interface TerminalSize {
  width: number;
  height: number;
}

export interface ExecStreams {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty: boolean;
  /** Terminal size changes, when tty is set. */
  resize?: AsyncIterable<TerminalSize>;
  signal: AbortSignal;
}

/** Container stats for /stats/summary and /metrics/resource. */
export interface ContainerStats {
  name: string;
  cpuUsageNanoCores?: number;
  cpuUsageCoreNanoSeconds?: number;
  memoryWorkingSetBytes?: number;
  memoryUsageBytes?: number;
}

export interface PodStats {
  namespace: string;
  name: string;
  uid: string;
  containers: ContainerStats[];
}

export type PodListener = (pod: Pod) => void;

export interface Provider {
  /** Used in the node taint virtual-kubelet.io/provider=<name>. */
  readonly name: string;

  /** Starts the pod. Called once per pod UID; must not create a second copy of a UID it already runs. */
  createPod(pod: ResolvedPod): Promise<void>;
  /** Applies an allowed spec change (image, activeDeadlineSeconds, tolerations, labels, annotations). */
  updatePod(pod: ResolvedPod): Promise<void>;
  /**
   * Stops the pod (honouring its grace period) and forgets it. Only the incarnation with
   * `pod.metadata.uid` is affected. Unknown pods throw NotFoundError.
   */
  deletePod(pod: Pod): Promise<void>;
  /** The pod as the provider runs it (metadata.uid included), or undefined. */
  getPod(namespace: string, name: string): Promise<Pod | undefined>;
  /** The pod's current status, or undefined when the provider does not know it. */
  getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined>;
  /** Every pod the provider runs for this node. */
  listPods(): Promise<Pod[]>;

  // Optional capabilities.

  /** Push mode: the provider calls back with a pod (status included) whenever it changes; the core then polls less. */
  notifyPods?(listener: PodListener): void;
  /** Node capacity, labels, taints, OS: read at start-up and on every node status update. */
  nodeConfig?(): NodeConfig;
  /** Health of the backend; a rejection turns the node NotReady with its message. */
  ping?(signal: AbortSignal): Promise<void>;
  getContainerLogs?(namespace: string, pod: string, container: string, options: LogOptions): Promise<Readable>;
  /** Runs a command in a container; resolves with its exit code. */
  runInContainer?(namespace: string, pod: string, container: string, command: string[], streams: ExecStreams): Promise<number>;
  attachToContainer?(namespace: string, pod: string, container: string, streams: ExecStreams): Promise<void>;
  /** Connects `stream` to `port` inside the pod's network namespace until either side closes. */
  portForward?(namespace: string, pod: string, port: number, stream: Duplex): Promise<void>;
  getStats?(): Promise<PodStats[]>;
  /** Releases the provider's resources when the virtual kubelet stops. */
  close?(): Promise<void>;
}

/** Names of the optional capabilities a provider implements. */
export function providerCapabilities(provider: Provider): string[] {
  const optional = ['notifyPods', 'nodeConfig', 'ping', 'getContainerLogs', 'runInContainer', 'attachToContainer', 'portForward', 'getStats', 'close'] as const;
  return optional.filter((name) => typeof provider[name] === 'function');
}

export function podKey(pod: Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}
