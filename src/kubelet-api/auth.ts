// Authentication and authorization on the kubelet port, the way the kubelet does it in webhook mode:
//   - a client certificate that chains to the client CA (verified by TLS against that CA only):
//     CN is the user, O the groups;
//   - else a bearer token, checked with a TokenReview;
//   - then a SubjectAccessReview on resource nodes, name = this node, verb from the HTTP method and
//     a subresource from the path (stats, metrics, log, proxy, and for /pods and /healthz first the
//     fine-grained pods/healthz subresources, as KubeletFineGrainedAuthz does since 1.33).
// Decisions are cached like the kubelet's: authentication 2 min, allowed 5 min, denied 30 s.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { SingleFlight } from '../util/single-flight.ts';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** The API calls the reviews need; a KubeClient, or a fake in tests. */
export type ReviewClient = Pick<KubeClient, 'create'>;

export interface RequestAttributes {
  verb: string;
  /** Checked in order; the request is allowed when any of them is. */
  subresources: string[];
}

export type AuthorizationResult = { allowed: true } | { allowed: false; status: 403 | 500; message: string };

export interface KubeletAuthOptions {
  nodeName: string;
  log: Logger;
  authnTtlMs?: number;
  /** How long a failed token review is remembered. */
  authnFailureTtlMs?: number;
  allowTtlMs?: number;
  denyTtlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

const AUTH_DEFAULTS = { authnTtlMs: 120_000, authnFailureTtlMs: 30_000, allowTtlMs: 300_000, denyTtlMs: 30_000, maxEntries: 10_000 };

const METHOD_VERBS: Record<string, string> = { GET: 'get', HEAD: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

function isSubpath(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/$/, '');
  return path === p || (path.startsWith(p) && path[p.length] === '/');
}

/** The kubelet's mapping of a request to authorization attributes (pkg/kubelet/server/auth.go). */
export function requestAttributes(method: string, path: string): RequestAttributes {
  const verb = METHOD_VERBS[method] ?? '';
  const subresources: string[] = [];
  if (isSubpath(path, '/pods') || isSubpath(path, '/runningpods')) subresources.push('pods');
  else if (isSubpath(path, '/healthz')) subresources.push('healthz');
  else if (isSubpath(path, '/configz')) subresources.push('configz');
  else if (isSubpath(path, '/statusz')) subresources.push('statusz');
  if (isSubpath(path, '/stats')) subresources.push('stats');
  else if (isSubpath(path, '/metrics')) subresources.push('metrics');
  else if (isSubpath(path, '/logs')) subresources.push('log');
  else if (isSubpath(path, '/checkpoint')) subresources.push('checkpoint');
  else subresources.push('proxy');
  return { verb, subresources };
}

/** A size-bounded map whose entries expire; the least recently used entry goes first when full. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly max: number;
  private readonly now: () => number;

  constructor(max: number, now: () => number = Date.now) {
    this.max = max;
    this.now = now;
  }

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    if (entry.expires <= this.now()) return undefined;
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + ttlMs });
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

interface TokenReviewResponse {
  status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> }; error?: string };
}

interface SubjectAccessReviewResponse {
  status?: { allowed?: boolean; denied?: boolean; reason?: string; evaluationError?: string };
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The user a verified client certificate names, or undefined when the connection has none that chains to the client CA. */
function certificateUser(req: IncomingMessage): UserInfo | undefined {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = asList(cert?.subject?.CN)[0];
  if (!cn) return undefined;
  return { username: cn, groups: asList(cert.subject.O) };
}

function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1];
}

export class KubeletAuth {
  private readonly client: ReviewClient;
  private readonly nodeName: string;
  private readonly log: Logger;
  private readonly ttl: typeof AUTH_DEFAULTS;
  private readonly tokens: TtlCache<UserInfo | null>;
  private readonly decisions: TtlCache<boolean>;
  /** Concurrent identical reviews share one webhook call. */
  private readonly inflight = new SingleFlight<unknown>();
  /** Webhook calls made (for tests and metrics). */
  readonly reviews = { token: 0, access: 0 };

  constructor(client: ReviewClient, options: KubeletAuthOptions) {
    this.client = client;
    this.nodeName = options.nodeName;
    this.log = options.log.child({ component: 'kubelet-auth' });
    this.ttl = {
      authnTtlMs: options.authnTtlMs ?? AUTH_DEFAULTS.authnTtlMs,
      authnFailureTtlMs: options.authnFailureTtlMs ?? AUTH_DEFAULTS.authnFailureTtlMs,
      allowTtlMs: options.allowTtlMs ?? AUTH_DEFAULTS.allowTtlMs,
      denyTtlMs: options.denyTtlMs ?? AUTH_DEFAULTS.denyTtlMs,
      maxEntries: options.maxEntries ?? AUTH_DEFAULTS.maxEntries,
    };
    this.tokens = new TtlCache(this.ttl.maxEntries, options.now);
    this.decisions = new TtlCache(this.ttl.maxEntries, options.now);
  }

  /** The request's user: a verified client certificate first, then a bearer token; undefined means 401. */
  async authenticate(req: IncomingMessage): Promise<UserInfo | undefined> {
    const fromCert = certificateUser(req);
    if (fromCert) return fromCert;
    const token = bearerToken(req);
    if (!token) return undefined;
    return (await this.reviewToken(token)) ?? undefined;
  }

  private async reviewToken(token: string): Promise<UserInfo | null> {
    const key = createHash('sha256').update(token).digest('base64');
    const cached = this.tokens.get(key);
    if (cached !== undefined) return cached;
    return this.once(`token:${key}`, async () => {
      this.reviews.token++;
      let user: UserInfo | null = null;
      try {
        const review = await this.client.create<TokenReviewResponse>('/apis/authentication.k8s.io/v1/tokenreviews', {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          spec: { token },
        });
        const u = review.status?.user;
        if (review.status?.authenticated && u?.username) {
          user = { username: u.username, uid: u.uid, groups: u.groups ?? [], extra: u.extra };
        } else if (review.status?.error) {
          this.log.debug({ error: review.status.error }, 'token review rejected the token');
        }
      } catch (err) {
        // Not cached: the API server may be back for the next request.
        this.log.warn({ err: errorMessage(err) }, 'token review failed; answering 401');
        return null;
      }
      this.tokens.set(key, user, user ? this.ttl.authnTtlMs : this.ttl.authnFailureTtlMs);
      return user;
    });
  }

  /** Allowed when a SubjectAccessReview allows any of the attributes' subresources (in order). */
  async authorize(user: UserInfo, attrs: RequestAttributes): Promise<AuthorizationResult> {
    for (const subresource of attrs.subresources) {
      let allowed: boolean;
      try {
        allowed = await this.review(user, attrs.verb, subresource);
      } catch (err) {
        this.log.warn({ err: errorMessage(err), user: user.username, verb: attrs.verb, subresource }, 'subject access review failed');
        return {
          allowed: false,
          status: 500,
          message: `Authorization error (user=${user.username}, verb=${attrs.verb}, resource=nodes, subresource=${subresource})`,
        };
      }
      if (allowed) return { allowed: true };
    }
    return {
      allowed: false,
      status: 403,
      message: `Forbidden (user=${user.username}, verb=${attrs.verb}, resource=nodes, subresource(s)=[${attrs.subresources.join(' ')}])`,
    };
  }

  private async review(user: UserInfo, verb: string, subresource: string): Promise<boolean> {
    const key = JSON.stringify([user.username, user.uid ?? '', [...user.groups].sort(), user.extra ?? {}, verb, subresource]);
    const cached = this.decisions.get(key);
    if (cached !== undefined) return cached;
    return this.once(`sar:${key}`, async () => {
      this.reviews.access++;
      const review = await this.client.create<SubjectAccessReviewResponse>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          ...(user.uid && { uid: user.uid }),
          groups: user.groups,
          ...(user.extra && { extra: user.extra }),
          resourceAttributes: { verb, group: '', version: 'v1', resource: 'nodes', subresource, name: this.nodeName },
        },
      });
      const allowed = review.status?.allowed === true;
      if (!allowed && review.status?.evaluationError) this.log.debug({ error: review.status.evaluationError }, 'subject access review evaluation error');
      this.decisions.set(key, allowed, allowed ? this.ttl.allowTtlMs : this.ttl.denyTtlMs);
      return allowed;
    });
  }

  private once<T>(key: string, call: () => Promise<T>): Promise<T> {
    return this.inflight.run(key, call) as Promise<T>;
  }
}
