// The `remote` provider: a Provider whose every call goes over the wire (src/protocol/) to a
// provider server written in any language. Its optional methods mirror the capabilities the
// server declares in GET /v1/capabilities, read once at start-up (RemoteProvider.connect), in
// the newest protocol version both sides speak;
// ping() is always there, because reachability is health: when the server is down, ping
// rejects with the reason and the node turns NotReady (ProviderUnhealthy).
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import { NotFoundError, ProtocolError, ProviderUnavailableError, VkError, errorMessage } from '../../errors.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import { encodeLogQuery } from '../../protocol/query.ts';
import {
  DEFAULT_HEARTBEAT_MS,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  capabilitiesSchema,
  decodeResolvedPod,
  encodeResolvedPod,
  isRemoteCapability,
  nodeConfigSchema,
  paths,
  podListSchema,
  podSchema,
  podStatusSchema,
  statsSchema,
  wireResolvedPodSchema,
  type CapabilitiesResponse,
  type DeleteBody,
  type ProtocolVersion,
  type RemoteCapability,
  type RemoteExtension,
  type WireResolvedPod,
} from '../../protocol/wire.ts';
import { backoffDelayMs, type BackoffPolicy } from '../../util/backoff.ts';
import { formatZodError } from '../../util/zod-error.ts';
import type {
  CallOptions,
  DeleteOptions,
  ExecStreams,
  LogOptions,
  NodeConfig,
  PodEvent,
  PodEventListener,
  PodListener,
  PodStats,
  Provider,
  ResolvedPod,
} from '../provider.ts';
import { parseRemoteConfig, type RemoteProviderConfig } from './config.ts';
import { remoteCommand, remotePortForward } from './sessions.ts';
import { StatusStream } from './status-stream.ts';
import { RemoteTransport, callFailure } from './transport.ts';

// A label value: what the node taint virtual-kubelet.io/provider=<name> can carry.
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** nodeConfig() is synchronous: the cached copy is refreshed after a ping at most this often. */
const NODE_CONFIG_REFRESH_MS = 10_000;
/** Start-up keeps asking for the capabilities with this backoff until connectTimeoutMs. */
const CONNECT_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 2_000, jitter: 'full' };

export interface RemoteProviderOptions {
  log: Logger;
}

/** Validates an answer with its schema; a mismatch is a ProtocolError naming the field. */
function check<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw new ProtocolError(`remote provider sent an invalid ${what}: ${formatZodError(result.error)}`);
  return result.data;
}

/**
 * The capabilities, in the newest protocol version both sides speak.
 *
 * Version 1 servers: asked in version 2 they answer 400 UnsupportedVersion, and the client asks
 * again in version 1 and keeps talking to them in it (decision: a provider server written
 * against version 1 keeps working across a virtual kubelet upgrade; all it misses is the delete
 * reason, and a version-1 delete of a finished pod is exactly what version 1 always did). A
 * server that speaks neither version is refused with a one-line error naming both.
 */
async function negotiate(transport: RemoteTransport): Promise<{ caps: CapabilitiesResponse; version: ProtocolVersion }> {
  let body: unknown;
  let version: ProtocolVersion = PROTOCOL_VERSION;
  try {
    body = (await transport.call('GET', paths.capabilities(), { retries: 0, version })).body;
  } catch (err) {
    if (callFailure(err)?.code !== 'UnsupportedVersion') throw err;
    version = 1;
    body = (await transport.call('GET', paths.capabilities(), { retries: 0, version })).body;
  }
  const caps = check(capabilitiesSchema, body, 'GET /v1/capabilities answer') as CapabilitiesResponse;
  // A version-1 server that ignores the header answers in version 1 all the same.
  const answered = PROTOCOL_VERSIONS.find((v) => caps.protocol === `v${v}` && v <= version);
  if (answered === undefined) {
    const speaks = PROTOCOL_VERSIONS.map((v) => `v${v}`).join(' and ');
    throw new ProtocolError(`remote provider speaks protocol ${JSON.stringify(caps.protocol)}; this client speaks ${speaks}`);
  }
  version = answered;
  return { caps, version };
}

export class RemoteProvider implements Provider {
  readonly name: string;
  /** What the server declared. */
  readonly declared: CapabilitiesResponse;
  /** The protocol version both sides speak: 2, or 1 for an older server. */
  readonly protocolVersion: ProtocolVersion;
  readonly transport: RemoteTransport;

  readonly notifyPods?: (listener: PodListener) => void;
  readonly notifyPodEvents?: (listener: PodEventListener) => void;
  readonly nodeConfig?: () => NodeConfig;
  readonly getContainerLogs?: (namespace: string, pod: string, container: string, options: LogOptions) => Promise<Readable>;
  readonly runInContainer?: (namespace: string, pod: string, container: string, command: string[], streams: ExecStreams) => Promise<number>;
  readonly attachToContainer?: (namespace: string, pod: string, container: string, streams: ExecStreams) => Promise<void>;
  readonly portForward?: (namespace: string, pod: string, port: number, stream: Duplex) => Promise<void>;
  readonly getStats?: () => Promise<PodStats[]>;
  /** Extension `resolvedPod`: the pod as the server received it (conformance checks of env and volumes). */
  readonly resolvedPod?: (namespace: string, name: string) => Promise<ResolvedPod | undefined>;

  private readonly log: Logger;
  private readonly listeners: PodListener[] = [];
  private readonly eventListeners: PodEventListener[] = [];
  private stream: StatusStream | undefined;
  private cachedNodeConfig: NodeConfig | undefined;
  private nodeConfigAt = 0;
  private refreshingNodeConfig = false;
  private closed = false;
  private warnedNoReason = false;
  /** Aborts the provider's own calls (the status stream's resync) on close. */
  private readonly closing = new AbortController();

  /** Reaches the server (retrying until config.connectTimeoutMs), reads its capabilities, and returns the provider. */
  static async connect(config: RemoteProviderConfig | unknown, options: RemoteProviderOptions): Promise<RemoteProvider> {
    const parsed = parseRemoteConfig(config);
    const log = options.log.child({ provider: 'remote', endpoint: parsed.endpoint });
    const transport = new RemoteTransport(parsed, log);
    try {
      const deadline = Date.now() + parsed.connectTimeoutMs;
      let negotiated: Awaited<ReturnType<typeof negotiate>>;
      for (let attempt = 0; ; attempt++) {
        try {
          negotiated = await negotiate(transport);
          break;
        } catch (err) {
          const wait = Math.max(backoffDelayMs(CONNECT_BACKOFF, attempt), 50);
          const retryable = callFailure(err)?.retryable ?? false;
          if (!retryable || Date.now() + wait > deadline) {
            const message = errorMessage(err);
            const where = message.includes(transport.origin) ? '' : `remote provider at ${transport.origin}: `;
            const text = `${where}${message}${retryable ? ` (gave up after ${parsed.connectTimeoutMs} ms)` : ''}`;
            throw err instanceof ProviderUnavailableError
              ? new ProviderUnavailableError(text, { cause: err })
              : new VkError(err instanceof VkError ? err.code : 'VK_PROVIDER', text, { cause: err });
          }
          if (attempt === 0) log.warn({ err: errorMessage(err) }, 'remote provider not reachable yet; retrying');
          await sleep(wait);
        }
      }
      const { caps, version } = negotiated;
      transport.version = version;
      if (version < PROTOCOL_VERSION) log.info({ version }, `remote provider speaks protocol version ${version} only; talking to it in version ${version}`);
      const provider = new RemoteProvider(transport, caps, version, log);
      if (provider.nodeConfig) await provider.refreshNodeConfig();
      log.info({ name: provider.name, protocol: version, capabilities: caps.capabilities, extensions: caps.extensions ?? [] }, 'connected to remote provider');
      return provider;
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  private constructor(transport: RemoteTransport, caps: CapabilitiesResponse, version: ProtocolVersion, log: Logger) {
    this.transport = transport;
    this.declared = caps;
    this.protocolVersion = version;
    this.log = log;
    this.name = LABEL_VALUE.test(caps.name) && caps.name.length <= 63 ? caps.name : 'remote';
    const has = (capability: RemoteCapability) => caps.capabilities.includes(capability);
    const unknown = caps.capabilities.filter((c) => !isRemoteCapability(c));
    if (unknown.length > 0) log.info({ unknown }, 'remote provider declares capabilities this client does not know; ignoring them');

    if (has('notifyPods')) this.notifyPods = (listener) => this.addListener(listener);
    if (has('notifyPodEvents')) this.notifyPodEvents = (listener) => this.addEventListener(listener);
    if (has('nodeConfig')) this.nodeConfig = () => this.cachedNodeConfig ?? { capacity: {} };
    if (has('getContainerLogs')) this.getContainerLogs = (ns, pod, container, options) => this.logs(ns, pod, container, options);
    if (has('runInContainer'))
      this.runInContainer = (ns, pod, container, command, streams) => remoteCommand(this.transport, paths.exec(ns, pod, container), command, streams);
    if (has('attachToContainer'))
      this.attachToContainer = async (ns, pod, container, streams) =>
        void (await remoteCommand(this.transport, paths.attach(ns, pod, container), undefined, streams));
    if (has('portForward')) this.portForward = (ns, pod, port, stream) => remotePortForward(this.transport, paths.portForward(ns, pod), port, stream);
    if (has('getStats')) this.getStats = () => this.stats();
    if (caps.extensions?.includes('resolvedPod' satisfies RemoteExtension)) this.resolvedPod = (ns, name) => this.fetchResolved(ns, name);
  }

  // --- Pod lifecycle: every call is aborted with the caller's signal.

  async createPod(pod: ResolvedPod, options: CallOptions): Promise<void> {
    await this.transport.call('POST', paths.pods(), { body: encodeResolvedPod(pod), signal: options.signal });
  }

  async updatePod(pod: ResolvedPod, options: CallOptions): Promise<void> {
    const meta = pod.pod.metadata;
    await this.transport.call('PUT', paths.pod(meta?.namespace ?? '', meta?.name ?? ''), { body: encodeResolvedPod(pod), signal: options.signal });
  }

  async deletePod(pod: Pod, options: DeleteOptions): Promise<void> {
    let body: DeleteBody | { pod: Pod } = { pod, reason: options.reason };
    if (this.protocolVersion === 1) {
      // Version 1 has no reason: the server stops and forgets the pod either way, which for a
      // finished pod (its containers have exited) is what it always did.
      if (options.reason !== 'deleted' && !this.warnedNoReason) {
        this.warnedNoReason = true;
        this.log.warn(
          { reason: options.reason },
          'remote provider speaks protocol version 1, which cannot carry the delete reason; finished pods are deleted as if the pod were deleted',
        );
      }
      body = { pod };
    }
    await this.transport.call('DELETE', paths.pod(pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''), { body, signal: options.signal });
  }

  async getPod(namespace: string, name: string, options: CallOptions): Promise<Pod | undefined> {
    const path = paths.pod(namespace, name);
    try {
      return check(podSchema, (await this.transport.call('GET', path, { signal: options.signal })).body, `pod for GET ${path}`) as Pod;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async getPodStatus(namespace: string, name: string, options: CallOptions): Promise<PodStatus | undefined> {
    const path = paths.podStatus(namespace, name);
    try {
      return check(podStatusSchema, (await this.transport.call('GET', path, { signal: options.signal })).body, `pod status for GET ${path}`) as PodStatus;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async listPods(options: CallOptions): Promise<Pod[]> {
    return check(podListSchema, (await this.transport.call('GET', paths.pods(), { signal: options.signal })).body, 'pod list').items as Pod[];
  }

  // --- Health and node configuration.

  async ping(signal: AbortSignal): Promise<void> {
    try {
      await this.transport.call('GET', paths.ping(), { signal, retries: 0 });
    } catch (err) {
      // The server answered, with the backend's failure (version 1: Unhealthy; 2: its VkError code).
      const code = callFailure(err)?.code;
      if (code !== undefined && (code === 'Unhealthy' || code.startsWith('VK_'))) {
        throw new ProviderUnavailableError(`remote provider reports it is unhealthy: ${errorMessage(err)}`, { cause: err });
      }
      throw err;
    }
    // Reachable again while the status stream waits out its backoff: reconnect (and resync) now.
    if (this.stream && !this.stream.connected) this.stream.kick();
    if (this.nodeConfig && Date.now() - this.nodeConfigAt > NODE_CONFIG_REFRESH_MS)
      void this.refreshNodeConfig().catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'could not refresh the node configuration'));
  }

  private async refreshNodeConfig(): Promise<void> {
    if (this.refreshingNodeConfig) return;
    this.refreshingNodeConfig = true;
    try {
      this.cachedNodeConfig = check(nodeConfigSchema, (await this.transport.call('GET', paths.node())).body, 'node configuration') as NodeConfig;
      this.nodeConfigAt = Date.now();
    } finally {
      this.refreshingNodeConfig = false;
    }
  }

  // --- Push.

  private addListener(listener: PodListener): void {
    this.listeners.push(listener);
    this.startStream();
  }

  private addEventListener(listener: PodEventListener): void {
    this.eventListeners.push(listener);
    this.startStream();
  }

  /** One status stream carries both pod changes and (when the server declares them) pod Events. */
  private startStream(): void {
    if (this.closed) return;
    this.stream ??= new StatusStream(this.transport, this.log, {
      heartbeatIntervalMs: this.declared.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS,
      onPod: (pod) => this.emit(pod),
      ...(this.notifyPodEvents && { onEvent: (event: PodEvent) => this.emitEvent(event) }),
      onReady: async (reconnect) => {
        if (this.listeners.length > 0) {
          // Whatever changed while the stream was down (or before it first came up) reaches the core now.
          const pods = await this.listPods({ signal: this.closing.signal });
          if (reconnect) this.log.info({ pods: pods.length }, 'status stream reconnected; handing every pod to the core again');
          for (const pod of pods) this.emit(pod);
        }
        if (this.nodeConfig) await this.refreshNodeConfig().catch(() => {});
      },
    });
    this.stream.start();
  }

  private emit(pod: Pod): void {
    for (const listener of this.listeners) {
      try {
        listener(pod);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'pod listener threw');
      }
    }
  }

  private emitEvent(event: PodEvent): void {
    for (const listener of this.eventListeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'pod event listener threw');
      }
    }
  }

  /** Whether the status stream is connected (for tests and diagnostics). */
  get streaming(): boolean {
    return this.stream?.connected ?? false;
  }

  /** READYs the status stream has seen (1 + reconnects). */
  get streamConnections(): number {
    return this.stream?.connections ?? 0;
  }

  // --- Kubelet API capabilities.

  private async logs(namespace: string, pod: string, container: string, options: LogOptions): Promise<Readable> {
    const res = await this.transport.open('GET', paths.logs(namespace, pod, container), { query: encodeLogQuery(options), signal: options.signal });
    options.signal.addEventListener('abort', () => res.destroy(), { once: true });
    return res;
  }

  private async stats(): Promise<PodStats[]> {
    return check(statsSchema, (await this.transport.call('GET', paths.stats())).body, 'stats').pods;
  }

  private async fetchResolved(namespace: string, name: string): Promise<ResolvedPod | undefined> {
    try {
      return decodeResolvedPod(
        check(wireResolvedPodSchema, (await this.transport.call('GET', paths.resolved(namespace, name))).body, 'resolved pod') as WireResolvedPod,
      );
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    await this.stream?.stop();
    this.transport.close();
  }
}
