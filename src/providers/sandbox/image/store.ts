// A content-addressed image store under one data directory, shared by every pod:
//
//   <dataDir>/blobs/sha256/<hex>            manifests, indexes, configs and layer blobs, each verified
//                                           against its digest before it is renamed into place
//   <dataDir>/layers/sha256/<diff_id hex>/  one unpacked layer (fs/) + layer.json; keyed by the
//                                           uncompressed digest, so it is unpacked once whatever the
//                                           compression or image it comes in
//   <dataDir>/images/sha256/<manifest hex>/ the assembled rootfs/ (files hardlinked from the layers)
//                                           + image.json (config, layers, platform)
//   <dataDir>/refs/<hash>.json              reference (and platform) → manifest digest, for
//                                           IfNotPresent and Never
//   <dataDir>/tmp/                          partial downloads and half-built directories; emptied
//                                           at open
//
// Everything is built in tmp/ and renamed into place, so a crash leaves no half-made blob,
// layer or image behind. Concurrent pulls of one image (same reference, platform and
// credentials) share one promise; different references of one image share blobs, layers and
// the rootfs through their digests.
//
// A pod never gets the image rootfs itself: createRootfs() copies it (reflinks where the
// filesystem has them; see rootfs.ts for the hardlink mode and its trade-off), or a runtime can
// mount `image.rootfs` read-only as an overlayfs lowerdir.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Secret } from '../../../kube/types.ts';
import type { Credential } from './auth.ts';
import { CredentialConfigError, credentialsForImage } from './credentials.ts';
import { splitDigest } from './digest.ts';
import { ImagePullError } from './errors.ts';
import { LayerError, unpackLayer, type UnpackResult } from './layer.ts';
import {
  type Descriptor,
  type ImageConfigFile,
  LAYER_MEDIA_TYPES,
  ManifestError,
  parseImageConfig,
  type ImageRuntimeConfig,
  type Platform,
} from './manifest.ts';
import { formatPlatform, hostPlatform } from './platform.ts';
import { decidePull } from './pull-policy.ts';
import { parseImageReference, type ImageReference } from './reference.ts';
import { RegistryClient, type RegistryClientOptions, type ResolvedImage } from './registry-client.ts';
import { assembleRootfs, cloneRootfs, type CloneMode } from './rootfs.ts';
import { raceAbort } from '../../../util/abort.ts';
import { mapLimit } from '../../../util/map-limit.ts';
import { SingleFlight } from '../../../util/single-flight.ts';

export interface ImageStoreOptions {
  dataDir: string;
  /** A client, or options for one. */
  registry?: RegistryClient | RegistryClientOptions;
  /** Platform to pull. Default: the host's. */
  platform?: Platform;
  /** chown files to their owners in the image. Default: when running as root. */
  preserveOwnership?: boolean;
  /** Layers downloaded and unpacked at once per pull. Default 3. */
  layerConcurrency?: number;
}

export interface PullOptions {
  /** Credentials to try in order; a later one is tried only when the registry refuses the earlier. */
  credentials?: readonly Credential[];
  /** Or: the pod's imagePullSecrets, matched to the image like the kubelet does. */
  pullSecrets?: readonly Secret[];
  /** Stops waiting (rejecting with the signal's reason); the shared download itself goes on for other callers and the cache. */
  signal?: AbortSignal;
}

export interface StoredLayer {
  digest: string;
  diffId: string;
  mediaType: string;
  size: number;
}

export interface StoredImage {
  /** The reference this record was found or pulled by, canonical (docker.io/library/busybox:latest). */
  reference: string;
  /** Digest of the image manifest (the platform's, for an index). */
  digest: string;
  /** Digest of the index the manifest came from, if any. */
  indexDigest: string | undefined;
  /** `repo@digest`: what the kubelet reports as imageID. */
  imageId: string;
  configDigest: string;
  /** Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts, ... */
  config: ImageRuntimeConfig;
  platform: Platform;
  layers: StoredLayer[];
  /** Sum of the (compressed) layer sizes. */
  size: number;
  /** The assembled root filesystem: read-only by convention; never give it to a pod directly. */
  rootfs: string;
}

interface ImageFile {
  schema: 1;
  name: string;
  digest: string;
  indexDigest?: string;
  configDigest: string;
  config: ImageRuntimeConfig;
  platform: Platform;
  layers: StoredLayer[];
  size: number;
  createdAt: string;
}

interface RefFile {
  reference: string;
  platform: string;
  digest: string;
  indexDigest?: string;
  updatedAt: string;
}

interface LayerFile {
  diffId: string;
  digest: string;
  mediaType: string;
  implicitDirs: string[];
  skipped: UnpackResult['skipped'];
  entries: number;
}

export interface EnsureResult {
  image: StoredImage;
  /** 'pulled': the registry was asked (maybe nothing new was downloaded); 'present': used as found. */
  action: 'pulled' | 'present';
}

function hexOf(digest: string): string {
  return splitDigest(digest).hex;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class ImageStore {
  readonly dataDir: string;
  readonly platform: Platform;
  private readonly client: RegistryClient;
  private readonly preserveOwnership: boolean;
  private readonly layerConcurrency: number;
  private readonly pulls = new SingleFlight<StoredImage>();
  private readonly builds = new SingleFlight<ImageFile>();
  private readonly blobFetches = new SingleFlight<string>();
  private readonly unpacks = new SingleFlight<LayerFile>();
  private readonly shutdown = new AbortController();

  private constructor(options: ImageStoreOptions) {
    this.dataDir = path.resolve(options.dataDir);
    this.platform = options.platform ?? hostPlatform();
    this.client = options.registry instanceof RegistryClient ? options.registry : new RegistryClient(options.registry ?? {});
    this.preserveOwnership = options.preserveOwnership ?? process.getuid?.() === 0;
    this.layerConcurrency = options.layerConcurrency ?? 3;
  }

  /** Opens (creating) the store and empties its tmp/ (leftovers of an interrupted process). */
  static async open(options: ImageStoreOptions): Promise<ImageStore> {
    const store = new ImageStore(options);
    await rm(store.dir('tmp'), { recursive: true, force: true });
    for (const sub of ['blobs/sha256', 'layers/sha256', 'images/sha256', 'refs', 'tmp']) await mkdir(store.dir(sub), { recursive: true });
    return store;
  }

  private dir(...parts: string[]): string {
    return path.join(this.dataDir, ...parts);
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = splitDigest(digest);
    return this.dir('blobs', algorithm, hex);
  }

  private layerDir(diffId: string): string {
    return this.dir('layers', splitDigest(diffId).algorithm, hexOf(diffId));
  }

  private imageDir(digest: string): string {
    return this.dir('images', splitDigest(digest).algorithm, hexOf(digest));
  }

  private refPath(ref: ImageReference): string {
    const key = createHash('sha256')
      .update(`${ref.canonical}\n${formatPlatform(this.platform)}`)
      .digest('hex');
    return this.dir('refs', `${key}.json`);
  }

  private async tmpDir(prefix: string): Promise<string> {
    const dir = this.dir('tmp', `${prefix}-${randomBytes(6).toString('hex')}`);
    await mkdir(dir);
    return dir;
  }

  private toStored(reference: string, file: ImageFile): StoredImage {
    return {
      reference,
      digest: file.digest,
      indexDigest: file.indexDigest,
      imageId: `${file.name}@${file.indexDigest ?? file.digest}`,
      configDigest: file.configDigest,
      config: file.config,
      platform: file.platform,
      layers: file.layers,
      size: file.size,
      rootfs: path.join(this.imageDir(file.digest), 'rootfs'),
    };
  }

  private async readImage(digest: string): Promise<ImageFile | undefined> {
    return readJson<ImageFile>(path.join(this.imageDir(digest), 'image.json'));
  }

  /** The image for `image` if it is in the store (no registry access). Throws InvalidImageNameError. */
  async lookup(image: string): Promise<StoredImage | undefined> {
    const ref = parseImageReference(image);
    const refFile = await readJson<RefFile>(this.refPath(ref));
    if (refFile) {
      const file = await this.readImage(refFile.digest);
      if (file) return this.toStored(ref.canonical, file);
    }
    if (ref.digest) {
      const file = await this.readImage(ref.digest);
      if (file) return this.toStored(ref.canonical, file);
    }
    return undefined;
  }

  /** Every image in the store. */
  async list(): Promise<StoredImage[]> {
    const out: StoredImage[] = [];
    for (const hex of await readdir(this.dir('images', 'sha256'))) {
      const file = await this.readImage(`sha256:${hex}`);
      if (file) out.push(this.toStored(`${file.name}@${file.digest}`, file));
    }
    return out;
  }

  /**
   * Applies imagePullPolicy (Kubernetes default when empty): uses the stored image, or pulls.
   * Throws ImagePullError: ErrImageNeverPull, InvalidImageName, or ErrImagePull.
   */
  async ensure(image: string, policy: string | undefined, options: PullOptions = {}): Promise<EnsureResult> {
    const local = await this.lookup(image);
    const decision = decidePull(image, policy, local !== undefined);
    if (decision.action === 'fail') throw decision.error;
    if (decision.action === 'use-local') return { image: local!, action: 'present' };
    return { image: await this.pull(image, options), action: 'pulled' };
  }

  /**
   * Pulls `image` for the store's platform: resolves its manifest and, unless that image is
   * already here, fetches the config and the missing layers and assembles the rootfs.
   * Throws ImagePullError.
   */
  async pull(image: string, options: PullOptions = {}): Promise<StoredImage> {
    const ref = parseImageReference(image);
    let credentials: readonly Credential[];
    try {
      credentials = options.credentials ?? (options.pullSecrets ? credentialsForImage(options.pullSecrets, ref) : []);
    } catch (err) {
      if (err instanceof CredentialConfigError) throw ImagePullError.pull(image, err.message, { cause: err });
      throw err;
    }
    const credentialKey = createHash('sha256').update(JSON.stringify(credentials)).digest('hex');
    const key = `${ref.canonical}\n${credentialKey}`;
    // Shared by every caller, so it takes no caller's signal: one pod giving up does not
    // fail the others' pull (nor waste what was downloaded). Each caller stops waiting on its own.
    return raceAbort(
      this.pulls.run(key, () => this.pullWithCredentials(ref, credentials)),
      options.signal,
    );
  }

  /** Aborts every pull in progress (their callers get an error); the store stays usable for lookups. */
  close(): void {
    this.shutdown.abort(new Error('image store closed'));
  }

  /** A private copy of the image's rootfs at `dest` (which must not exist) for one pod. */
  async createRootfs(image: StoredImage, dest: string, mode: CloneMode = 'copy'): Promise<void> {
    await cloneRootfs(image.rootfs, dest, { mode, preserveOwnership: this.preserveOwnership });
  }

  private async pullWithCredentials(ref: ImageReference, credentials: readonly Credential[]): Promise<StoredImage> {
    const attempts: (Credential | undefined)[] = credentials.length > 0 ? [...credentials] : [undefined];
    for (const [i, credential] of attempts.entries()) {
      try {
        return await this.pullOnce(ref, credential);
      } catch (err) {
        if (err instanceof ImagePullError && err.isAuthError && i < attempts.length - 1) continue;
        throw err;
      }
    }
    throw new Error('unreachable');
  }

  private async pullOnce(ref: ImageReference, credential: Credential | undefined): Promise<StoredImage> {
    const request = { ...(credential ? { credential } : {}), signal: this.shutdown.signal };
    const resolved = await this.client.resolve(ref, { ...request, platform: this.platform });
    let file = await this.readImage(resolved.digest);
    if (!file) {
      file = await this.builds.run(resolved.digest, () => this.build(ref, resolved, request));
    }
    const refFile: RefFile = {
      reference: ref.canonical,
      platform: formatPlatform(this.platform),
      digest: resolved.digest,
      ...(resolved.index ? { indexDigest: resolved.index.digest } : {}),
      updatedAt: new Date().toISOString(),
    };
    await this.writeAtomic(this.refPath(ref), JSON.stringify(refFile));
    const stored = this.toStored(ref.canonical, file);
    return resolved.index ? { ...stored, indexDigest: resolved.index.digest, imageId: `${ref.name}@${resolved.index.digest}` } : stored;
  }

  private async writeAtomic(file: string, content: string | Uint8Array): Promise<void> {
    const tmp = this.dir('tmp', `${path.basename(file)}.${randomBytes(6).toString('hex')}`);
    await writeFile(tmp, content);
    await rename(tmp, file);
  }

  /** Fetches config and layers and assembles the rootfs of a resolved image. */
  private async build(ref: ImageReference, resolved: ResolvedImage, request: { credential?: Credential; signal?: AbortSignal }): Promise<ImageFile> {
    const fail = (detail: string, cause?: unknown): never => {
      throw ImagePullError.pull(ref.original, detail, cause === undefined ? {} : { cause });
    };
    // Keep the manifests: they are content too, and let a later lookup by digest work offline.
    if (!(await exists(this.blobPath(resolved.digest)))) await this.writeAtomic(this.blobPath(resolved.digest), resolved.manifestBytes);
    if (resolved.index && !(await exists(this.blobPath(resolved.index.digest))))
      await this.writeAtomic(this.blobPath(resolved.index.digest), resolved.index.bytes);

    const manifest = resolved.manifest;
    const configPath = this.blobPath(manifest.config.digest);
    let configBytes: Uint8Array;
    if (await exists(configPath)) {
      configBytes = await readFile(configPath);
    } else {
      configBytes = await this.client.fetchBlobBytes(ref, manifest.config, request);
      await this.writeAtomic(configPath, configBytes);
    }
    let configFile: ImageConfigFile;
    try {
      configFile = parseImageConfig(configBytes);
    } catch (err) {
      if (err instanceof ManifestError) fail(`config ${manifest.config.digest}: ${err.message}`, err);
      throw err;
    }
    const platform: Platform = { os: configFile.os, architecture: configFile.architecture, ...(configFile.variant ? { variant: configFile.variant } : {}) };
    if (!resolved.platform && (platform.os !== this.platform.os || platform.architecture !== this.platform.architecture)) {
      fail(`image is for ${formatPlatform(platform)}, not ${formatPlatform(this.platform)}`);
    }
    const diffIds = configFile.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) fail(`manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff_ids`);
    for (const layer of manifest.layers) {
      if (!LAYER_MEDIA_TYPES.has(layer.mediaType)) fail(`layer ${layer.digest}: unsupported layer media type ${layer.mediaType}`);
    }

    const layers = await mapLimit(manifest.layers, this.layerConcurrency, (descriptor, i) => this.ensureLayer(ref, descriptor, diffIds[i]!, request));

    const work = await this.tmpDir('image');
    try {
      const rootfs = path.join(work, 'rootfs');
      await mkdir(rootfs, { mode: 0o755 });
      await assembleRootfs(
        rootfs,
        layers.map((l) => ({ dir: path.join(this.layerDir(l.diffId), 'fs'), implicitDirs: l.implicitDirs })),
        { preserveOwnership: this.preserveOwnership },
      );
      const file: ImageFile = {
        schema: 1,
        name: ref.name,
        digest: resolved.digest,
        ...(resolved.index ? { indexDigest: resolved.index.digest } : {}),
        configDigest: manifest.config.digest,
        config: configFile.config ?? {},
        platform,
        layers: manifest.layers.map((d, i) => ({ digest: d.digest, diffId: diffIds[i]!, mediaType: d.mediaType, size: d.size })),
        size: manifest.layers.reduce((sum, d) => sum + d.size, 0),
        createdAt: new Date().toISOString(),
      };
      await writeFile(path.join(work, 'image.json'), JSON.stringify(file, null, 2));
      await this.moveIntoPlace(work, this.imageDir(resolved.digest));
      return (await this.readImage(resolved.digest)) ?? file;
    } catch (err) {
      await rm(work, { recursive: true, force: true });
      if (err instanceof ImagePullError) throw err;
      return fail(`assembling the root filesystem: ${(err as Error).message}`, err);
    }
  }

  /** Renames a finished directory into place; if another pull got there first, keeps theirs. */
  private async moveIntoPlace(from: string, to: string): Promise<void> {
    try {
      await rename(from, to);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      await rm(from, { recursive: true, force: true });
    }
  }

  /** The blob on disk, downloading it once however many pulls want it. */
  private async ensureBlob(ref: ImageReference, descriptor: Descriptor, request: { credential?: Credential; signal?: AbortSignal }): Promise<string> {
    const file = this.blobPath(descriptor.digest);
    if (await exists(file)) return file;
    return this.blobFetches.run(descriptor.digest, () =>
      this.client.fetchBlob(ref, descriptor, file, { ...request, tmpDir: this.dir('tmp') }).then(() => file),
    );
  }

  /** The unpacked layer, unpacking it once per diff_id. */
  private async ensureLayer(
    ref: ImageReference,
    descriptor: Descriptor,
    diffId: string,
    request: { credential?: Credential; signal?: AbortSignal },
  ): Promise<LayerFile> {
    const existing = await readJson<LayerFile>(path.join(this.layerDir(diffId), 'layer.json'));
    if (existing) return existing;
    return this.unpacks.run(diffId, async () => {
      const blob = await this.ensureBlob(ref, descriptor, request);
      const work = await this.tmpDir('layer');
      try {
        const fs = path.join(work, 'fs');
        await mkdir(fs, { mode: 0o755 });
        const result = await unpackLayer(blob, fs, {
          diffId,
          mediaType: descriptor.mediaType,
          preserveOwnership: this.preserveOwnership,
          ...(request.signal ? { signal: request.signal } : {}),
        });
        const layerFile: LayerFile = {
          diffId,
          digest: descriptor.digest,
          mediaType: descriptor.mediaType,
          implicitDirs: result.implicitDirs,
          skipped: result.skipped,
          entries: result.entries,
        };
        await writeFile(path.join(work, 'layer.json'), JSON.stringify(layerFile));
        await this.moveIntoPlace(work, this.layerDir(diffId));
        return (await readJson<LayerFile>(path.join(this.layerDir(diffId), 'layer.json'))) ?? layerFile;
      } catch (err) {
        await rm(work, { recursive: true, force: true });
        if (err instanceof LayerError) throw ImagePullError.pull(ref.original, `layer ${descriptor.digest}: ${err.message}`, { cause: err });
        throw err;
      }
    });
  }
}
