// The client side of the wire: HTTP(S) requests to the provider server with the version
// header, bearer token, TLS/mTLS, per-attempt timeouts, retries with jittered exponential
// backoff for idempotent calls, response size limits, and every failure turned into a
// VkError with a clear message. Nothing a server sends can throw anything else.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientOptions } from 'ws';
import { AbortedError, ProtocolError, ProviderUnavailableError, TimeoutError, errorMessage, type VkError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { decodeError, errorBodySchema, isProviderAnswer, statusName } from '../../protocol/errors.ts';
import type { Query } from '../../protocol/query.ts';
import { PROTOCOL_VERSION, TRACEPARENT_HEADER, VERSION_HEADER, type ProtocolVersion } from '../../protocol/wire.ts';
import { tracer } from '../../tracing/tracer.ts';
import { backoffDelayMs, type BackoffPolicy } from '../../util/backoff.ts';
import { loadRemoteTls, readRemoteToken, type RemoteProviderConfig, type RemoteTls } from './config.ts';

/** What the transport knows about a failed call, beyond the error's class. */
export interface CallFailure {
  /** The HTTP status; 0 when the server was not reached (or did not answer in time). */
  status: number;
  /** The code of the server's error body, when it sent one. */
  code?: string;
  /** Worth another attempt: the server was not reached, or a proxy's overload answer (no error body of ours). */
  retryable: boolean;
}

const failures = new WeakMap<Error, CallFailure>();

function failed<E extends Error>(err: E, failure: CallFailure): E {
  failures.set(err, failure);
  return err;
}

/** The status, code and retryability of an error the transport threw (undefined for others). */
export function callFailure(err: unknown): CallFailure | undefined {
  return err instanceof Error ? failures.get(err) : undefined;
}

export interface CallOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Default true: every unary call of the protocol is idempotent (createPod by its UID contract). */
  idempotent?: boolean;
  /** Overrides config.retries. */
  retries?: number;
  timeoutMs?: number;
  /** Overrides the negotiated protocol version (start-up asks before it knows). */
  version?: ProtocolVersion;
}

export interface CallResult<T> {
  status: number;
  body: T;
}

/** Retries of one call: full jitter, as many clients may hit one server at once. */
export const CALL_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 2_000, jitter: 'full' };

export class RemoteTransport {
  readonly base: URL;
  readonly origin: string;
  /** The protocol version of every call: the newest both sides speak, set once at start-up. */
  version: ProtocolVersion = PROTOCOL_VERSION;
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
    this.agent =
      this.base.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 64, ...this.tls }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  get timeoutMs(): number {
    return this.config.timeoutMs;
  }

  close(): void {
    this.closed = true;
    this.agent.destroy();
  }

  url(path: string, query: Query = {}): URL {
    const url = new URL(path.replace(/^\//, ''), this.base);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  headers(version: ProtocolVersion = this.version): Record<string, string> {
    const traceparent = tracer().traceparent();
    return {
      [VERSION_HEADER]: String(version),
      'User-Agent': 'virtual-kubelet-ts-remote',
      ...(this.token && { Authorization: `Bearer ${this.token}` }),
      ...(traceparent && { [TRACEPARENT_HEADER]: traceparent }),
    };
  }

  /** Options for a WebSocket session (exec, attach, port-forward) to the same server. */
  webSocketOptions(): ClientOptions {
    return { headers: this.headers(), handshakeTimeout: this.config.timeoutMs, perMessageDeflate: false, maxPayload: 16 << 20, ...this.tls };
  }

  webSocketUrl(path: string, query: Query | undefined): string {
    const url = this.url(path, query);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }

  /** The error for an aborted call: VK_ABORTED, never a timeout. */
  aborted(method: string, path: string, signal: AbortSignal | undefined): AbortedError {
    return failed(new AbortedError(`${method} ${path}: aborted`, { cause: signal?.reason }), { status: 0, retryable: false });
  }

  /** A unary JSON call; retried per the options. Only 2xx resolves. */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
    const retries = options.idempotent === false ? 0 : (options.retries ?? this.config.retries);
    let refreshedToken = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.send(method, path, options);
        const text = await this.readBody(res, method, path, options.timeoutMs ?? this.config.timeoutMs, options.signal);
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
        if (options.signal?.aborted) throw this.aborted(method, path, options.signal);
        const retry = (callFailure(err)?.retryable ?? false) && attempt < retries && !this.closed;
        if (!retry) throw err;
        const wait = backoffDelayMs(CALL_BACKOFF, attempt);
        this.log.debug({ method, path, attempt: attempt + 1, retryInMs: Math.round(wait), err: errorMessage(err) }, 'remote provider call failed; retrying');
        try {
          await sleep(wait, undefined, { signal: options.signal });
        } catch {
          throw this.aborted(method, path, options.signal);
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
    throw this.errorFor(method, path, status, await this.readBody(res, method, path, undefined, options.signal));
  }

  /**
   * One request. A reset on a kept-alive socket the server had closed (it restarted, or closed
   * the idle connection as we sent) says nothing about the server now: sent again once, on a new
   * connection, as Node's documentation advises; every call of the protocol may be repeated.
   */
  private send(method: string, path: string, options: CallOptions, staleSocketRetry = true): Promise<IncomingMessage> {
    if (this.closed)
      return Promise.reject(failed(new ProviderUnavailableError(`remote provider client for ${this.origin} is closed`), { status: 0, retryable: false }));
    if (options.signal?.aborted) return Promise.reject(this.aborted(method, path, options.signal));
    const url = this.url(path, options.query);
    const version = options.version ?? this.version;
    const headers = this.headers(version);
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
        const answered = res.headers[VERSION_HEADER];
        if (answered !== undefined && answered !== String(version)) {
          res.destroy();
          reject(
            failed(new ProtocolError(`remote provider at ${this.origin} speaks protocol version ${String(answered)}; this client speaks ${version}`), {
              status: res.statusCode ?? 0,
              retryable: false,
            }),
          );
          return;
        }
        resolve(res);
      });
      // Until the response headers arrive; a stream's body may then take as long as it likes.
      const timer = setTimeout(
        () =>
          req.destroy(
            failed(new TimeoutError(`remote provider at ${this.origin} did not answer ${method} ${url.pathname} within ${timeoutMs} ms`), {
              status: 0,
              retryable: true,
            }),
          ),
        timeoutMs,
      );
      req.on('error', (err) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        const code = (err as NodeJS.ErrnoException).code;
        if (callFailure(err)) reject(err);
        else if (options.signal?.aborted) reject(this.aborted(method, url.pathname, options.signal));
        else if (staleSocketRetry && req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) resolve(this.send(method, path, options, false));
        else
          reject(
            failed(new ProviderUnavailableError(`remote provider at ${this.origin} is unreachable: ${errorMessage(err)}`, { cause: err }), {
              status: 0,
              retryable: true,
            }),
          );
      });
      req.end(payload);
    });
  }

  /** The whole body, within maxResponseBytes and (when given) timeoutMs. */
  private async readBody(res: IncomingMessage, method: string, path: string, timeoutMs?: number, signal?: AbortSignal): Promise<string> {
    const limit = this.config.maxResponseBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () =>
              res.destroy(
                failed(new TimeoutError(`remote provider at ${this.origin} did not finish answering ${method} ${path} within ${timeoutMs} ms`), {
                  status: 0,
                  retryable: true,
                }),
              ),
            timeoutMs,
          );
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) {
          res.destroy();
          throw failed(new ProtocolError(`remote provider answer to ${method} ${path} is larger than ${limit} bytes (maxResponseBytes)`), {
            status: res.statusCode ?? 0,
            retryable: false,
          });
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (callFailure(err)) throw err;
      if (signal?.aborted) throw this.aborted(method, path, signal);
      throw failed(
        new ProviderUnavailableError(`remote provider at ${this.origin} cut the answer to ${method} ${path}: ${errorMessage(err)}`, { cause: err }),
        { status: 0, retryable: true },
      );
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
      throw failed(new ProtocolError(`remote provider sent malformed JSON for ${method} ${path}: ${errorMessage(err)}`), { status: 200, retryable: false });
    }
  }

  /**
   * The error a non-2xx answer stands for: the class its code names (NotFoundError,
   * PodRejectedError, TryLaterError, ...), with the provider's message as it is; a refused
   * request, or an answer without our error body (a proxy's page), names the call and status.
   */
  errorFor(method: string, path: string, status: number, text: string): VkError {
    let parsed: ReturnType<typeof errorBodySchema.safeParse> | undefined;
    try {
      parsed = errorBodySchema.safeParse(JSON.parse(text));
    } catch {
      // Not JSON: quote the start of it.
    }
    if (parsed?.success) {
      const error = parsed.data.error;
      if (isProviderAnswer(status, error.code)) return failed(decodeError(status, error), { status, code: error.code, retryable: false });
      const name = statusName(status, error.code);
      const err = decodeError(status, {
        ...error,
        message: `remote provider rejected ${method} ${path}: HTTP ${status}${name ? ` ${name}` : ''}: ${error.message}`,
      });
      return failed(err, { status, code: error.code, retryable: false });
    }
    const detail = text.trim().slice(0, 200) || http.STATUS_CODES[status] || 'no details';
    const name = statusName(status, undefined);
    const err = decodeError(status, { message: `remote provider rejected ${method} ${path}: HTTP ${status}${name ? ` ${name}` : ''}: ${detail}` });
    return failed(err, { status, retryable: status === 429 || status === 502 || status === 503 || status === 504 });
  }
}
