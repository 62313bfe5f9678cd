// One reproducible image layer: a tar of the given entries in path order, every parent
// directory spelled out, owner root:root (a directory may name another uid, its gid too) with
// no user or group names, one fixed mtime, modes
// reduced to 0755/0644 (plus what an entry asks for, e.g. /tmp's 1777), gzip at a fixed level.
// The same entries give the same bytes, so the same digest.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Header as TarHeader } from 'tar-stream';

export type LayerEntry =
  | { path: string; type: 'directory'; mode?: number; owner?: number }
  | { path: string; type: 'file'; mode: number; source: string }
  | { path: string; type: 'file'; mode: number; content: Uint8Array }
  | { path: string; type: 'symlink'; target: string };

export interface WrittenLayer {
  /** sha256 of the gzip stream: the blob's digest. */
  digest: string;
  size: number;
  /** sha256 of the tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  uncompressedSize: number;
}

const GZIP_LEVEL = 6;

/** 0755 for directories and executables, 0644 for the rest; special bits asked for are kept. */
export function normalizedMode(entry: LayerEntry): number {
  if (entry.type === 'symlink') return 0o777;
  if (entry.type === 'directory') return entry.mode ?? 0o755;
  const special = entry.mode & 0o7000;
  return special | (entry.mode & 0o111 ? 0o755 : 0o644);
}

/** The entries sorted by path, parents added as directories, duplicates refused. */
export function completeEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const clean = path.posix.normalize(entry.path).replace(/^\/+|\/+$/g, '');
    if (clean === '' || clean === '.' || clean.startsWith('..')) throw new Error(`layer entry path "${entry.path}" is not inside the image`);
    const previous = byPath.get(clean);
    if (previous && !(previous.type === 'directory' && entry.type === 'directory')) throw new Error(`layer entry "${clean}" is given twice`);
    byPath.set(clean, { ...entry, path: clean });
  }
  for (const clean of [...byPath.keys()]) {
    for (let dir = path.posix.dirname(clean); dir !== '.'; dir = path.posix.dirname(dir)) {
      if (!byPath.has(dir)) byPath.set(dir, { path: dir, type: 'directory' });
      else if (byPath.get(dir)!.type !== 'directory') throw new Error(`layer entry "${dir}" is a parent of "${clean}" but not a directory`);
    }
  }
  // Byte order, not locale order: the same on every machine.
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

class Measure extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }
}

/** Writes the layer to `dest` (through a temporary file next to it). */
export async function writeLayer(entries: readonly LayerEntry[], dest: string, mtime: Date): Promise<WrittenLayer> {
  const pack = tar.pack();
  const tarMeasure = new Measure();
  const gzMeasure = new Measure();
  const tmp = `${dest}.tmp-${process.pid}`;
  // tar-stream's streams are streamx streams: Node's pipeline drives them, their types differ.
  const stages: unknown[] = [pack, tarMeasure, createGzip({ level: GZIP_LEVEL, strategy: constants.Z_DEFAULT_STRATEGY }), gzMeasure, createWriteStream(tmp)];
  const piping = (pipeline as (...streams: unknown[]) => Promise<void>)(...stages);
  piping.catch(() => {}); // awaited below

  for (const entry of completeEntries(entries)) {
    const header: Partial<TarHeader> & { name: string } = { name: entry.path, mode: normalizedMode(entry), uid: 0, gid: 0, uname: '', gname: '', mtime };
    if (entry.type === 'directory') {
      const owner = entry.owner ?? 0;
      await addEntry(pack, { ...header, name: `${entry.path}/`, type: 'directory', uid: owner, gid: owner });
    } else if (entry.type === 'symlink') {
      await addEntry(pack, { ...header, type: 'symlink', linkname: entry.target });
    } else {
      const content = 'content' in entry ? entry.content : await readFile(entry.source);
      await addEntry(pack, { ...header, type: 'file', size: content.length }, content);
    }
  }
  pack.finalize();
  await piping;
  const digest = `sha256:${gzMeasure.hash.digest('hex')}`;
  await rename(tmp, dest);
  return { digest, size: gzMeasure.bytes, diffId: `sha256:${tarMeasure.hash.digest('hex')}`, uncompressedSize: tarMeasure.bytes };
}

function addEntry(pack: tar.Pack, header: Partial<TarHeader> & { name: string }, content?: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content === undefined) pack.entry(header as TarHeader, done);
    else pack.entry(header as TarHeader, Buffer.from(content.buffer, content.byteOffset, content.byteLength), done);
  });
}
