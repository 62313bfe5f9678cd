// OCI and Docker v2 manifest, index and image-config shapes, their media types, and
// parsing that checks just what a pull relies on. Docker schema 1 is recognised only to
// be refused with a clear error.
import { VkError } from '../../../errors.ts';
import { digestProblem } from './reference.ts';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociLayerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What we ask a registry for, best first (the Accept header). */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest];

export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  MediaType.ociLayerNondistributable,
  MediaType.ociLayerNondistributableGzip,
  MediaType.ociLayerNondistributableZstd,
  MediaType.dockerLayerGzip,
  MediaType.dockerForeignLayerGzip,
  // Some old pushers labelled uncompressed Docker layers like this.
  'application/vnd.docker.image.rootfs.diff.tar',
]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** The runtime part of an image config (`config` in the OCI image config JSON). */
export interface ImageRuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

/** The OCI image configuration blob. */
export interface ImageConfigFile {
  architecture: string;
  os: string;
  variant?: string;
  created?: string;
  config?: ImageRuntimeConfig;
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export type ParsedManifest = { kind: 'index'; mediaType: string; index: ImageIndex } | { kind: 'manifest'; mediaType: string; manifest: ImageManifest };

/** A manifest, index or image config that does not parse or that we do not support. */
export class ManifestError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_IMAGE_PULL', message, options);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw new ManifestError(`${where}: not an object`);
  const { mediaType, digest, size } = value;
  if (typeof mediaType !== 'string') throw new ManifestError(`${where}: mediaType missing`);
  if (typeof digest !== 'string') throw new ManifestError(`${where}: digest missing`);
  const problem = digestProblem(digest);
  if (problem) throw new ManifestError(`${where}: ${problem}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ManifestError(`${where}: invalid size`);
  return value as unknown as Descriptor;
}

/**
 * Parses a manifest or index body. `contentType` is the response's Content-Type (parameters
 * ignored); the body's own mediaType wins when they disagree, and a body without one is told
 * apart by its fields. Schema 1 throws ManifestError with "unsupported".
 */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  const headerType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (headerType === MediaType.dockerSchema1 || headerType === MediaType.dockerSchema1Signed) {
    throw new ManifestError(
      `unsupported manifest media type ${headerType} (Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`manifest is not JSON (Content-Type ${headerType || 'none'}): ${(err as Error).message}`);
  }
  if (!isObject(json)) throw new ManifestError('manifest is not a JSON object');
  if (json.schemaVersion === 1) {
    throw new ManifestError(
      'unsupported manifest schema version 1 (Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client)',
    );
  }
  if (json.schemaVersion !== 2) throw new ManifestError(`unsupported manifest schemaVersion ${JSON.stringify(json.schemaVersion)}`);
  const bodyType = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const mediaType =
    bodyType ?? (headerType && headerType !== 'application/json' ? headerType : Array.isArray(json.manifests) ? MediaType.ociIndex : MediaType.ociManifest);

  if (mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList) {
    if (!Array.isArray(json.manifests)) throw new ManifestError('index has no manifests list');
    json.manifests.forEach((d, i) => checkDescriptor(d, `manifests[${i}]`));
    return { kind: 'index', mediaType, index: json as unknown as ImageIndex };
  }
  if (mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest) {
    checkDescriptor(json.config, 'config');
    if (!Array.isArray(json.layers)) throw new ManifestError('manifest has no layers list');
    json.layers.forEach((d, i) => checkDescriptor(d, `layers[${i}]`));
    return { kind: 'manifest', mediaType, manifest: json as unknown as ImageManifest };
  }
  throw new ManifestError(`unsupported manifest media type ${mediaType}`);
}

/** Parses an image config blob; checks the fields a pull relies on. */
export function parseImageConfig(body: Uint8Array): ImageConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`image config is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(json)) throw new ManifestError('image config is not a JSON object');
  const rootfs = json.rootfs;
  if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids) || !rootfs.diff_ids.every((d) => typeof d === 'string' && !digestProblem(d))) {
    throw new ManifestError('image config has no valid rootfs.diff_ids');
  }
  if (json.config !== undefined && json.config !== null && !isObject(json.config)) throw new ManifestError('image config: config is not an object');
  return json as unknown as ImageConfigFile;
}
