// The sandbox runtime's one door to the image layer (./image/): pull per policy, image config,
// a private root filesystem per container instance, and the process a container runs.
// Images named in config.localImages come from a local directory instead (no registry).
//
// Spare root filesystems: copying an image's rootfs costs a new inode per directory and symlink
// (busybox: ~270 of them, 60-100 ms on ext4), on the way of every container start. So after a
// container of a store image starts, one more copy of that image's rootfs is made in the
// background (<spareDir>/, same filesystem as the pods) and the next container of that image
// gets it by a rename. It is the same fresh, private copy createRootfs would make (store images
// never change); spares are kept for the few images used last and removed at start-up.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm } from 'node:fs/promises';
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
import { overlayDirs, type OverlayRootfs } from './overlay.ts';

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
  rootfsMode: 'overlay' | 'copy' | 'hardlink';
  /** Where spare root filesystems are kept (on the pods' filesystem); none without it. */
  spareDir?: string;
  /** Images a spare is kept for (the ones used last). Default 4. */
  spareImages?: number;
}

export class Images {
  private readonly store: ImageStore;
  private readonly options: ImagesOptions;
  /** Ready spare rootfs by image digest, the last used last. */
  private readonly spares = new Map<string, string>();
  private readonly making = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(store: ImageStore, options: ImagesOptions) {
    this.store = store;
    this.options = options;
  }

  static async open(options: ImagesOptions): Promise<Images> {
    const store = await ImageStore.open({ dataDir: options.imageDir, registry: { insecureRegistries: options.insecureRegistries } });
    if (options.spareDir) {
      // Spares of an earlier process may be half made: start over.
      await rm(options.spareDir, { recursive: true, force: true });
      await mkdir(options.spareDir, { recursive: true });
    }
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

  /**
   * The container's root filesystem at `dest` (which must not exist): in overlay mode, an empty
   * mount point with the overlay to mount on it (overlay.ts); else a private copy of the image's.
   */
  async createRootfs(prepared: PreparedImage, dest: string): Promise<OverlayRootfs | undefined> {
    if (prepared.source.kind === 'local') {
      await cp(prepared.source.dir, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      return undefined;
    }
    const stored = prepared.source.stored;
    if (this.options.rootfsMode === 'overlay') {
      const overlay = overlayDirs(dest, stored.rootfs);
      for (const dir of [dest, overlay.upper, overlay.work]) await mkdir(dir);
      return overlay;
    }
    // One on the way is further along than a copy started now.
    await this.making.get(stored.digest);
    const spare = this.spares.get(stored.digest);
    if (spare !== undefined) {
      this.spares.delete(stored.digest);
      try {
        await rename(spare, dest);
        return undefined;
      } catch {
        await rm(spare, { recursive: true, force: true }).catch(() => undefined);
      }
    }
    await this.store.createRootfs(stored, dest, this.options.rootfsMode);
    return undefined;
  }

  /**
   * Makes a spare copy of the image's rootfs in the background for the next createRootfs of
   * this image, unless there is one (or one on the way); no-op for local images.
   */
  prepareSpare(prepared: PreparedImage): void {
    const spareDir = this.options.spareDir;
    const mode = this.options.rootfsMode;
    if (!spareDir || this.closed || prepared.source.kind !== 'store' || mode === 'overlay') return;
    const stored = prepared.source.stored;
    const key = stored.digest;
    const ready = this.spares.get(key);
    if (ready !== undefined) {
      // Used last now.
      this.spares.delete(key);
      this.spares.set(key, ready);
      return;
    }
    if (this.making.has(key)) return;
    const dest = path.join(spareDir, `${key.replace(/[^a-zA-Z0-9]/g, '-')}-${randomBytes(4).toString('hex')}`);
    const making = (async () => {
      try {
        await this.store.createRootfs(stored, dest, mode);
        if (this.closed) throw new Error('closed');
        this.spares.set(key, dest);
        for (const [old, dir] of this.spares) {
          if (this.spares.size <= (this.options.spareImages ?? 4)) break;
          this.spares.delete(old);
          await rm(dir, { recursive: true, force: true });
        }
      } catch {
        await rm(dest, { recursive: true, force: true }).catch(() => undefined);
      }
    })().finally(() => this.making.delete(key));
    this.making.set(key, making);
  }

  /** What the container runs (image config merged with the spec); throws ContainerConfigError. */
  process(prepared: PreparedImage, container: Container, podSpec: PodSpec | undefined): ContainerProcess {
    return containerProcess(prepared.config, container, podSpec);
  }

  /** The container user as numbers, looked up in its root filesystem; throws UserResolveError. */
  user(rootfs: string, process: ContainerProcess): Promise<ResolvedUser> {
    return resolveUser(rootfs, process.user);
  }

  /** `dir` (a path inside the container) relative to the root, when `rootfs` lacks it; undefined when it is there. */
  async missingDir(rootfs: string, dir: string): Promise<string | undefined> {
    const rel = await resolveInRoot(rootfs, dir);
    return existsSync(path.join(rootfs, rel)) ? undefined : rel;
  }

  /** Makes `dir` (a path inside the container) exist in its root filesystem, without following links out of it. */
  async ensureDir(rootfs: string, dir: string): Promise<void> {
    const rel = await resolveInRoot(rootfs, dir);
    await mkdir(path.join(rootfs, rel), { recursive: true, mode: 0o755 });
  }

  /** Stops making spares and waits for the ones under way (each removes its copy once closed), so nothing writes into the data directory afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.making.values());
    this.store.close();
  }
}
