// The one interface every provider implements. The core does all the Kubernetes work
// (watches, queues, env/volume resolution, status writes, retries); a provider only maps
// a pod onto its backend. Required methods cover the pod lifecycle; optional ones are
// capabilities. The contract (errors, UIDs, aborts) is written on the interface below, and
// src/providers/contract.ts checks it for every provider.
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
  /** The API object as it came, env unresolved: which values came from Secrets (the cluster provider keeps those out of clear text). */
  original?: Pod;
  /**
   * Containers whose env, command or args use the pod's address (status.podIP(s) env, empty in
   * `pod` while the pod has none), resolved with placeholders: a provider that learns the address
   * before it starts a container gets them as the kubelet would from `withPodIPs` (resolve/pod-ip.ts).
   */
  podIPTemplates?: PodIPTemplate[];
}

/** A container's env, command and args with placeholders for the pod's addresses; fill in with withPodIPs. */
export interface PodIPTemplate {
  containerName: string;
  env: { name: string; value: string }[];
  command?: string[];
  args?: string[];
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

/**
 * Something the backend did to one of the provider's pods, to be shown as a Kubernetes Event
 * (`kubectl describe pod`, `kubectl get events`): an image pull, a backend failure, a stop reason.
 * The core records it as the node's kubelet does its own Events: validated, aggregated with
 * repeats of the same reason and message, and rate-limited per node.
 */
export interface PodEvent {
  namespace: string;
  name: string;
  /** The incarnation it is about: an event for another UID (an older pod of the same name) is dropped. */
  uid: string;
  type: 'Normal' | 'Warning';
  /** CamelCase, at most 128 characters, e.g. `Pulling`; anything else is dropped. */
  reason: string;
  /** Cut to 1024 bytes (the limit events.k8s.io sets on an Event's note). */
  message: string;
  /** The container it is about (involvedObject.fieldPath `spec.containers{name}`); a name the pod does not have is ignored. */
  container?: string;
  /** How many occurrences this report stands for (default 1); they are added to the Event's count. */
  count?: number;
  /** When the backend first saw it (default: when it is recorded). */
  firstTimestamp?: Date;
}

export type PodEventListener = (event: PodEvent) => void;

/** Passed to every lifecycle call: the core aborts calls in flight when the virtual kubelet stops. */
export interface CallOptions {
  signal: AbortSignal;
  /**
   * The W3C traceparent of the caller's span, when the call came over the remote protocol from a
   * core that traces (provider-sdk sets it): a provider that traces makes its spans children of it.
   */
  traceparent?: string;
}

/**
 * Why the core deletes a pod in the provider:
 * - `deleted`: the pod is being deleted (or replaced, or orphaned): stop it, honouring its grace period.
 * - `finished`: the pod reached Succeeded/Failed and stays in the API; free what its run holds.
 *   Its containers have already exited; logs may be kept a while so `kubectl logs` still works.
 */
export type DeleteReason = 'deleted' | 'finished';

export interface DeleteOptions extends CallOptions {
  reason: DeleteReason;
}

/**
 * The one interface every provider implements.
 *
 * Error contract (classes from `src/errors.ts`; the core branches on their codes):
 * - `NotFoundError` (VK_NOT_FOUND): the provider does not know the pod. `deletePod` of an unknown
 *   pod or UID throws it; `getPod`/`getPodStatus` return undefined instead.
 * - `PodRejectedError` (VK_POD_REJECTED) from `createPod`/`updatePod`: the spec can never run
 *   here. The core ends the pod `Failed` with the error's reason and a Warning Event; no retry.
 * - `ProviderUnavailableError` (VK_PROVIDER_UNAVAILABLE): the backend cannot be reached. The core
 *   retries with backoff; pods that never ran show `ProviderUnavailable`; `ping` should fail too,
 *   which turns the node NotReady.
 * - `TryLaterError` (VK_TRY_LATER): throttled or out of capacity for now; retried after
 *   `retryAfterMs` (or the backoff), with the message on the pod.
 * - An abort of `options.signal` rejects with the signal's reason or an `AbortedError`; the core
 *   ignores it during shutdown.
 * - Anything else is a transient failure: retried with backoff, reported as an Event.
 */
export interface Provider {
  /** Used in the node taint virtual-kubelet.io/provider=<name>. */
  readonly name: string;
  /**
   * Volume types (keys of a pod volume's source, e.g. 'hostPath') the provider mounts itself: the
   * core passes them through unresolved instead of failing the pod with UnsupportedVolume.
   */
  readonly volumeTypes?: readonly string[];

  /** Starts the pod. Called once per pod UID; must not create a second copy of a UID it already runs. */
  createPod(pod: ResolvedPod, options: CallOptions): Promise<void>;
  /**
   * Applies an allowed spec change (image, activeDeadlineSeconds, tolerations, labels,
   * annotations) or new volume contents and pull secrets to the running incarnation.
   */
  updatePod(pod: ResolvedPod, options: CallOptions): Promise<void>;
  /**
   * Stops (reason `deleted`, honouring the grace period) or releases (reason `finished`) the pod
   * and forgets it. Only the incarnation with `pod.metadata.uid` is affected. Unknown pods or
   * UIDs throw NotFoundError.
   */
  deletePod(pod: Pod, options: DeleteOptions): Promise<void>;
  /** The pod as the provider runs it, `metadata.uid` always set, or undefined. */
  getPod(namespace: string, name: string, options: CallOptions): Promise<Pod | undefined>;
  /** The pod's current status, or undefined when the provider does not know it. */
  getPodStatus(namespace: string, name: string, options: CallOptions): Promise<PodStatus | undefined>;
  /** Every pod the provider runs for this node, each with `metadata.uid`. */
  listPods(options: CallOptions): Promise<Pod[]>;

  // Optional capabilities: their presence is what the core, the remote protocol and the conformance suite see.

  /** Push mode: the provider calls back with a pod (status and uid included) whenever it changes; the core then polls less. */
  notifyPods?(listener: PodListener): void;
  /** The provider reports Events about its pods, each occurrence once (a poll must not repeat what it reported before). */
  notifyPodEvents?(listener: PodEventListener): void;
  /** Node capacity, labels, taints, OS: read at start-up and on every node status update. */
  nodeConfig?(): NodeConfig;
  /** Health of the backend; a rejection turns the node NotReady with its message. */
  ping?(signal: AbortSignal): Promise<void>;
  /** A container's log; unknown pod/container: NotFoundError; not started or no previous run: ContainerStateError. */
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

/** The optional methods of Provider: a provider's capabilities are the ones it implements. */
export const CAPABILITIES = [
  'notifyPods',
  'notifyPodEvents',
  'nodeConfig',
  'ping',
  'getContainerLogs',
  'runInContainer',
  'attachToContainer',
  'portForward',
  'getStats',
  'close',
] as const satisfies readonly (keyof Provider)[];

export type Capability = (typeof CAPABILITIES)[number];

/** The optional capabilities a provider implements. */
export function providerCapabilities(provider: Provider): Capability[] {
  return CAPABILITIES.filter((name) => typeof provider[name] === 'function');
}

export function podKey(pod: Pod): string {
  return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
}
