// Pushes an image to a registry over the OCI Distribution API: each blob is checked with HEAD
// and, when missing, uploaded in one POST + PUT (monolithic upload); then the manifest is PUT
// under the tag. Authentication follows the same challenges as the pull client (auth.ts):
// Bearer tokens asked for with the `pull,push` scope, or Basic credentials. Plain http is used
// for the same hosts as for pulls (loopback and `insecureRegistries`).
import { openAsBlob } from 'node:fs';
import { VkError } from '../../../errors.ts';
import { basicAuthorization, type Credential, parseTokenResponse, parseWwwAuthenticate, tokenUrl } from './auth.ts';
import { describeRegistryError } from './errors.ts';
import type { Descriptor } from './manifest.ts';
import type { ImageReference } from './reference.ts';
import { RegistryClient } from './registry-client.ts';

export class ImagePushError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_IMAGE_PUSH', message, options);
  }
}

export interface PushBlob {
  descriptor: Descriptor;
  /** Where the blob's bytes are on disk. */
  file: string;
}

export interface PushImageOptions {
  ref: ImageReference;
  /** Layers and the config: uploaded unless the registry has them. */
  blobs: readonly PushBlob[];
  manifest: { mediaType: string; bytes: Uint8Array };
  credential?: Credential;
  insecureRegistries?: readonly string[];
  /** One line per step (blob uploaded or already there). */
  progress?: (line: string) => void;
}

export function pushScope(repositoryPath: string): string {
  return `repository:${repositoryPath}:pull,push`;
}

/** Pushes the blobs and the manifest; returns the manifest's URL at the registry. */
export async function pushImage(options: PushImageOptions): Promise<string> {
  const { ref, credential, progress = () => {} } = options;
  const base = new RegistryClient({ insecureRegistries: options.insecureRegistries ?? [] }).baseUrl(ref);
  const session = new PushSession(ref, credential);
  for (const blob of options.blobs) {
    const { digest, size } = blob.descriptor;
    const head = await session.send('HEAD', `${base}/blobs/${digest}`);
    if (head.ok) {
      progress(`blob ${digest} (${size} bytes): already in ${ref.apiHost}`);
      continue;
    }
    const start = await session.send('POST', `${base}/blobs/uploads/`);
    await session.expect(start, 202, `starting the upload of ${digest}`);
    const location = start.headers.get('location');
    if (!location) throw new ImagePushError(`${ref.apiHost} started the upload of ${digest} without a Location header`);
    const url = new URL(location, base);
    url.searchParams.set('digest', digest);
    const put = await session.send('PUT', url.toString(), { body: await openAsBlob(blob.file), contentType: 'application/octet-stream' });
    await session.expect(put, 201, `uploading ${digest}`);
    progress(`blob ${digest} (${size} bytes): uploaded`);
  }
  const manifestUrl = `${base}/manifests/${ref.tag ?? 'latest'}`;
  const put = await session.send('PUT', manifestUrl, { body: new Blob([options.manifest.bytes]), contentType: options.manifest.mediaType });
  await session.expect(put, 201, `putting the manifest as ${ref.original}`);
  return manifestUrl;
}

/** Requests with the authorization the registry asked for, found once and kept for the push. */
class PushSession {
  private authorization: string | undefined;
  private readonly ref: ImageReference;
  private readonly credential: Credential | undefined;

  constructor(ref: ImageReference, credential: Credential | undefined) {
    this.ref = ref;
    this.credential = credential;
  }

  async send(method: string, url: string, body?: { body: Blob; contentType: string }): Promise<Response> {
    let res = await this.fetchOnce(method, url, body);
    if (res.status === 401 && (await this.authorize(res))) res = await this.fetchOnce(method, url, body);
    return res;
  }

  async expect(res: Response, status: number, what: string): Promise<void> {
    if (res.status === status) {
      await res.body?.cancel();
      return;
    }
    const { text } = describeRegistryError(res.status, res.statusText, await res.text().catch(() => ''));
    const hint = res.status === 401 && !this.credential ? ' (pushed anonymously: no credentials for this registry)' : '';
    throw new ImagePushError(`${this.ref.original}: ${what}: ${text}${hint}`);
  }

  private async fetchOnce(method: string, url: string, body: { body: Blob; contentType: string } | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': 'virtual-kubelet-ts' };
    if (this.authorization) headers.authorization = this.authorization;
    if (body) headers['content-type'] = body.contentType;
    try {
      return await fetch(url, { method, headers, ...(body ? { body: body.body } : {}), signal: AbortSignal.timeout(600_000) });
    } catch (err) {
      throw new ImagePushError(`${this.ref.original}: ${method} ${url}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Answers a 401's challenge; false when there is nothing new to try. */
  private async authorize(res: Response): Promise<boolean> {
    await res.body?.cancel();
    const challenges = parseWwwAuthenticate(res.headers.get('www-authenticate') ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    let next: string | undefined;
    if (bearer) {
      const url = tokenUrl(bearer, pushScope(this.ref.path));
      url.searchParams.delete('scope');
      url.searchParams.append('scope', pushScope(this.ref.path));
      const headers: Record<string, string> = this.credential ? { authorization: basicAuthorization(this.credential) } : {};
      const tokenRes = await fetch(url, { headers, signal: AbortSignal.timeout(60_000) });
      const body = await tokenRes.text();
      if (!tokenRes.ok) {
        const { text } = describeRegistryError(tokenRes.status, tokenRes.statusText, body);
        throw new ImagePushError(`${this.ref.original}: token for pushing from ${url.origin}${url.pathname}: ${text}`);
      }
      next = `Bearer ${parseTokenResponse(body).token}`;
    } else if (challenges.some((c) => c.scheme === 'basic') && this.credential) {
      next = basicAuthorization(this.credential);
    }
    if (!next || next === this.authorization) return false;
    this.authorization = next;
    return true;
  }
}
