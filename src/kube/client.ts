// A thin HTTP client for kube-apiserver. client-node's request path creates a new https.Agent
// per call and deserializes every object through its model classes; at thousands of pods both
// cost too much. Here: keep-alive agents (one for requests, one for watches), plain JSON, watch streams split by line, and
// request counts by verb for the benchmarks. The kubeconfig comes from kubeconfig.ts.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { KubeApiError, VkError } from '../errors.ts';
import { loadClientConfig, type ClientConfig } from './kubeconfig.ts';
import type { Status, WatchEvent } from './types.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The caller has no use for the answer's object: read it (keep-alive) but do not parse it. */
  discardResponse?: boolean;
  /**
   * The caller reads only the answer's metadata (say its resourceVersion): kube-apiserver then sends
   * a PartialObjectMetadata instead of the whole object, a third of a pod's bytes to write and parse.
   */
  metadataOnly?: boolean;
  /**
   * 'heartbeat': the Node's Lease and status writes. They take a small pool of their own: behind
   * thousands of queued pod writes in the main pool, a renewal waited longer than the Lease lasts
   * (client-go's HTTP/2 has no such queue).
   */
  lane?: 'heartbeat';
}

export interface RequestObserver {
  /** statusCode 0: no answer (connection failure or timeout; not counted for requests the caller aborted). */
  (verb: Verb, path: string, statusCode: number, seconds: number): void;
}

export const MERGE_PATCH = 'application/merge-patch+json';
/** Metadata only where the server can (kube-apiserver ≥ 1.15), else the whole object. */
const ACCEPT_METADATA = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json';

export interface LoadOptions extends PoolOptions {
  kubeconfig?: string;
  context?: string;
}

export interface PoolOptions {
  /** Virtual nodes the client serves: sizes the heartbeat pool (heartbeatSockets). */
  nodes?: number;
}

/**
 * Sockets of the heartbeat pool for `nodes` virtual nodes. Each renews its Lease every 10 s; at
 * 250 ms an answer on a loaded API server, a socket carries 40 renewals in those 10 s. Fewer
 * sockets than that would space the renewals out (at 1,000 nodes, 4 sockets renewed each Lease
 * every ~20 s under load), which only a Lease's 40 s keeps from turning a node NotReady.
 */
export function heartbeatSockets(nodes: number): number {
  return Math.max(4, Math.ceil(nodes / 25));
}

export class KubeClient {
  readonly server: URL;
  /** Where the server, TLS material and credentials came from. */
  readonly config: ClientConfig;
  readonly requestCounts = new Map<Verb, number>();
  private readonly agent: http.Agent;
  /** Watches hold their connection for minutes: their own pool, so they never starve requests (or each other). */
  private readonly watchAgent: http.Agent;
  private readonly heartbeatAgent: http.Agent;
  private readonly observers: RequestObserver[] = [];

  private constructor(config: ClientConfig, agent: (maxSockets: number) => http.Agent, pool: PoolOptions) {
    this.config = config;
    this.agent = agent(64);
    this.watchAgent = agent(Infinity);
    this.heartbeatAgent = agent(heartbeatSockets(pool.nodes ?? 1));
    this.server = config.server;
  }

  /** Loads --kubeconfig, else $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
  static async load(options: LoadOptions = {}): Promise<KubeClient> {
    return KubeClient.fromConfig(await loadClientConfig(options), options);
  }

  /** A client for a config already loaded (e.g. in-cluster credentials of another cluster). */
  static fromConfig(config: ClientConfig, pool: PoolOptions = {}): KubeClient {
    // Plain http only for a kubeconfig that asks for it (an insecure local proxy such as `kubectl proxy`).
    // One SecureContext for all connections: given ca/cert/key instead, each new TLS connection
    // parses them again (a third of the CPU of a 100-node process went to that and its GC).
    const { ca, cert, key, rejectUnauthorized, servername } = config.tls;
    const secureContext = config.server.protocol === 'http:' ? undefined : tls.createSecureContext({ ca, cert, key });
    const agent = (maxSockets: number) =>
      secureContext
        ? new https.Agent({ keepAlive: true, maxSockets, secureContext, rejectUnauthorized, servername })
        : new http.Agent({ keepAlive: true, maxSockets });
    return new KubeClient(config, agent, pool);
  }

  observe(observer: RequestObserver): void {
    this.observers.push(observer);
  }

  close(): void {
    this.agent.destroy();
    this.watchAgent.destroy();
    this.heartbeatAgent.destroy();
  }

  private async send(verb: Verb, method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const agent = verb === 'watch' ? this.watchAgent : options.lane === 'heartbeat' ? this.heartbeatAgent : this.agent;
    const url = new URL(path, this.server);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { Accept: options.metadataOnly ? ACCEPT_METADATA : 'application/json', 'User-Agent': 'virtual-kubelet-ts' };
    const auth = await this.config.authorization();
    if (auth) headers.Authorization = auth;
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    const started = performance.now();
    return await new Promise<IncomingMessage>((resolve, reject) => {
      let answered = false;
      const req = (url.protocol === 'http:' ? http : https).request(url, { method, headers, agent, signal: options.signal }, (res) => {
        answered = true;
        this.requestCounts.set(verb, (this.requestCounts.get(verb) ?? 0) + 1);
        for (const observer of this.observers) observer(verb, path, res.statusCode ?? 0, (performance.now() - started) / 1000);
        resolve(res);
      });
      if (options.timeoutMs) {
        req.setTimeout(options.timeoutMs, () => req.destroy(new VkError('VK_TIMEOUT', `${method} ${url.pathname}: no answer in ${options.timeoutMs} ms`)));
      }
      req.on('error', (err) => {
        if (!answered && err.name !== 'AbortError') for (const observer of this.observers) observer(verb, path, 0, (performance.now() - started) / 1000);
        if (err instanceof VkError || err.name === 'AbortError') reject(err);
        else reject(new VkError('VK_KUBE_CONNECT', `${method} ${this.server.origin}${url.pathname}: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }

  async request<T>(verb: Verb, method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(verb, method, path, options);
    const text = await readBody(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw apiError(method, path, status, text);
    return (text && !options.discardResponse ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('get', 'GET', path, options);
  }

  /** GET of a body that is not JSON (a node's /metrics through the node proxy). */
  async getText(path: string, options: RequestOptions = {}): Promise<string> {
    const res = await this.send('get', 'GET', path, options);
    const text = await readBody(res);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw apiError('GET', path, status, text);
    return text;
  }

  list<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('list', 'GET', path, options);
  }

  create<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('create', 'POST', path, { ...options, body });
  }

  update<T>(path: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('update', 'PUT', path, { ...options, body });
  }

  patch<T>(path: string, body: unknown, contentType = MERGE_PATCH, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('patch', 'PATCH', path, { ...options, body, contentType });
  }

  delete<T>(path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    return this.request<T>('delete', 'DELETE', path, { ...options, body });
  }

  /** Opens a watch and yields its events until the server closes the stream or `signal` aborts. */
  async *watch<T>(path: string, query: RequestOptions['query'], signal: AbortSignal): AsyncGenerator<WatchEvent<T>> {
    const res = await this.send('watch', 'GET', path, { query: { ...query, watch: true }, signal });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw apiError('WATCH', path, status, await readBody(res));
    // Lines are cut from the raw bytes: no string concatenation per chunk, one decode per event.
    let pending: Buffer[] = [];
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        let start = 0;
        let newline: number;
        while ((newline = chunk.indexOf(0x0a, start)) >= 0) {
          const line = pending.length > 0 ? Buffer.concat([...pending, chunk.subarray(start, newline)]) : chunk.subarray(start, newline);
          pending = [];
          start = newline + 1;
          const text = line.toString('utf8');
          if (text.trim()) yield JSON.parse(text) as WatchEvent<T>;
        }
        if (start < chunk.length) pending.push(chunk.subarray(start));
      }
    } finally {
      res.destroy();
    }
  }

  /** Fails with a clear message when the API server cannot be reached or rejects our credentials. */
  async checkReachable(timeoutMs: number): Promise<void> {
    try {
      await this.get('/version', { timeoutMs });
    } catch (err) {
      throw new VkError('VK_KUBE_CONNECT', `cannot reach the API server at ${this.server.origin}: ${(err as Error).message}`, { cause: err });
    }
  }
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let parsed: Status | undefined;
  try {
    parsed = JSON.parse(text) as Status;
  } catch {
    // Not a Status object (a proxy, or a plain-text error): keep the raw text.
  }
  return new KubeApiError(method, path, status, parsed?.reason ?? 'Unknown', parsed?.message ?? text.slice(0, 500));
}
