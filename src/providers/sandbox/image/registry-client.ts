// A pull-only client for the OCI Distribution API (Docker Registry HTTP API v2):
// manifests (OCI index/manifest, Docker manifest list/v2; schema 1 refused), the host's
// platform picked from an index, blobs streamed to disk with digest verification, and the
// registry's auth: a 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
// sends us to the token endpoint (anonymously, or with Basic credentials) and we retry with
// the token; `Basic` challenges are answered with the credentials. Tokens are cached per
// host, scope and user until they expire.
//
// Plain http is used for loopback registries (localhost, 127.0.0.0/8, [::1]) and for hosts
// listed in `insecureRegistries`; https otherwise. Every failure is an ImagePullError whose
// message carries the registry's own error text.
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { basicAuthorization, type Challenge, type Credential, parseTokenResponse, parseWwwAuthenticate, pullScope, tokenUrl } from './auth.ts';
import { DigestError, digestOf, splitDigest, writeVerified } from './digest.ts';
import { describeRegistryError, ImagePullError } from './errors.ts';
import { type Descriptor, type ImageManifest, MANIFEST_ACCEPT, ManifestError, type ParsedManifest, parseManifest, type Platform } from './manifest.ts';
import { formatPlatform, hostPlatform, selectPlatformManifest } from './platform.ts';
import type { ImageReference } from './reference.ts';

export interface RegistryClientOptions {
  /** Registries reached over plain http: `host` (any port) or `host:port`. Loopback always is. */
  insecureRegistries?: readonly string[];
  /** Time to wait for response headers, per request. Default 60 s. */
  requestTimeoutMs?: number;
  /** Largest manifest accepted. Default 4 MiB (what registries themselves allow). */
  maxManifestBytes?: number;
  userAgent?: string;
  /** For tests. */
  fetch?: typeof globalThis.fetch;
}

export interface RequestOptions {
  /** Credential for this registry; absent means anonymous. */
  credential?: Credential;
  signal?: AbortSignal;
}

export interface FetchedManifest {
  /** Digest of the bytes as served (verified against the reference when it was a digest). */
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
  parsed: ParsedManifest;
}

export interface ResolvedImage {
  ref: ImageReference;
  /** Digest of the image manifest for our platform. */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  /** The index the manifest was picked from, when the reference named one. */
  index?: { digest: string; mediaType: string; bytes: Uint8Array };
  /** The platform the index entry declared (undefined for a plain manifest: check the config). */
  platform: Platform | undefined;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;
const TOKEN_EXPIRY_MARGIN_MS = 10_000;

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function hostnameOf(hostPort: string): string {
  if (hostPort.startsWith('[')) return hostPort.slice(0, hostPort.indexOf(']') + 1);
  const colon = hostPort.lastIndexOf(':');
  return colon === -1 ? hostPort : hostPort.slice(0, colon);
}

function causeText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return err.message;
  if (cause && typeof cause.message === 'string') return cause.message;
  return err.message;
}

async function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await res.body?.cancel();
    throw new Error(`${what} is ${declared} bytes, more than the ${limit} allowed`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > limit) throw new Error(`${what} is more than the ${limit} bytes allowed`);
      parts.push(chunk);
    }
  }
  return Buffer.concat(parts);
}

export class RegistryClient {
  private readonly insecure: ReadonlySet<string>;
  private readonly timeoutMs: number;
  private readonly maxManifestBytes: number;
  private readonly userAgent: string;
  private readonly fetchImpl: typeof globalThis.fetch;
  /** Authorization header values by host, scope and user. */
  private readonly authCache = new Map<string, { authorization: string; expiresAt: number }>();

  constructor(options: RegistryClientOptions = {}) {
    this.insecure = new Set(options.insecureRegistries ?? []);
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
    this.userAgent = options.userAgent ?? 'virtual-kubelet-ts';
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  /** http or https for this registry host. */
  scheme(apiHost: string): 'http' | 'https' {
    return isLoopbackHost(hostnameOf(apiHost)) || this.insecure.has(apiHost) || this.insecure.has(hostnameOf(apiHost)) ? 'http' : 'https';
  }

  baseUrl(ref: ImageReference): string {
    return `${this.scheme(ref.apiHost)}://${ref.apiHost}/v2/${ref.path}`;
  }

  /**
   * Resolves `ref` to the image manifest for `platform` (the host's by default): fetches the
   * manifest or index, and from an index the matching platform's manifest.
   */
  async resolve(ref: ImageReference, options: RequestOptions & { platform?: Platform } = {}): Promise<ResolvedImage> {
    const want = options.platform ?? hostPlatform();
    const top = await this.fetchManifest(ref, ref.manifestRef, options);
    if (top.parsed.kind === 'manifest') {
      return { ref, digest: top.digest, mediaType: top.mediaType, manifest: top.parsed.manifest, manifestBytes: top.bytes, platform: undefined };
    }
    const chosen = selectPlatformManifest(top.parsed.index, want);
    if (!chosen) {
      const available = top.parsed.index.manifests
        .map((d) => d.platform)
        .filter((p): p is Platform => p !== undefined && p.os !== 'unknown')
        .map(formatPlatform);
      throw ImagePullError.pull(
        ref.original,
        `no matching manifest for ${formatPlatform(want)} in the manifest list entries (available: ${available.join(', ') || 'none'})`,
      );
    }
    const child = await this.fetchManifest(ref, chosen.digest, options);
    if (child.parsed.kind !== 'manifest') {
      throw ImagePullError.pull(ref.original, `manifest ${chosen.digest} for ${formatPlatform(want)} is itself an index; nested indexes are not supported`);
    }
    return {
      ref,
      digest: child.digest,
      mediaType: child.mediaType,
      manifest: child.parsed.manifest,
      manifestBytes: child.bytes,
      index: { digest: top.digest, mediaType: top.mediaType, bytes: top.bytes },
      platform: chosen.platform,
    };
  }

  /** GET /v2/<name>/manifests/<reference>, verified against the reference when it is a digest. */
  async fetchManifest(ref: ImageReference, reference: string, options: RequestOptions = {}): Promise<FetchedManifest> {
    const what = `manifest ${ref.name}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.request(ref, `${this.baseUrl(ref)}/manifests/${reference}`, { accept: MANIFEST_ACCEPT.join(', ') }, options, what);
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(res, this.maxManifestBytes, what);
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: ${causeText(err)}`, { cause: err });
    }
    const isDigest = reference.includes(':');
    const algorithm = isDigest ? splitDigest(reference).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (isDigest && digest !== reference) {
      throw ImagePullError.pull(ref.original, `${what}: digest mismatch: the registry served content with digest ${digest}`);
    }
    const headerDigest = res.headers.get('docker-content-digest');
    if (!isDigest && headerDigest && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
      throw ImagePullError.pull(ref.original, `${what}: digest mismatch: Docker-Content-Digest says ${headerDigest}, content is ${digest}`);
    }
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(bytes, res.headers.get('content-type') ?? undefined);
    } catch (err) {
      if (err instanceof ManifestError) throw ImagePullError.pull(ref.original, `${what}: ${err.message}`, { cause: err });
      throw err;
    }
    return { digest, mediaType: parsed.mediaType, bytes, parsed };
  }

  /** GET a blob into `dest`, verified against its digest and size; nothing is left at `dest` on failure. */
  async fetchBlob(ref: ImageReference, descriptor: Descriptor, dest: string, options: RequestOptions & { tmpDir: string }): Promise<void> {
    const what = `blob ${descriptor.digest}`;
    const res = await this.request(ref, `${this.baseUrl(ref)}/blobs/${descriptor.digest}`, {}, options, what);
    if (!res.body) throw ImagePullError.pull(ref.original, `${what}: empty response`);
    const source = Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
    try {
      await writeVerified(source, dest, descriptor.digest, {
        size: descriptor.size,
        tmpDir: options.tmpDir,
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: ${err instanceof DigestError ? err.message : causeText(err)}`, { cause: err });
    }
  }

  /** GET a small blob (an image config) into memory, verified. */
  async fetchBlobBytes(ref: ImageReference, descriptor: Descriptor, options: RequestOptions = {}): Promise<Uint8Array> {
    const what = `blob ${descriptor.digest}`;
    const res = await this.request(ref, `${this.baseUrl(ref)}/blobs/${descriptor.digest}`, {}, options, what);
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(res, Math.max(descriptor.size, 1), what);
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: size mismatch: ${causeText(err)}`, { cause: err });
    }
    const actual = digestOf(bytes, splitDigest(descriptor.digest).algorithm);
    if (actual !== descriptor.digest) throw ImagePullError.pull(ref.original, `${what}: digest mismatch: expected ${descriptor.digest}, got ${actual}`);
    if (bytes.length !== descriptor.size)
      throw ImagePullError.pull(ref.original, `${what}: size mismatch: expected ${descriptor.size} bytes, got ${bytes.length}`);
    return bytes;
  }

  /** Sends a GET with cached authorization; on 401 follows the challenge once. Non-2xx → ImagePullError. */
  private async request(ref: ImageReference, url: string, headers: { accept?: string }, options: RequestOptions, what: string): Promise<Response> {
    const scope = pullScope(ref.path);
    const cacheKey = `${ref.apiHost}\0${scope}\0${options.credential?.username ?? ''}`;
    const cached = this.authCache.get(cacheKey);
    let authorization = cached && cached.expiresAt > Date.now() ? cached.authorization : undefined;
    let res = await this.send(ref, url, headers, authorization, options.signal, what);
    if (res.status === 401) {
      const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
      const bearer = challenges.find((c) => c.scheme === 'bearer');
      const basic = challenges.find((c) => c.scheme === 'basic');
      let next: { authorization: string; expiresAt: number } | undefined;
      if (bearer) {
        next = await this.fetchToken(ref, bearer, scope, options, what);
      } else if (basic && options.credential) {
        next = { authorization: basicAuthorization(options.credential), expiresAt: Number.POSITIVE_INFINITY };
      }
      if (next && next.authorization !== authorization) {
        await res.body?.cancel();
        authorization = next.authorization;
        this.authCache.set(cacheKey, next);
        res = await this.send(ref, url, headers, authorization, options.signal, what);
      }
    }
    if (!res.ok) {
      if (res.status === 401) this.authCache.delete(cacheKey);
      const body = await res.text().catch(() => '');
      const { text, codes } = describeRegistryError(res.status, res.statusText, body);
      const hint = res.status === 401 && !options.credential ? ' (pulled anonymously: no credentials matched this registry)' : '';
      throw ImagePullError.pull(ref.original, `${what}: ${text}${hint}`, { status: res.status, registryCodes: codes });
    }
    return res;
  }

  private async fetchToken(
    ref: ImageReference,
    challenge: Challenge,
    scope: string,
    options: RequestOptions,
    what: string,
  ): Promise<{ authorization: string; expiresAt: number }> {
    let url: URL;
    try {
      url = tokenUrl(challenge, scope);
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: registry sent an unusable Bearer challenge: ${causeText(err)}`, { status: 401 });
    }
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (options.credential) headers.authorization = basicAuthorization(options.credential);
    const who = options.credential ? `as ${options.credential.username}` : 'anonymously';
    let res: Response;
    try {
      res = await this.fetchWithTimeout(url.toString(), headers, options.signal);
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: failed to fetch a token ${who} from ${url.origin}${url.pathname}: ${causeText(err)}`, { cause: err });
    }
    const body = await res.text().catch(() => '');
    if (!res.ok) {
      const { text, codes } = describeRegistryError(res.status, res.statusText, body);
      throw ImagePullError.pull(ref.original, `${what}: failed to fetch a token ${who} from ${url.origin}${url.pathname}: ${text}`, {
        status: res.status,
        registryCodes: codes,
      });
    }
    try {
      const token = parseTokenResponse(body);
      return { authorization: `Bearer ${token.token}`, expiresAt: token.expiresAt - TOKEN_EXPIRY_MARGIN_MS };
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: ${causeText(err)}`);
    }
  }

  private async send(
    ref: ImageReference,
    url: string,
    extra: { accept?: string },
    authorization: string | undefined,
    signal: AbortSignal | undefined,
    what: string,
  ): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent };
    if (extra.accept) headers.accept = extra.accept;
    if (authorization) headers.authorization = authorization;
    try {
      return await this.fetchWithTimeout(url, headers, signal);
    } catch (err) {
      throw ImagePullError.pull(ref.original, `${what}: GET ${url}: ${causeText(err)}`, { cause: err });
    }
  }

  /** fetch with a deadline for the response headers only (bodies may take as long as they take). */
  private async fetchWithTimeout(url: string, headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Response> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new Error(`no response within ${this.timeoutMs} ms`)), this.timeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
    try {
      return await this.fetchImpl(url, { headers, signal: combined, redirect: 'follow' });
    } catch (err) {
      if (combined.aborted && combined.reason instanceof Error) throw combined.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
