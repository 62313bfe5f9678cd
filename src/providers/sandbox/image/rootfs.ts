// Stacks unpacked layer directories into an image root filesystem, applying OCI whiteouts,
// and copies that rootfs for a pod.
//
// Applying a layer, directory by directory: first `.wh..wh..opq` (drop everything lower layers
// put in this directory), then each `.wh.<name>` (drop <name>), then the layer's own entries:
// a directory merges into an existing one (taking its mode and owner), anything else replaces
// what was there. Regular files and symlinks are hardlinked from the layer directory (same
// filesystem: no copy; falls back to copying). A directory the layer archive never
// listed (an implicit parent) keeps the lower layer's metadata, and when a lower layer made
// that path a symlink to a directory inside the rootfs (usr-merge: bin → usr/bin) its content
// goes through the symlink, as containerd's applier does. Nothing ever follows a symlink out
// of the rootfs.
//
// Pod copies (cloneRootfs): 'copy' (the default) gives every pod its own inodes, using
// reflinks (copy-on-write clones) where the filesystem has them (btrfs, xfs) and plain copies
// elsewhere; 'hardlink' is much faster and uses no space, but files then share inodes with the
// image: a pod that writes into an existing file in place (not replacing it) changes it for
// the image and every other pod. Symlinks are hardlinked too where inodes are shared anyway
// (assembling an image from its layers, 'hardlink' clones); 'copy' makes new ones. Use 'hardlink' only for read-only rootfs or trusted
// workloads, or mount the image rootfs as an overlayfs lowerdir instead.
//
// The metadata calls (lstat, mkdir, link, chown, chmod, utimes) are synchronous: each is a few
// microseconds in the kernel, while the promise version costs a thread-pool round trip, and an
// image has hundreds of entries per layer. The event loop gets a turn every YIELD_EVERY
// entries. File contents are copied, and symlinks made, asynchronously: a new symlink is a new
// inode, which can take the kernel ~0.3-0.7 ms (ext4 on this project's test machine).
import { chmodSync, chownSync, constants, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readlinkSync, utimesSync } from 'node:fs';
import { copyFile, lstat, readlink, rm, symlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** Entries handled between two turns of the event loop. */
const YIELD_EVERY = 64;

/** Resolves at once, except every YIELD_EVERY-th call, which waits for the next turn of the event loop. */
function yielder(every = YIELD_EVERY): () => Promise<void> | undefined {
  let n = 0;
  return () => (++n % every === 0 ? nextTurn() : undefined);
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

export interface LayerDir {
  /** The unpacked layer. */
  dir: string;
  /** Directories the archive did not list (from UnpackResult.implicitDirs). */
  implicitDirs?: Iterable<string>;
}

export interface RootfsOptions {
  /** chown to the recorded owners. Default: when running as root. */
  preserveOwnership?: boolean;
}

async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves `rel` inside `root` as if `root` were `/`: symlinks (absolute ones relative to
 * `root`) are followed, `..` stops at the root. Returns the path relative to the root; the
 * result may not exist.
 */
export async function resolveInRoot(root: string, rel: string): Promise<string> {
  const pending = rel.split('/').filter((p) => p && p !== '.');
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const st = await lstatOrUndefined(candidate);
    if (st?.isSymbolicLink()) {
      if (++hops > MAX_SYMLINK_HOPS) throw new Error(`too many levels of symbolic links resolving ${rel}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/').filter((p) => p && p !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return resolved.join('/');
}

function lstatOrUndefinedSync(file: string): Stats | undefined {
  return lstatSync(file, { throwIfNoEntry: false });
}

function copyMetadata(from: Stats, to: string, preserveOwnership: boolean): void {
  if (preserveOwnership) chownSync(to, from.uid, from.gid);
  chmodSync(to, from.mode & 0o7777);
}

/** link(2); false where the filesystem cannot link (another device, too many links, not allowed). */
function tryLink(src: string, dest: string): boolean {
  try {
    linkSync(src, dest);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EMLINK' && code !== 'EPERM') throw err;
    return false;
  }
}

/** Copies a file's content (reflinked where possible) and metadata. */
async function copyRegularFile(src: string, st: Stats, dest: string, preserveOwnership: boolean): Promise<void> {
  await copyFile(src, dest, constants.COPYFILE_FICLONE);
  copyMetadata(st, dest, preserveOwnership);
  utimesSync(dest, st.atime, st.mtime);
}

/** Hardlinks `src` to `dest`, or copies it with its metadata when linking is not possible. */
async function linkOrCopy(src: string, st: Stats, dest: string, preserveOwnership: boolean): Promise<void> {
  if (!tryLink(src, dest)) await copyRegularFile(src, st, dest, preserveOwnership);
}

async function copySymlink(src: string, st: Stats, dest: string, preserveOwnership: boolean): Promise<void> {
  await symlink(readlinkSync(src), dest);
  if (preserveOwnership) lchownSync(dest, st.uid, st.gid);
  lutimesSync(dest, st.atime, st.mtime);
}

/**
 * Hardlinks the symlink itself (link(2) does not follow it), or copies it. A new symlink costs a
 * new inode, which on some filesystems (ext4 here) is ~15 times a hardlink: this is for trees
 * that share inodes anyway (the store's layers and images, 'hardlink' clones).
 */
async function linkOrCopySymlink(src: string, st: Stats, dest: string, preserveOwnership: boolean): Promise<void> {
  if (!tryLink(src, dest)) await copySymlink(src, st, dest, preserveOwnership);
}

/** Applies one unpacked layer onto `root`. */
export async function applyLayer(root: string, layer: LayerDir, options: RootfsOptions = {}): Promise<void> {
  const preserveOwnership = options.preserveOwnership ?? process.getuid?.() === 0;
  const implicit = new Set(layer.implicitDirs ?? []);

  const turn = yielder();
  const applyDir = async (srcDir: string, layerRel: string, destRel: string): Promise<void> => {
    const destDir = path.join(root, destRel);
    const names = readdirSync(srcDir).sort();
    if (names.includes(OPAQUE_WHITEOUT)) {
      for (const name of readdirSync(destDir)) await rm(path.join(destDir, name), { recursive: true, force: true });
    }
    for (const name of names) {
      if (!name.startsWith(WHITEOUT_PREFIX) || name.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) continue;
      const victim = name.slice(WHITEOUT_PREFIX.length);
      if (victim === '' || victim === '.' || victim === '..') continue;
      await rm(path.join(destDir, victim), { recursive: true, force: true });
    }
    for (const name of names) {
      if (name.startsWith(WHITEOUT_PREFIX)) continue;
      await turn();
      const src = path.join(srcDir, name);
      const childLayerRel = layerRel ? `${layerRel}/${name}` : name;
      let childDestRel = destRel ? `${destRel}/${name}` : name;
      const dest = path.join(root, childDestRel);
      const st = lstatSync(src);
      const existing = lstatOrUndefinedSync(dest);
      if (st.isDirectory()) {
        if (existing?.isDirectory()) {
          if (!implicit.has(childLayerRel)) copyMetadata(st, dest, preserveOwnership);
        } else {
          let through: string | undefined;
          if (existing?.isSymbolicLink() && implicit.has(childLayerRel)) {
            const target = await resolveInRoot(root, childDestRel);
            if (lstatOrUndefinedSync(path.join(root, target))?.isDirectory()) through = target;
          }
          if (through !== undefined) {
            childDestRel = through;
          } else {
            if (existing) await rm(dest, { recursive: true, force: true });
            mkdirSync(dest);
            copyMetadata(st, dest, preserveOwnership);
          }
        }
        await applyDir(src, childLayerRel, childDestRel);
        continue;
      }
      if (existing) await rm(dest, { recursive: existing.isDirectory(), force: true });
      if (st.isSymbolicLink()) await linkOrCopySymlink(src, st, dest, preserveOwnership);
      else if (st.isFile()) await linkOrCopy(src, st, dest, preserveOwnership);
      // Anything else cannot be in an unpacked layer (layer.ts skips devices and FIFOs).
    }
  };

  await applyDir(layer.dir, '', '');
}

/** Builds a rootfs in `root` (an existing, empty directory) from layers, lowest first. */
export async function assembleRootfs(root: string, layers: readonly LayerDir[], options: RootfsOptions = {}): Promise<void> {
  for (const layer of layers) await applyLayer(root, layer, options);
}

export type CloneMode = 'copy' | 'hardlink';

/** Entries of one directory cloned at once. */
const CLONE_CONCURRENCY = 8;

export interface CloneOptions extends RootfsOptions {
  /** Default 'copy'. */
  mode?: CloneMode;
}

/**
 * Copies a rootfs to `dest` (created; must not exist): directories re-created with their
 * metadata, symlinks re-created, files copied (reflinked where possible) or hardlinked.
 * Files that are hardlinked together in `src` stay so in `dest`.
 */
export async function cloneRootfs(src: string, dest: string, options: CloneOptions = {}): Promise<void> {
  const mode = options.mode ?? 'copy';
  const preserveOwnership = options.preserveOwnership ?? process.getuid?.() === 0;
  const copied = new Map<string, Promise<string>>(); // dev:ino → first copy (once made)
  const dirs: { dest: string; st: Stats }[] = [];

  const turn = yielder();

  const entry = async (s: string, d: string, cst: Stats): Promise<void> => {
    if (cst.isSymbolicLink()) {
      if (mode === 'hardlink') await linkOrCopySymlink(s, cst, d, preserveOwnership);
      else await copySymlink(s, cst, d, preserveOwnership);
    } else if (cst.isFile()) {
      if (mode === 'hardlink') {
        await linkOrCopy(s, cst, d, preserveOwnership);
        return;
      }
      const key = `${cst.dev}:${cst.ino}`;
      const first = cst.nlink > 1 ? copied.get(key) : undefined;
      if (first) {
        linkSync(await first, d);
        return;
      }
      const copying = copyRegularFile(s, cst, d, preserveOwnership).then(() => d);
      if (cst.nlink > 1) copied.set(key, copying);
      await copying;
    }
  };

  const walk = async (from: string, to: string, st: Stats): Promise<void> => {
    mkdirSync(to);
    dirs.push({ dest: to, st });
    const names = readdirSync(from).sort();
    const subdirs: { s: string; d: string; st: Stats }[] = [];
    // A few entries at a time: file contents are copied asynchronously.
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        await turn();
        const s = path.join(from, name);
        const d = path.join(to, name);
        const cst = lstatSync(s);
        if (cst.isDirectory()) subdirs.push({ s, d, st: cst });
        else await entry(s, d, cst);
      }
    };
    await Promise.all(Array.from({ length: Math.min(CLONE_CONCURRENCY, names.length) }, worker));
    subdirs.sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    for (const sub of subdirs) await walk(sub.s, sub.d, sub.st);
  };

  await walk(src, dest, lstatSync(src));
  for (const { dest: dir, st } of dirs.reverse()) {
    copyMetadata(st, dir, preserveOwnership);
    utimesSync(dir, st.atime, st.mtime);
  }
}
