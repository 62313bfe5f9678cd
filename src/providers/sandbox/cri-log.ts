// Container logs in the CRI format the kubelet reads (one record per line):
//   <RFC3339Nano time> <stdout|stderr> <F|P> <content>
// F ends a line; P is a piece of a longer line (split at MAX_LINE bytes) that the next record continues.
// The writer rotates by size: `<n>.log` becomes `<n>.log.1`, older pieces shift to .2, ... and at
// most `maxFiles` files of one instance are kept. The container monitor (monitor/monitor.c) writes
// the real logs; this writer is the reference its tests compare with, and the reader tests' writer.
// The reader (used by the provider for getContainerLogs) reads the rotated files then the live
// one, and can follow the live one across rotations.
import { closeSync, existsSync, fstatSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/** Longest content of one record; longer lines are split into P records (containerd uses 16 KiB). */
export const MAX_LINE = 16 * 1024;

const startNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Wall-clock time in nanoseconds since the epoch, monotonic within a process. */
export function nowNs(): bigint {
  return startNs + process.hrtime.bigint();
}

/** Go's time.RFC3339Nano: fractional seconds without trailing zeros (none at all for whole seconds). */
export function formatRfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

/** Parses an RFC3339(Nano) UTC or offset time into nanoseconds since the epoch. */
export function parseRfc3339Nano(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[4]}`);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[3] ?? '').padEnd(9, '0') || '0');
}

export type LogStream = 'stdout' | 'stderr';

export interface CriRecord {
  timeNs: bigint;
  time: string;
  stream: LogStream;
  partial: boolean;
  content: Buffer;
}

/** Parses one record (without its newline); undefined when malformed. */
export function parseCriLine(line: Buffer): CriRecord | undefined {
  const s1 = line.indexOf(0x20);
  if (s1 < 0) return undefined;
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const time = line.subarray(0, s1).toString('latin1');
  const stream = line.subarray(s1 + 1, s2).toString('latin1');
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tag = line[s2 + 1];
  const partial = tag === 0x50; // P
  if (!partial && tag !== 0x46) return undefined; // F
  const timeNs = parseRfc3339Nano(time);
  if (timeNs === undefined) return undefined;
  // "F content": content starts after the tag and one space; an empty line may lack that space.
  const content = line.length > s2 + 2 ? line.subarray(s2 + 3) : Buffer.alloc(0);
  return { timeNs, time, stream, partial, content };
}

export interface LogWriterOptions {
  maxBytes: number;
  maxFiles: number;
  now?: () => bigint;
}

/** Rotated file names of `file`, newest first: file.1, file.2, ... (only those that exist). */
export function rotatedFiles(file: string, maxFiles = 100): string[] {
  const out: string[] = [];
  for (let i = 1; i < maxFiles + 1; i++) {
    if (!existsSync(`${file}.${i}`)) break;
    out.push(`${file}.${i}`);
  }
  return out;
}

/** Appends CRI records to a file, splitting output into lines per stream and rotating by size. */
export class CriLogWriter {
  private fd: number;
  private size: number;
  private readonly pending: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  private readonly pendingBytes: Record<LogStream, number> = { stdout: 0, stderr: 0 };
  private readonly now: () => bigint;
  readonly file: string;
  private readonly options: LogWriterOptions;

  constructor(file: string, options: LogWriterOptions) {
    this.file = file;
    this.options = options;
    this.now = options.now ?? nowNs;
    this.fd = openSync(file, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(stream: LogStream, data: Buffer): void {
    let start = 0;
    while (start < data.length) {
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? data.length : nl;
      let piece = data.subarray(start, end);
      // Pieces beyond MAX_LINE go out as partial records.
      while (this.pendingBytes[stream] + piece.length > MAX_LINE) {
        const room = MAX_LINE - this.pendingBytes[stream];
        this.pending[stream].push(piece.subarray(0, room));
        this.pendingBytes[stream] += room;
        this.emit(stream, true);
        piece = piece.subarray(room);
      }
      if (piece.length > 0) {
        this.pending[stream].push(piece);
        this.pendingBytes[stream] += piece.length;
      }
      if (nl < 0) break;
      this.emit(stream, false);
      start = nl + 1;
    }
  }

  /** Writes out unterminated output as full lines (at the end of the process). */
  flush(): void {
    for (const stream of ['stdout', 'stderr'] as const) if (this.pendingBytes[stream] > 0) this.emit(stream, false);
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }

  private emit(stream: LogStream, partial: boolean): void {
    const content = Buffer.concat(this.pending[stream]);
    this.pending[stream] = [];
    this.pendingBytes[stream] = 0;
    const record = Buffer.concat([Buffer.from(`${formatRfc3339Nano(this.now())} ${stream} ${partial ? 'P' : 'F'} `), content, Buffer.from('\n')]);
    writeSync(this.fd, record);
    this.size += record.length;
    if (this.size >= this.options.maxBytes) this.rotate();
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = Math.max(this.options.maxFiles - 1, 0);
    for (let i = keep; i >= 1; i--) {
      const from = i === 1 ? this.file : `${this.file}.${i - 1}`;
      if (i === keep) rmSync(`${this.file}.${i}`, { force: true });
      if (existsSync(from)) renameSync(from, `${this.file}.${i}`);
    }
    if (keep === 0) rmSync(this.file, { force: true });
    this.fd = openSync(this.file, 'a', 0o640);
    this.size = 0;
  }
}

export interface ReadLogOptions {
  follow: boolean;
  timestamps: boolean;
  tailLines?: number;
  limitBytes?: number;
  sinceTime?: Date;
  signal: AbortSignal;
  /** While following: true once the container instance has exited (then the reader drains and ends). */
  finished: () => boolean;
  pollMs?: number;
}

function* recordsOf(data: Buffer): Generator<CriRecord> {
  let start = 0;
  while (start < data.length) {
    const nl = data.indexOf(0x0a, start);
    if (nl < 0) break;
    const rec = parseCriLine(data.subarray(start, nl));
    if (rec) yield rec;
    start = nl + 1;
  }
}

function render(rec: CriRecord, timestamps: boolean): Buffer {
  const parts: Buffer[] = [];
  if (timestamps) parts.push(Buffer.from(`${formatRfc3339Nano(rec.timeNs)} `));
  parts.push(rec.content);
  if (!rec.partial) parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

function readWhole(file: string): Buffer {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      return buf.subarray(0, off);
    } finally {
      closeSync(fd);
    }
  } catch {
    return Buffer.alloc(0);
  }
}

/** One instance's log files, oldest first (rotated ones, then the live one), with their inodes. */
function logChain(file: string): { path: string; ino: number }[] {
  const chain: { path: string; ino: number }[] = [];
  for (const f of [...rotatedFiles(file)].reverse().concat(file)) {
    try {
      chain.push({ path: f, ino: statSync(f).ino });
    } catch {
      // rotated or removed meanwhile
    }
  }
  return chain;
}

/**
 * The log of one container instance as getContainerLogs returns it: since, tail (in lines), then
 * limitBytes; with follow, new records as they are written until the instance has finished and
 * everything is read, or the signal aborts.
 */
export async function* readCriLog(file: string, options: ReadLogOptions): AsyncGenerator<Buffer> {
  const since = options.sinceTime ? BigInt(options.sinceTime.getTime()) * 1_000_000n : undefined;
  let budget = options.limitBytes ?? Infinity;
  const emit = function* (chunks: Buffer[]): Generator<Buffer, boolean> {
    for (const chunk of chunks) {
      if (chunk.length >= budget) {
        yield chunk.subarray(0, budget);
        budget = 0;
        return false;
      }
      budget -= chunk.length;
      yield chunk;
    }
    return true;
  };
  const wanted = (record: CriRecord): boolean => since === undefined || record.timeNs >= since;

  // The live file is opened first and read through its descriptor, so a rotation while we read
  // neither loses nor repeats records: rotated files are read up to (not including) that inode.
  let handle = await open(file, 'r').catch(() => undefined);
  let handleIno = handle ? (await handle.stat()).ino : undefined;
  let entries: CriRecord[] = [];
  for (const { path, ino } of logChain(file)) {
    if (ino === handleIno || path === file) break;
    for (const record of recordsOf(readWhole(path))) entries.push(record);
  }
  let position = 0;
  if (handle) {
    const live = await handle.readFile();
    position = live.lastIndexOf(0x0a) + 1;
    for (const record of recordsOf(live.subarray(0, position))) entries.push(record);
  }
  entries = entries.filter(wanted);
  if (options.tailLines !== undefined) {
    // Count full lines from the end; partial records belong to the line their F record ends.
    let lines = 0;
    let cut = entries.length;
    for (let i = entries.length - 1; i >= 0; i--) {
      if (!entries[i]!.partial) {
        if (lines === options.tailLines) break;
        lines++;
      }
      cut = i;
    }
    if (options.tailLines === 0) cut = entries.length;
    entries = entries.slice(cut);
  }
  try {
    const more = yield* emit(entries.map((record) => render(record, options.timestamps)));
    if (!more || !options.follow) return;

    // Follow: read the open file to its end; once the live file is another one, move to the next
    // newer file of the chain (every rotation in between, as long as it is still kept).
    const pollMs = options.pollMs ?? 200;
    let carry: Buffer = Buffer.alloc(0);
    const buf = Buffer.alloc(64 * 1024);
    let drained = false;
    while (!options.signal.aborted) {
      // Looked at before reading: once the instance has finished, one more pass reads all it wrote.
      const finished = options.finished();
      let got = false;
      while (handle) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        got = true;
        const data = Buffer.concat([carry, buf.subarray(0, bytesRead)]);
        const nl = data.lastIndexOf(0x0a);
        carry = Buffer.from(data.subarray(nl + 1));
        const chunks: Buffer[] = [];
        for (const record of recordsOf(data.subarray(0, nl + 1))) if (wanted(record)) chunks.push(render(record, options.timestamps));
        if (!(yield* emit(chunks))) return;
      }
      if (got) continue;
      const chain = logChain(file);
      const live = chain.at(-1);
      if (live && live.path === file && live.ino !== handleIno) {
        // Our last read may have come back empty just before the writer appended its last record
        // here and rotated: read this file to its end once more (it is complete now) before moving on.
        if (!drained) {
          drained = true;
          continue;
        }
        drained = false;
        const at = chain.findIndex((f) => f.ino === handleIno);
        // Not in the chain: our file was rotated out of retention, so everything kept is newer.
        const next = chain[at + 1]!;
        const opened = await open(next.path, 'r').catch(() => undefined);
        if (opened && (await opened.stat()).ino !== next.ino) {
          await opened.close(); // rotated again between stat and open: look again
          continue;
        }
        await handle?.close();
        handle = opened;
        handleIno = next.ino;
        position = 0;
        carry = Buffer.alloc(0);
        continue;
      }
      if (finished) break;
      try {
        await sleep(pollMs, undefined, { signal: options.signal });
      } catch {
        break;
      }
    }
  } finally {
    await handle?.close();
  }
}
