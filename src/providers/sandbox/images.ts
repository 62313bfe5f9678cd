// The sandbox runtime's one door to the image layer (./image/): pull per policy, image config,
// a private root filesystem per container instance, and the process a container runs.
// Images named in config.localImages come from a local directory instead (no registry).
import { cp, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Container, PodSpec, Secret } from '../../kube/types.ts';
import {
  ContainerConfigError,
  containerProcess,
  ImagePullError,
  ImageStore,
  resolveUser,
  UserResolveError,
  type ContainerProcess,
  type ImageRuntimeConfig,
  type ResolvedUser,
  type StoredImage,
} from './image/index.ts';

import { resolveInRoot } from './image/rootfs.ts';

export { ImagePullError, ContainerConfigError, UserResolveError, resolveInRoot };

export interface PreparedImage {
  /** The reference as the pod wrote it. */
  image: string;
  /** What the kubelet reports as imageID (repo@digest). */
  imageID: string;
  config: ImageRuntimeConfig;
  /** Read-only source of the container's root filesystem. */
  source: { kind: 'store'; stored: StoredImage } | { kind: 'local'; dir: string };
}

export interface ImagesOptions {
  imageDir: string;
  localImages: Record<string, string>;
  insecureRegistries: string[];
  rootfsMode: 'copy' | 'hardlink';
}

export class Images {
  private readonly store: ImageStore;
  private readonly options: ImagesOptions;

  private constructor(store: ImageStore, options: ImagesOptions) {
    this.store = store;
    this.options = options;
  }

  static async open(options: ImagesOptions): Promise<Images> {
    const store = await ImageStore.open({ dataDir: options.imageDir, registry: { insecureRegistries: options.insecureRegistries } });
    return new Images(store, options);
  }

  /** Applies imagePullPolicy; throws ImagePullError (reason ErrImagePull, ErrImageNeverPull or InvalidImageName). */
  async ensure(container: Container, pullSecrets: readonly Secret[], signal?: AbortSignal): Promise<PreparedImage> {
    const image = container.image ?? '';
    const local = this.options.localImages[image];
    if (local !== undefined) return { image, imageID: `local://${image}`, config: {}, source: { kind: 'local', dir: local } };
    if (!image) throw new ImagePullError(image, 'container has no image', { reason: 'InvalidImageName' });
    const { image: stored } = await this.store.ensure(image, container.imagePullPolicy, { pullSecrets, ...(signal && { signal }) });
    return { image, imageID: stored.imageId, config: stored.config, source: { kind: 'store', stored } };
  }

  /** A private copy of the image's root filesystem at `dest` (which must not exist). */
  async createRootfs(prepared: PreparedImage, dest: string): Promise<void> {
    if (prepared.source.kind === 'local') {
      await cp(prepared.source.dir, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      return;
    }
    await this.store.createRootfs(prepared.source.stored, dest, this.options.rootfsMode);
  }

  /** What the container runs (image config merged with the spec); throws ContainerConfigError. */
  process(prepared: PreparedImage, container: Container, podSpec: PodSpec | undefined): ContainerProcess {
    return containerProcess(prepared.config, container, podSpec);
  }

  /** The container user as numbers, looked up in its root filesystem; throws UserResolveError. */
  user(rootfs: string, process: ContainerProcess): Promise<ResolvedUser> {
    return resolveUser(rootfs, process.user);
  }

  /** Makes `dir` (a path inside the container) exist in its root filesystem, without following links out of it. */
  async ensureDir(rootfs: string, dir: string): Promise<void> {
    const rel = await resolveInRoot(rootfs, dir);
    await mkdir(path.join(rootfs, rel), { recursive: true, mode: 0o755 });
  }

  close(): void {
    this.store.close();
  }
}
