// The `remote` provider: a Provider whose every call goes over the wire (protocol.ts) to a
// provider server written in any language. Its optional methods mirror the capabilities the
// server declares in GET /v1/capabilities, read once at start-up (RemoteProvider.connect);
// ping() is always there, because reachability is health: when the server is down, ping
// rejects with the reason and the node turns NotReady (ProviderUnhealthy).
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError, VkError, errorMessage } from '../../errors.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { ExecStreams, LogOptions, NodeConfig, PodListener, PodStats, Provider, ResolvedPod } from '../provider.ts';
import { parseRemoteConfig, type RemoteProviderConfig } from './config.ts';
import { DEFAULT_HEARTBEAT_MS, PROTOCOL_PREFIX, REMOTE_CAPABILITIES, decodeResolvedPod, encodeResolvedPod, paths, type CapabilitiesResponse, type WireResolvedPod } from './protocol.ts';
import { remoteCommand, remotePortForward } from './sessions.ts';
import { StatusStream, isPodLike } from './status-stream.ts';
import { RemoteCallError, RemoteTransport, backoffMs } from './transport.ts';

// A label value: what the node taint virtual-kubelet.io/provider=<name> can carry.
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** nodeConfig() is synchronous: the cached copy is refreshed after a ping at most this often. */
const NODE_CONFIG_REFRESH_MS = 10_000;

export interface RemoteProviderOptions {
  log: Logger;
}

function bad(what: string, detail: string): VkError {
  return new VkError('VK_PROVIDER', `remote provider sent an invalid ${what}: ${detail}`);
}

function checkCapabilities(body: unknown): CapabilitiesResponse {
  const caps = body as CapabilitiesResponse | undefined;
  if (typeof caps !== 'object' || caps === null) throw bad('GET /v1/capabilities answer', 'expected a JSON object');
  if (caps.protocol !== PROTOCOL_PREFIX.slice(1)) throw new VkError('VK_PROVIDER', `remote provider speaks protocol ${JSON.stringify(caps.protocol)}; this client speaks ${PROTOCOL_PREFIX.slice(1)}`);
  if (typeof caps.name !== 'string' || !caps.name) throw bad('GET /v1/capabilities answer', '"name" must be a non-empty string');
  if (!Array.isArray(caps.capabilities) || caps.capabilities.some((c) => typeof c !== 'string')) throw bad('GET /v1/capabilities answer', '"capabilities" must be an array of strings');
  if (caps.extensions !== undefined && (!Array.isArray(caps.extensions) || caps.extensions.some((c) => typeof c !== 'string'))) throw bad('GET /v1/capabilities answer', '"extensions" must be an array of strings');
  return caps;
}

function checkNodeConfig(body: unknown): NodeConfig {
  const config = body as NodeConfig | undefined;
  if (typeof config !== 'object' || config === null || typeof config.capacity !== 'object' || config.capacity === null) throw bad('node configuration', 'expected an object with "capacity"');
  return config;
}

function checkPod(body: unknown, what: string): Pod {
  if (!isPodLike(body)) throw bad(what, 'expected a pod with metadata.namespace and metadata.name');
  return body;
}

export class RemoteProvider implements Provider {
  readonly name: string;
  /** What the server declared. */
  readonly declared: CapabilitiesResponse;
  readonly transport: RemoteTransport;

  readonly notifyPods?: (listener: PodListener) => void;
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
  private stream: StatusStream | undefined;
  private cachedNodeConfig: NodeConfig | undefined;
  private nodeConfigAt = 0;
  private refreshingNodeConfig = false;
  private closed = false;

  /** Reaches the server (retrying until config.connectTimeoutMs), reads its capabilities, and returns the provider. */
  static async connect(config: RemoteProviderConfig | unknown, options: RemoteProviderOptions): Promise<RemoteProvider> {
    const parsed = parseRemoteConfig(config);
    const log = options.log.child({ provider: 'remote', endpoint: parsed.endpoint });
    const transport = new RemoteTransport(parsed, log);
    try {
      const deadline = Date.now() + parsed.connectTimeoutMs;
      let caps: CapabilitiesResponse;
      for (let attempt = 0; ; attempt++) {
        try {
          caps = checkCapabilities((await transport.call('GET', paths.capabilities(), { retries: 0 })).body);
          break;
        } catch (err) {
          const wait = Math.max(backoffMs(attempt, 200, 2_000), 50);
          if (!(err instanceof RemoteCallError && err.retryable) || Date.now() + wait > deadline) {
            const message = errorMessage(err);
            const where = message.includes(transport.origin) ? '' : `remote provider at ${transport.origin}: `;
            throw new VkError('VK_PROVIDER', `${where}${message}${err instanceof RemoteCallError && err.retryable ? ` (gave up after ${parsed.connectTimeoutMs} ms)` : ''}`);
          }
          if (attempt === 0) log.warn({ err: errorMessage(err) }, 'remote provider not reachable yet; retrying');
          await sleep(wait);
        }
      }
      const provider = new RemoteProvider(transport, caps, log);
      if (provider.nodeConfig) await provider.refreshNodeConfig();
      log.info({ name: provider.name, capabilities: caps.capabilities, extensions: caps.extensions ?? [] }, 'connected to remote provider');
      return provider;
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  private constructor(transport: RemoteTransport, caps: CapabilitiesResponse, log: Logger) {
    this.transport = transport;
    this.declared = caps;
    this.log = log;
    this.name = LABEL_VALUE.test(caps.name) && caps.name.length <= 63 ? caps.name : 'remote';
    const has = (capability: string) => caps.capabilities.includes(capability);
    const unknown = caps.capabilities.filter((c) => !(REMOTE_CAPABILITIES as readonly string[]).includes(c));
    if (unknown.length > 0) log.info({ unknown }, 'remote provider declares capabilities this client does not know; ignoring them');

    if (has('notifyPods')) this.notifyPods = (listener) => this.addListener(listener);
    if (has('nodeConfig')) this.nodeConfig = () => this.cachedNodeConfig ?? { capacity: {} };
    if (has('getContainerLogs')) this.getContainerLogs = (ns, pod, container, options) => this.logs(ns, pod, container, options);
    if (has('runInContainer')) this.runInContainer = (ns, pod, container, command, streams) => remoteCommand(this.transport, paths.exec(ns, pod, container), command, streams);
    if (has('attachToContainer')) this.attachToContainer = async (ns, pod, container, streams) => void (await remoteCommand(this.transport, paths.attach(ns, pod, container), undefined, streams));
    if (has('portForward')) this.portForward = (ns, pod, port, stream) => remotePortForward(this.transport, paths.portForward(ns, pod), port, stream);
    if (has('getStats')) this.getStats = () => this.stats();
    if (caps.extensions?.includes('resolvedPod')) this.resolvedPod = (ns, name) => this.fetchResolved(ns, name);
  }

  // --- Pod lifecycle.

  async createPod(pod: ResolvedPod): Promise<void> {
    await this.transport.call('POST', paths.pods(), { body: encodeResolvedPod(pod) });
  }

  async updatePod(pod: ResolvedPod): Promise<void> {
    const meta = pod.pod.metadata;
    await this.transport.call('PUT', paths.pod(meta?.namespace ?? '', meta?.name ?? ''), { body: encodeResolvedPod(pod) });
  }

  async deletePod(pod: Pod): Promise<void> {
    await this.transport.call('DELETE', paths.pod(pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''), { body: { pod } });
  }

  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    try {
      return checkPod((await this.transport.call<unknown>('GET', paths.pod(namespace, name))).body, `pod for GET ${paths.pod(namespace, name)}`);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined> {
    try {
      const body = (await this.transport.call<unknown>('GET', paths.podStatus(namespace, name))).body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('pod status', 'expected a JSON object');
      return body as PodStatus;
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async listPods(): Promise<Pod[]> {
    const body = (await this.transport.call<{ items?: unknown }>('GET', paths.pods())).body;
    if (!Array.isArray(body?.items)) throw bad('pod list', 'expected {"items": [...]}');
    return body.items.map((pod, i) => checkPod(pod, `pod list: items[${i}]`));
  }

  // --- Health and node configuration.

  async ping(signal: AbortSignal): Promise<void> {
    try {
      await this.transport.call('GET', paths.ping(), { signal, retries: 0 });
    } catch (err) {
      if (err instanceof RemoteCallError && err.errorCode === 'Unhealthy') {
        throw new VkError('VK_PROVIDER', `remote provider reports it is unhealthy: ${err.message.replace(/^.*?HTTP 503 Unhealthy: /, '')}`);
      }
      throw err;
    }
    // Reachable again while the status stream waits out its backoff: reconnect (and resync) now.
    if (this.stream && !this.stream.connected) this.stream.kick();
    if (this.nodeConfig && Date.now() - this.nodeConfigAt > NODE_CONFIG_REFRESH_MS) void this.refreshNodeConfig().catch((err: unknown) => this.log.debug({ err: errorMessage(err) }, 'could not refresh the node configuration'));
  }

  private async refreshNodeConfig(): Promise<void> {
    if (this.refreshingNodeConfig) return;
    this.refreshingNodeConfig = true;
    try {
      this.cachedNodeConfig = checkNodeConfig((await this.transport.call('GET', paths.node())).body);
      this.nodeConfigAt = Date.now();
    } finally {
      this.refreshingNodeConfig = false;
    }
  }

  // --- Push.

  private addListener(listener: PodListener): void {
    this.listeners.push(listener);
    if (this.closed) return;
    this.stream ??= new StatusStream(this.transport, this.log, {
      heartbeatIntervalMs: this.declared.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS,
      onPod: (pod) => this.emit(pod),
      onReady: async (reconnect) => {
        // Whatever changed while the stream was down (or before it first came up) reaches the core now.
        const pods = await this.listPods();
        if (reconnect) this.log.info({ pods: pods.length }, 'status stream reconnected; handing every pod to the core again');
        for (const pod of pods) this.emit(pod);
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
    const query = {
      follow: options.follow ? 'true' : undefined,
      previous: options.previous ? 'true' : undefined,
      timestamps: options.timestamps ? 'true' : undefined,
      tailLines: options.tailLines,
      limitBytes: options.limitBytes,
      sinceTime: options.sinceTime?.toISOString(),
    };
    const res = await this.transport.open('GET', paths.logs(namespace, pod, container), { query, signal: options.signal });
    options.signal.addEventListener('abort', () => res.destroy(), { once: true });
    return res;
  }

  private async stats(): Promise<PodStats[]> {
    const body = (await this.transport.call<{ pods?: unknown }>('GET', paths.stats())).body;
    if (!Array.isArray(body?.pods)) throw bad('stats', 'expected {"pods": [...]}');
    return body.pods as PodStats[];
  }

  private async fetchResolved(namespace: string, name: string): Promise<ResolvedPod | undefined> {
    try {
      const body = (await this.transport.call<WireResolvedPod>('GET', paths.resolved(namespace, name))).body;
      if (!isPodLike(body?.pod) || !Array.isArray(body.volumes)) throw bad('resolved pod', 'expected {"pod": ..., "volumes": [...]}');
      return decodeResolvedPod(body);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stream?.stop();
    this.transport.close();
  }
}
