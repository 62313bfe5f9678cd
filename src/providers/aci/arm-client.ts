// The ARM REST client for Microsoft.ContainerInstance. Why not @azure/arm-containerinstance:
// its pipeline retries 429/5xx and polls long-running operations on its own schedule, while the
// core wants throttling handed back as TryLaterError with Retry-After and a pod's progress read
// from its instance view; talking REST with the published api-version also makes what we send
// exactly what the contract tests validate against containerInstance.json. Tokens come from an
// @azure/identity TokenCredential.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { TokenCredential } from '@azure/identity';
import { AbortedError, ConfigError, NotFoundError, ProviderUnavailableError, TryLaterError, VkError, errorMessage } from '../../errors.ts';
import { backoffDelayMs } from '../../util/backoff.ts';
import { ACI_API_VERSION, type CloudError } from './arm-types.ts';
import type { AciConfig } from './config.ts';

/** ARM answered with an error the provider has no better class for; `status` and `code` let callers branch. */
export class AciApiError extends VkError {
  readonly status: number;
  readonly armCode: string;
  constructor(what: string, status: number, armCode: string, message: string) {
    super('VK_PROVIDER', `${what}: ${status} ${armCode}: ${message}`);
    this.status = status;
    this.armCode = armCode;
  }
}

/** ARM refused the token (401/403): the node turns NotReady with this message; retrying at once would not help. */
export class CredentialRefusedError extends ProviderUnavailableError {}

export interface ArmResponse<T> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

export interface ArmRequest {
  method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';
  /** Path under the endpoint, without the api-version. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal: AbortSignal;
  /** Names the call in errors, e.g. "create container group default-web". */
  what: string;
}

const TRANSIENT_CONNECT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);
/** ARM error codes that mean "out of quota or capacity for now". */
const QUOTA_CODES = /quota|capacity|ServiceUnavailable|ResourceRequestsThrottled|TooManyRequests/i;

function parseRetryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

export class ArmClient {
  private readonly config: AciConfig;
  private readonly credential: TokenCredential;
  private readonly agent: https.Agent;
  private readonly scope: string;
  /** Every request made (method and path), for tests and debugging; bounded. */
  readonly recent: string[] = [];

  constructor(config: AciConfig, credential: TokenCredential) {
    this.config = config;
    this.credential = credential;
    const ca = config.caFile ? readCa(config.caFile) : undefined;
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ...(ca && { ca }) });
    this.scope = config.tokenScope ?? `${new URL(config.endpoint).origin}/.default`;
  }

  /** The resource group's path: /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerInstance. */
  get groupsBase(): string {
    return `/subscriptions/${encodeURIComponent(this.config.subscriptionId)}/resourceGroups/${encodeURIComponent(this.config.resourceGroup)}/providers/Microsoft.ContainerInstance/containerGroups`;
  }

  get locationBase(): string {
    return `/subscriptions/${encodeURIComponent(this.config.subscriptionId)}/providers/Microsoft.ContainerInstance/locations/${encodeURIComponent(this.config.region)}`;
  }

  async token(signal: AbortSignal): Promise<string> {
    try {
      const token = await this.credential.getToken(this.scope, { abortSignal: signal });
      if (!token) throw new Error('the credential returned no token');
      return token.token;
    } catch (err) {
      if (signal.aborted) throw new AbortedError('ARM token: aborted', { cause: signal.reason });
      throw new ProviderUnavailableError(`ARM token for ${this.scope}: ${errorMessage(err).split('\n')[0]}`, { cause: err });
    }
  }

  /** One call with the transient-failure retries of config.retry; the last failure is thrown as the class the core branches on. */
  async call<T>(request: ArmRequest): Promise<ArmResponse<T>> {
    const { attempts, baseMs, maxMs } = this.config.retry;
    for (let attempt = 0; ; attempt++) {
      if (request.signal.aborted) throw new AbortedError(`${request.what}: aborted`, { cause: request.signal.reason });
      let failure: VkError;
      try {
        const response = await this.once<T>(request);
        if (response.status < 400) return response;
        failure = this.failure(request, response as ArmResponse<unknown>);
      } catch (err) {
        if (err instanceof AbortedError || request.signal.aborted) throw err;
        failure = err instanceof VkError ? err : new ProviderUnavailableError(`${request.what}: ${errorMessage(err)}`, { cause: err });
      }
      const transient = (failure instanceof TryLaterError || failure instanceof ProviderUnavailableError) && !(failure instanceof CredentialRefusedError);
      const retryAfter = failure instanceof TryLaterError ? failure.retryAfterMs : undefined;
      // A Retry-After longer than our backoff cap goes back to the core, which waits without holding a worker.
      if (!transient || attempt + 1 >= attempts || (retryAfter ?? 0) > maxMs) throw failure;
      const delay = retryAfter ?? backoffDelayMs({ baseMs, maxMs, jitter: 'full' }, attempt);
      await sleep(delay, request.signal, request.what);
    }
  }

  private failure(request: ArmRequest, response: ArmResponse<unknown>): VkError {
    const error = (response.body as CloudError | undefined)?.error;
    const code = error?.code ?? 'Unknown';
    const message = error?.message ?? (typeof response.body === 'string' ? response.body : '');
    const text = `${request.what}: ${response.status} ${code}: ${message}`;
    const retryAfter = parseRetryAfter(response.headers['retry-after']);
    if (response.status === 429) return new TryLaterError(text, retryAfter);
    if (response.status === 401 || response.status === 403) return new CredentialRefusedError(`${text} (the credential was refused)`);
    if (response.status === 404) return new NotFoundError(text);
    if (response.status === 409 || QUOTA_CODES.test(code)) return new TryLaterError(text, retryAfter);
    if (response.status >= 500) return new ProviderUnavailableError(text);
    return new AciApiError(request.what, response.status, code, message);
  }

  private async once<T>(request: ArmRequest): Promise<ArmResponse<T>> {
    const token = await this.token(request.signal);
    const url = new URL(request.path, this.config.endpoint);
    url.searchParams.set('api-version', ACI_API_VERSION);
    for (const [key, value] of Object.entries(request.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
    this.recent.push(`${request.method} ${url.pathname}`);
    if (this.recent.length > 200) this.recent.shift();
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method: request.method,
          agent: this.agent,
          signal: request.signal,
          timeout: this.config.requestTimeoutMs,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(payload && { 'content-type': 'application/json', 'content-length': payload.length }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            if (text && /json/.test(res.headers['content-type'] ?? '')) {
              try {
                body = JSON.parse(text);
              } catch {
                body = text;
              }
            } else if (!text) body = undefined;
            resolve({ status: res.statusCode ?? 0, body: body as T, headers: res.headers });
          });
        },
      );
      req.on('timeout', () => req.destroy(new ProviderUnavailableError(`${request.what}: no answer within ${this.config.requestTimeoutMs} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (request.signal.aborted) reject(new AbortedError(`${request.what}: aborted`, { cause: request.signal.reason }));
        else if (err instanceof VkError) reject(err);
        else if (err.code && TRANSIENT_CONNECT.has(err.code))
          reject(new ProviderUnavailableError(`${request.what}: ${url.origin}: ${err.code}`, { cause: err }));
        else reject(new ProviderUnavailableError(`${request.what}: ${url.origin}: ${err.message}`, { cause: err }));
      });
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function readCa(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`aci provider config: caFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function sleep(ms: number, signal: AbortSignal, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
