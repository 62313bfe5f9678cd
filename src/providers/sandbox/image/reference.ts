// Image references with Docker's grammar and normalization (github.com/distribution/reference):
//   busybox                  → docker.io/library/busybox:latest
//   user/app:1.2             → docker.io/user/app:1.2
//   127.0.0.1:5000/app       → 127.0.0.1:5000/app:latest
//   app@sha256:<64 hex>      → docker.io/library/app@sha256:... (no default tag when a digest is given)
// A first path component is a registry host when it contains '.' or ':', is 'localhost', or
// has upper-case letters (which then fail as a host only if malformed); the repository path must
// be lower case.
import { InvalidImageNameError } from './errors.ts';

export const DEFAULT_DOMAIN = 'docker.io';
/** Where docker.io's API really is. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

export interface ImageReference {
  /** The reference as written in the pod spec. */
  readonly original: string;
  /** Registry host (with port), normalized: docker.io, ghcr.io, 127.0.0.1:5000. */
  readonly domain: string;
  /** Repository path inside the registry: library/busybox. */
  readonly path: string;
  /** domain/path: docker.io/library/busybox. */
  readonly name: string;
  /** The tag: 'latest' when neither tag nor digest was given; undefined for a digest-only reference. */
  readonly tag: string | undefined;
  /** algorithm:hex, when given. */
  readonly digest: string | undefined;
  /** name[:tag][@digest]: the fully qualified reference. */
  readonly canonical: string;
  /** What to ask the registry's manifests endpoint for: the digest if any, else the tag. */
  readonly manifestRef: string;
  /** Host for the HTTP API: registry-1.docker.io for docker.io, else `domain`. */
  readonly apiHost: string;
}

const alphaNumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainAndPort = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const referenceRegexp = new RegExp(`^((?:${domainAndPort}/)?${pathComponent}(?:/${pathComponent})*)(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const domainRegexp = new RegExp(`^${domainAndPort}$`);
const hexIdentifier = /^[a-f0-9]{64}$/;
const NAME_TOTAL_LENGTH_MAX = 255;

const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Validates `algorithm:hex`; returns an error text or undefined. */
export function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon < 1) return `invalid digest "${digest}"`;
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  const length = DIGEST_HEX_LENGTH[algorithm];
  if (length === undefined) return `unsupported digest algorithm "${algorithm}"`;
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) return `invalid ${algorithm} digest "${digest}"`;
  return undefined;
}

/** Splits off the registry host the way Docker does (splitDockerDomain). */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  let domain: string;
  let remainder: string;
  const first = slash === -1 ? '' : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `library/${remainder}`;
  return { domain, remainder };
}

/**
 * Parses and normalizes an image reference. Throws InvalidImageNameError (reason
 * InvalidImageName) with the reason it is invalid.
 */
export function parseImageReference(image: string): ImageReference {
  const fail = (detail?: string): never => {
    throw new InvalidImageNameError(image, detail);
  };
  if (image === '' || image.trim() !== image) fail();
  if (hexIdentifier.test(image)) fail(`invalid repository name (${image}), cannot specify 64-byte hexadecimal strings`);

  // Separate the name from tag/digest before normalizing, as ParseNormalizedNamed does.
  const at = image.indexOf('@');
  const beforeDigest = at === -1 ? image : image.slice(0, at);
  const lastColon = beforeDigest.lastIndexOf(':');
  const lastSlash = beforeDigest.lastIndexOf('/');
  const namePart = lastColon > lastSlash ? beforeDigest.slice(0, lastColon) : beforeDigest;
  const { domain, remainder } = splitDomain(namePart);
  if (remainder.toLowerCase() !== remainder) fail(`repository name (${remainder}) must be lowercase`);
  if (!domainRegexp.test(domain)) fail();

  const full = `${domain}/${remainder}${image.slice(namePart.length)}`;
  const match = referenceRegexp.exec(full);
  if (!match) fail();
  const name = match![1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) fail(`repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const digest = match![3];
  if (digest !== undefined) {
    const problem = digestProblem(digest);
    if (problem) fail(problem);
  }
  const tag = match![2] ?? (digest === undefined ? 'latest' : undefined);
  const path = name.slice(domain.length + 1);
  const canonical = `${name}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  return {
    original: image,
    domain,
    path,
    name,
    tag,
    digest,
    canonical,
    manifestRef: digest ?? tag!,
    apiHost: domain === DEFAULT_DOMAIN ? DOCKER_HUB_API_HOST : domain,
  };
}

/** The same repository at another tag or digest (a platform manifest of an index, say). */
export function withDigest(ref: ImageReference, digest: string): ImageReference {
  return parseImageReference(`${ref.name}@${digest}`);
}

/** The short form Docker prints: busybox:latest for docker.io/library/busybox:latest. */
export function familiarName(ref: ImageReference): string {
  let name = ref.name;
  if (ref.domain === DEFAULT_DOMAIN) {
    name = ref.path.startsWith('library/') ? ref.path.slice('library/'.length) : ref.path;
  }
  return `${name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}
