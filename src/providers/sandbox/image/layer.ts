// Unpacks one layer blob (tar, gzip or zstd; told apart by their magic bytes) into a directory
// of its own, verifying the uncompressed stream against the image config's diff_id.
//
// The directory holds the layer exactly as the archive has it: whiteouts (`.wh.<name>`,
// `.wh..wh..opq`) stay as the empty files they are, for rootfs.ts to interpret when layers are
// stacked. Regular files, directories, symlinks and hardlinks are created with their modes and
// mtimes, and their owners when we are root (otherwise files belong to us and directories get
// u+rwx so the store can manage them). Device nodes and FIFOs are skipped (Node cannot make
// them) and listed in the result; extended attributes (file capabilities) are not applied.
//
// Entries are confined to the directory: `..` that would climb out, paths through a symlink,
// and hardlinks whose target is outside the layer or through a symlink are errors.
import {
  chmodSync,
  chownSync,
  createReadStream,
  createWriteStream,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  rmSync,
  utimesSync,
} from 'node:fs';
import { open, symlink } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import type { Header as TarHeader } from 'tar-stream';
import { VkError } from '../../../errors.ts';
import { HashingStream, splitDigest } from './digest.ts';

export interface UnpackOptions {
  /** The layer's diff_id from the image config: the uncompressed tar must hash to it. */
  diffId: string;
  /** Layer media type, for error messages. */
  mediaType?: string;
  /** chown entries to their uid/gid. Default: when running as root. */
  preserveOwnership?: boolean;
  signal?: AbortSignal;
}

export interface UnpackResult {
  diffId: string;
  entries: number;
  /** Directories created because an entry needed a parent the archive did not list. */
  implicitDirs: string[];
  /** Entries not created: device nodes and FIFOs. */
  skipped: { path: string; type: string }[];
}

/** A layer that cannot be unpacked (bad archive, entries escaping it, diff_id mismatch). */
export class LayerError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_IMAGE_PULL', message, options);
  }
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** gzip (1f 8b), zstd (28 b5 2f fd), or plain tar. */
export async function sniffCompression(file: string): Promise<Compression> {
  const handle = await open(file, 'r');
  try {
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(4), 0, 4, 0);
    if (bytesRead >= 2 && buffer[0] === 0x1f && buffer[1] === 0x8b) return 'gzip';
    if (bytesRead >= 4 && buffer.readUInt32BE(0) === 0x28b52ffd) return 'zstd';
    return 'none';
  } finally {
    await handle.close();
  }
}

/** Whether this Node can decompress zstd layers (zlib.createZstdDecompress, Node ≥ 22.15/23.8). */
export function zstdAvailable(): boolean {
  return typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function';
}

function decompressor(compression: Compression, mediaType: string | undefined): Transform | undefined {
  if (compression === 'gzip') return zlib.createGunzip();
  if (compression === 'zstd') {
    if (!zstdAvailable()) {
      throw new LayerError(`zstd-compressed layer${mediaType ? ` (${mediaType})` : ''} is not supported: this Node.js has no zlib zstd support`);
    }
    return (zlib as unknown as { createZstdDecompress(): Transform }).createZstdDecompress();
  }
  return undefined;
}

/**
 * The entry's path relative to the layer root ('' for the root itself), or undefined when it
 * would climb out of it. Leading '/' and './' are dropped, as Docker does.
 */
export function normalizeEntryPath(name: string): string | undefined {
  const trimmed = name.replace(/^\/+/, '');
  if (trimmed === '' || trimmed === '.' || trimmed === './') return '';
  const normalized = path.posix.normalize(trimmed).replace(/\/+$/, '');
  if (normalized === '..' || normalized.startsWith('../')) return undefined;
  return normalized === '.' ? '' : normalized;
}

async function drain(stream: Readable): Promise<void> {
  await pipeline(stream, new Writable({ write: (_c, _e, cb) => cb() }));
}

/**
 * Unpacks `blobPath` into `destDir` (an existing, empty directory). Throws LayerError for a
 * malformed or unsafe archive or a diff_id mismatch; the caller removes `destDir` then.
 */
export async function unpackLayer(blobPath: string, destDir: string, options: UnpackOptions): Promise<UnpackResult> {
  const { algorithm } = splitDigest(options.diffId);
  const preserveOwnership = options.preserveOwnership ?? process.getuid?.() === 0;
  const compression = await sniffCompression(blobPath);
  const decompress = decompressor(compression, options.mediaType);
  const hashing = new HashingStream(algorithm);
  const extract = tar.extract();
  // tar-stream's streams are streamx streams: Node's pipeline drives them, their types differ.
  const stages: unknown[] = [createReadStream(blobPath), ...(decompress ? [decompress] : []), hashing, extract];
  const piping = (pipeline as (...streams: unknown[]) => Promise<void>)(...stages, options.signal ? { signal: options.signal } : {});
  piping.catch(() => {}); // awaited below; errors also end the entry loop

  const implicitDirs = new Set<string>();
  const skipped: { path: string; type: string }[] = [];
  const dirTimes: { full: string; mtime: Date }[] = [];
  let entries = 0;
  // What this unpack has made, by path relative to destDir: the directory starts empty and only
  // we write to it, so this answers "what is there" without an lstat per entry and path part
  // (which made unpacking ~3 times slower). Creating never follows or replaces what it does not
  // know of: mkdir, symlink, link and open 'wx' fail on anything already there.
  const made = new Map<string, 'dir' | 'other'>();

  /** Makes the parents of `rel` as directories; refuses to go through anything that is not one. */
  // The metadata calls below are synchronous and symlinks are made asynchronously, as in
  // rootfs.ts (why: see there); the entries arrive asynchronously from the archive, so the
  // event loop gets its turns.
  const ensureParents = (rel: string): void => {
    const parts = rel.split('/').slice(0, -1);
    let currentRel = '';
    for (const part of parts) {
      currentRel = currentRel ? `${currentRel}/${part}` : part;
      const kind = made.get(currentRel);
      if (kind === 'dir') continue;
      if (kind !== undefined) throw new LayerError(`layer entry "${rel}" lies under "${currentRel}", which is not a directory in this layer`);
      mkdirSync(path.join(destDir, currentRel), { mode: 0o755 });
      made.set(currentRel, 'dir');
      implicitDirs.add(currentRel);
    }
  };

  /** Removes what an earlier entry made at `rel` (an archive may name a path twice). */
  // Symlinks being made, a few dozen at a time: the kernel makes them in parallel on the thread pool.
  let symlinks: Promise<void>[] = [];
  const settleSymlinks = async (): Promise<void> => {
    const batch = symlinks;
    symlinks = [];
    await Promise.all(batch);
  };

  const removeExisting = async (rel: string, full: string): Promise<void> => {
    const kind = made.get(rel);
    if (kind === undefined) return;
    await settleSymlinks();
    rmSync(full, { recursive: kind === 'dir', force: true });
    made.delete(rel);
    if (kind === 'dir') for (const key of made.keys()) if (key.startsWith(`${rel}/`)) made.delete(key);
  };

  const setOwner = (full: string, header: TarHeader, isLink: boolean): void => {
    if (!preserveOwnership) return;
    (isLink ? lchownSync : chownSync)(full, header.uid ?? 0, header.gid ?? 0);
  };

  /** An entry without content (directory, symlink, hardlink, skipped): let the archive go on. */
  const skip = (stream: Readable): Promise<void> => (stream.readableEnded ? Promise.resolve() : drain(stream));

  const handle = async (header: TarHeader, stream: Readable): Promise<void> => {
    const rel = normalizeEntryPath(header.name);
    if (rel === undefined) throw new LayerError(`layer entry "${header.name}" points outside the layer`);
    const mode = (header.mode ?? 0o644) & 0o7777;
    const mtime = header.mtime ?? new Date(0);
    if (rel === '') {
      await drain(stream);
      return;
    }
    const full = path.join(destDir, rel);
    switch (header.type) {
      case 'directory': {
        await skip(stream);
        ensureParents(rel);
        if (made.get(rel) !== 'dir') {
          await removeExisting(rel, full);
          mkdirSync(full);
          made.set(rel, 'dir');
        }
        implicitDirs.delete(rel);
        setOwner(full, header, false);
        chmodSync(full, preserveOwnership ? mode : mode | 0o700);
        dirTimes.push({ full, mtime });
        return;
      }
      case 'file':
      case 'contiguous-file': {
        ensureParents(rel);
        await removeExisting(rel, full);
        made.set(rel, 'other');
        await pipeline(stream, createWriteStream(full, { flags: 'wx', mode: 0o600 }));
        setOwner(full, header, false);
        chmodSync(full, preserveOwnership ? mode : mode | 0o600);
        utimesSync(full, mtime, mtime);
        return;
      }
      case 'symlink': {
        await skip(stream);
        ensureParents(rel);
        await removeExisting(rel, full);
        made.set(rel, 'other');
        const making = symlink(header.linkname ?? '', full).then(() => {
          setOwner(full, header, true);
          lutimesSync(full, mtime, mtime);
        });
        making.catch(() => {}); // awaited by settleSymlinks
        symlinks.push(making);
        if (symlinks.length >= 32) await settleSymlinks();
        return;
      }
      case 'link': {
        await skip(stream);
        await settleSymlinks(); // the target may be one
        const targetRel = normalizeEntryPath(header.linkname ?? '');
        if (targetRel === undefined || targetRel === '') throw new LayerError(`hardlink "${rel}" points outside the layer: "${header.linkname ?? ''}"`);
        // The target must be reached through real directories only: link() would follow a symlink.
        let current = destDir;
        const parts = targetRel.split('/');
        for (const [i, part] of parts.entries()) {
          current = path.join(current, part);
          const st = lstatSync(current, { throwIfNoEntry: false });
          const last = i === parts.length - 1;
          if (!st) throw new LayerError(`hardlink "${rel}" targets "${targetRel}", which is not in this layer`);
          if (!last && !st.isDirectory())
            throw new LayerError(`hardlink "${rel}" targets "${targetRel}" through "${parts.slice(0, i + 1).join('/')}", which is not a directory`);
          if (last && st.isDirectory()) throw new LayerError(`hardlink "${rel}" targets the directory "${targetRel}"`);
        }
        ensureParents(rel);
        if (targetRel === rel) return;
        await removeExisting(rel, full);
        made.set(rel, 'other');
        linkSync(current, full);
        return;
      }
      default:
        await skip(stream);
        skipped.push({ path: rel, type: header.type ?? 'unknown' });
    }
  };

  try {
    for await (const entry of extract) {
      entries++;
      await handle(entry.header, entry as unknown as Readable);
    }
    await settleSymlinks();
    await piping;
  } catch (err) {
    extract.destroy();
    await piping.catch(() => {});
    await Promise.allSettled(symlinks);
    if (err instanceof LayerError) throw err;
    const message = (err as Error).message;
    throw new LayerError(`cannot unpack layer ${path.basename(blobPath)}${compression === 'none' ? '' : ` (${compression})`}: ${message}`, { cause: err });
  }

  const actual = hashing.digest();
  if (actual !== options.diffId) throw new LayerError(`layer diff_id mismatch: expected ${options.diffId}, uncompressed content is ${actual}`);

  // Directory times last: creating children changed them. Deepest first.
  dirTimes.sort((a, b) => b.full.length - a.full.length);
  for (const { full, mtime } of dirTimes) utimesSync(full, mtime, mtime);
  return { diffId: actual, entries, implicitDirs: [...implicitDirs].sort(), skipped };
}
