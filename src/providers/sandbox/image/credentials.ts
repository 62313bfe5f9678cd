// Registry credentials from a pod's imagePullSecrets, matched to an image the way the kubelet's
// credential keyring does (pkg/credentialprovider):
// - secrets of type kubernetes.io/dockerconfigjson (`.dockerconfigjson`: {"auths": {...}}) and
//   kubernetes.io/dockercfg (`.dockercfg`: {...}); each entry has `auth` (base64 user:password,
//   which wins) or `username`/`password`;
// - a key is a schemeless URL: `host[:port][/path]`; https://, http:// and a /v1/ or /v2/ path
//   prefix are dropped, so "https://index.docker.io/v1/" becomes "index.docker.io";
// - a key matches an image name (docker.io/library/busybox) when the hosts have as many
//   dot-separated parts and each part glob-matches (`*.example.com`), the ports are equal
//   (no port matches only no port), and the image path starts with the key's path;
// - more specific keys come first (the kubelet sorts keys in reverse lexical order), secrets in
//   the order the pod lists them; when nothing matches, Docker Hub images use the
//   "index.docker.io" entry. The caller tries each credential in turn.
import type { Secret } from '../../../kube/types.ts';
import { VkError } from '../../../errors.ts';
import type { Credential } from './auth.ts';
import type { ImageReference } from './reference.ts';

export const DOCKER_CONFIG_JSON_TYPE = 'kubernetes.io/dockerconfigjson';
export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKERCFG_TYPE = 'kubernetes.io/dockercfg';
export const DOCKERCFG_KEY = '.dockercfg';

const DEFAULT_REGISTRY_HOST = 'index.docker.io';

export interface DockerConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
  email?: string;
}

export type DockerConfig = Record<string, DockerConfigEntry>;

/** A malformed imagePullSecret or docker config; the pull fails with it (ErrImagePull). */
export class CredentialConfigError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_IMAGE_PULL', message, options);
  }
}

function entryCredential(key: string, entry: DockerConfigEntry): Credential {
  let username = typeof entry.username === 'string' ? entry.username : '';
  let password = typeof entry.password === 'string' ? entry.password : '';
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) throw new CredentialConfigError(`entry "${key}": auth is not base64 of "username:password"`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  return { username, password };
}

interface SchemelessURL {
  host: string;
  port: string;
  path: string;
}

/** Like Go's url.Parse("https://" + text) for what matters here: host, port and path, case kept. */
function parseSchemeless(text: string): SchemelessURL | undefined {
  const rest = text.replace(/^https?:\/\//, '');
  const slash = rest.indexOf('/');
  const hostPort = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (hostPort === '' || /\s/.test(hostPort)) return undefined;
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostPort);
  if (!m) return undefined;
  return { host: m[1]!, port: m[2] ?? '', path };
}

function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else source += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The kubelet's URLsMatch on schemeless URLs: glob hosts part by part, equal ports, path prefix. */
export function urlsMatch(globKey: string, target: string): boolean {
  const glob = parseSchemeless(globKey);
  const url = parseSchemeless(target);
  if (!glob || !url) return false;
  if (glob.port !== url.port) return false;
  const globParts = glob.host.split('.');
  const targetParts = url.host.split('.');
  if (globParts.length !== targetParts.length) return false;
  for (let i = 0; i < globParts.length; i++) {
    if (!globToRegExp(globParts[i]!).test(targetParts[i]!)) return false;
  }
  return url.path.startsWith(glob.path);
}

/** The key the kubelet files a config entry under: host[:port][/path] without scheme or /v1/, /v2/. */
export function keyringKey(location: string): string | undefined {
  const url = parseSchemeless(location);
  if (!url) return undefined;
  let path = url.path;
  if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
  const hostPort = url.port ? `${url.host}:${url.port}` : url.host;
  return path.length > 0 && path !== '/' ? `${hostPort}${path}` : hostPort;
}

/** A set of docker config entries, looked up like the kubelet's BasicDockerKeyring. */
export class DockerKeyring {
  private readonly creds = new Map<string, Credential[]>();
  private index: string[] = [];

  add(config: DockerConfig): this {
    for (const [location, entry] of Object.entries(config)) {
      if (typeof entry !== 'object' || entry === null) throw new CredentialConfigError(`entry "${location}" is not an object`);
      const key = keyringKey(location);
      if (key === undefined) continue; // the kubelet skips entries it cannot parse
      const list = this.creds.get(key) ?? [];
      list.push(entryCredential(location, entry));
      this.creds.set(key, list);
      this.index.push(key);
    }
    this.index = [...new Set(this.index)].sort().reverse();
    return this;
  }

  /** Credentials for an image name (domain/path, e.g. docker.io/library/busybox), best first. */
  lookup(imageName: string): Credential[] {
    const found: Credential[] = [];
    for (const key of this.index) {
      if (urlsMatch(key, imageName)) found.push(...this.creds.get(key)!);
    }
    if (found.length > 0) return found;
    if (isDefaultRegistryMatch(imageName)) return [...(this.creds.get(DEFAULT_REGISTRY_HOST) ?? [])];
    return [];
  }
}

/** Whether an image name pulls from Docker Hub, as the kubelet decides it. */
export function isDefaultRegistryMatch(image: string): boolean {
  const slash = image.indexOf('/');
  const first = slash === -1 ? image : image.slice(0, slash);
  if (first.length === 0) return false;
  if (slash === -1) return true;
  if (first === 'docker.io' || first === 'index.docker.io') return true;
  return !/[.:]/.test(first);
}

function parseConfig(secretName: string, key: string, raw: string, wrapped: boolean): DockerConfig {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new CredentialConfigError(`imagePullSecret "${secretName}": ${key} is not valid JSON: ${(err as Error).message}`);
  }
  const config = wrapped ? (json as { auths?: unknown } | null)?.auths : json;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new CredentialConfigError(`imagePullSecret "${secretName}": ${key} has no ${wrapped ? '"auths" object' : 'entries object'}`);
  }
  return config as DockerConfig;
}

/**
 * One keyring per usable secret, in the pod's order (the kubelet's UnionDockerKeyring).
 * Secrets of other types, or without the expected key, are ignored, as the kubelet does;
 * a malformed one throws CredentialConfigError.
 */
export function keyringsFromPullSecrets(secrets: readonly Secret[]): DockerKeyring[] {
  const keyrings: DockerKeyring[] = [];
  for (const secret of secrets) {
    const name = `${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
    const data = secret.data ?? {};
    const json = data[DOCKER_CONFIG_JSON_KEY];
    const cfg = data[DOCKERCFG_KEY];
    try {
      if (secret.type === DOCKER_CONFIG_JSON_TYPE && json) {
        keyrings.push(new DockerKeyring().add(parseConfig(name, DOCKER_CONFIG_JSON_KEY, Buffer.from(json, 'base64').toString('utf8'), true)));
      } else if (secret.type === DOCKERCFG_TYPE && cfg) {
        keyrings.push(new DockerKeyring().add(parseConfig(name, DOCKERCFG_KEY, Buffer.from(cfg, 'base64').toString('utf8'), false)));
      }
    } catch (err) {
      if (err instanceof CredentialConfigError && !err.message.startsWith('imagePullSecret')) {
        throw new CredentialConfigError(`imagePullSecret "${name}": ${err.message}`);
      }
      throw err;
    }
  }
  return keyrings;
}

/** The credentials to try for `ref` from the pod's pull secrets, in order; empty means anonymous. */
export function credentialsForImage(secrets: readonly Secret[], ref: ImageReference): Credential[] {
  const seen = new Set<string>();
  const out: Credential[] = [];
  for (const keyring of keyringsFromPullSecrets(secrets)) {
    for (const credential of keyring.lookup(ref.name)) {
      const id = `${credential.username}\0${credential.password}`;
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(credential);
    }
  }
  return out;
}
