// The client side of the wire: HTTP(S) requests to the provider server with the version
// header, bearer token, TLS/mTLS, per-attempt timeouts, retries with jittered exponential
// backoff for idempotent calls, response size limits, and every failure turned into a
// VkError with a clear message. Nothing a server sends can throw anything else.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientOptions } from 'ws';
import { NotFoundError, UnsupportedError, VkError, errorMessage } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { loadRemoteTls, readRemoteToken, type RemoteProviderConfig, type RemoteTls } from './config.ts';
import { PROTOCOL_VERSION, VERSION_HEADER } from './protocol.ts';

/** A failed call: `status` 0 means the server was not reached (or did not answer in time). */
export class RemoteCallError extends VkError {
  readonly status: number;
  /** The error code of the server's error body, when it sent one. */
  readonly errorCode: string | undefined;
  constructor(message: string, status: number, errorCode: string | undefined, options?: ErrorOptions) {
    super('VK_PROVIDER', message, options);
    this.status = status;
    this.errorCode = errorCode;
  }

  /** Worth another attempt: the server was not reached, or a proxy/overload status. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}

export interface CallOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Default true: every unary call of the protocol is idempotent (createPod by its UID contract). */
  idempotent?: boolean;
  /** Overrides config.retries. */
  retries?: number;
  timeoutMs?: number;
}

export interface CallResult<T> {
  status: number;
  body: T;
}

const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 2_000;

/** Full jitter: a random wait up to base·2^attempt, capped. */
export function backoffMs(attempt: number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

export class RemoteTransport {
  readonly base: URL;
  readonly origin: string;
  private readonly config: RemoteProviderConfig;
  private readonly agent: http.Agent;
  private readonly tls: RemoteTls;
  private token: string | undefined;
  private readonly log: Logger;
  private closed = false;

  constructor(config: RemoteProviderConfig, log: Logger) {
    this.config = config;
    this.log = log;
    this.base = new URL(config.endpoint.endsWith('/') ? config.endpoint : `${config.endpoint}/`);
    this.origin = config.endpoint.replace(/\/+$/, '');
    this.tls = loadRemoteTls(config);
    this.token = readRemoteToken(config);
    this.agent = this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 64, ...this.tls }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  get timeoutMs(): number {
    return this.config.timeoutMs;
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  url(path: string, query: CallOptions['query'] = {}): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  headers(): Record<string, string> {
    return {
      [VERSION_HEADER]: String(PROTOCOL_VERSION),
      'User-Agent': 'virtual-kubelet-ts-remote',
      ...(this.token && { Authorization: `Bearer ${this.token}` }),
    };
  }

  /** Options for a WebSocket session (exec, attach, port-forward) to the same server. */
  webSocketOptions(): ClientOptions {
    return { headers: this.headers(), handshakeTimeout: this.config.timeoutMs, perMessageDeflate: false, maxPayload: 16 << 20, ...this.tls };
  }

  webSocketUrl(path: string, query: CallOptions['query']): string {
    const url = this.url(path, query);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }

  /** A unary JSON call; retried per the options. 2xx resolves (404 too, when allow404). */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
    const retries = options.idempotent === false ? 0 : (options.retries ?? this.config.retries);
    let refreshedToken = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.send(method, path, options);
        const text = await this.readBody(res, method, path, options.timeoutMs ?? this.config.timeoutMs);
        const status = res.statusCode ?? 0;
        if (status === 401 && this.config.tokenFile && !refreshedToken) {
          // The token may have rotated: read the file again and retry once.
          refreshedToken = true;
          this.token = readRemoteToken(this.config);
          attempt--;
          continue;
        }
        if (status < 200 || status >= 300) throw this.errorFor(method, path, status, text);
        return { status, body: this.parseJson<T>(text, method, path) };
      } catch (err) {
        const retry = err instanceof RemoteCallError && err.retryable && attempt < retries && !options.signal?.aborted && !this.closed;
        if (!retry) throw err;
        const wait = backoffMs(attempt);
        this.log.debug({ method, path, attempt: attempt + 1, retryInMs: Math.round(wait), err: err.message }, 'remote provider call failed; retrying');
        try {
          await sleep(wait, undefined, { signal: options.signal });
        } catch {
          throw err;
        }
      }
    }
  }

  /**
   * A streaming call (logs, watch): resolves with the response once its headers are in and it is
   * a 2xx; otherwise reads the error body and throws. No retries; the timeout covers the headers only.
   */
  async open(method: string, path: string, options: CallOptions = {}): Promise<IncomingMessage> {
    const res = await this.send(method, path, options);
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      res.on('error', () => {}); // consumers see a cut stream as its end or their own pipeline error
      return res;
    }
    throw this.errorFor(method, path, status, await this.readBody(res, method, path));
  }

  private send(method: string, path: string, options: CallOptions): Promise<IncomingMessage> {
    if (this.closed) return Promise.reject(new RemoteCallError(`remote provider client for ${this.origin} is closed`, 0, undefined));
    const url = this.url(path, options.query);
    const headers = this.headers();
    let payload: Buffer | undefined;
    if (options.body !== undefined) {
      payload = Buffer.from(JSON.stringify(options.body));
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const timeoutMs = options.timeoutMs ?? this.config.timeoutMs;
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let settled = false;
      const req = request(url, { method, headers, agent: this.agent, signal: options.signal }, (res) => {
        settled = true;
        clearTimeout(timer);
        const version = res.headers[VERSION_HEADER];
        if (version !== undefined && version !== String(PROTOCOL_VERSION)) {
          res.destroy();
          reject(new RemoteCallError(`remote provider at ${this.origin} speaks protocol version ${String(version)}; this client speaks ${PROTOCOL_VERSION}`, res.statusCode ?? 0, 'UnsupportedVersion'));
          return;
        }
        resolve(res);
      });
      // Until the response headers arrive; a stream's body may then take as long as it likes.
      const timer = setTimeout(() => req.destroy(new RemoteCallError(`remote provider at ${this.origin} did not answer ${method} ${url.pathname} within ${timeoutMs} ms`, 0, undefined)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        if (err instanceof RemoteCallError) reject(err);
        else if (err.name === 'AbortError' || options.signal?.aborted) reject(new VkError('VK_TIMEOUT', `${method} ${url.pathname}: aborted`, { cause: err }));
        else reject(new RemoteCallError(`remote provider at ${this.origin} is unreachable: ${errorMessage(err)}`, 0, undefined, { cause: err }));
      });
      req.end(payload);
    });
  }

  /** The whole body, within maxResponseBytes and (when given) timeoutMs. */
  private async readBody(res: IncomingMessage, method: string, path: string, timeoutMs?: number): Promise<string> {
    const limit = this.config.maxResponseBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => res.destroy(new RemoteCallError(`remote provider at ${this.origin} did not finish answering ${method} ${path} within ${timeoutMs} ms`, 0, undefined)), timeoutMs);
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          res.destroy();
          throw new RemoteCallError(`remote provider answer to ${method} ${path} is larger than ${limit} bytes (maxResponseBytes)`, res.statusCode ?? 0, undefined);
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof RemoteCallError) throw err;
      throw new RemoteCallError(`remote provider at ${this.origin} cut the answer to ${method} ${path}: ${errorMessage(err)}`, 0, undefined, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private parseJson<T>(text: string, method: string, path: string): T {
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new RemoteCallError(`remote provider sent malformed JSON for ${method} ${path}: ${errorMessage(err)}`, 200, undefined);
    }
  }

  /** The error a non-2xx answer stands for: NotFound and Unsupported keep their core error types. */
  errorFor(method: string, path: string, status: number, text: string): Error {
    let code: string | undefined;
    let message: string | undefined;
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof body.error?.code === 'string') code = body.error.code;
      if (typeof body.error?.message === 'string') message = body.error.message;
    } catch {
      // Not our error body (a proxy's page, say): quote the start of it.
    }
    if (code === 'NotFound') return new NotFoundError(message ?? `${method} ${path}: not found`);
    if (code === 'Unsupported') return new UnsupportedError(message ?? `${method} ${path}: not supported by the remote provider`);
    if (code === 'ProviderError' && message !== undefined) return new RemoteCallError(message, status, code);
    const detail = message ?? (text.trim().slice(0, 200) || http.STATUS_CODES[status] || 'no details');
    return new RemoteCallError(`remote provider rejected ${method} ${path}: HTTP ${status}${code ? ` ${code}` : ''}: ${detail}`, status, code);
  }
}
