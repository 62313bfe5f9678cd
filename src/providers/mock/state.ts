// The mock provider's "backend": its pods written to a JSON file so that they outlive the
// process, kill -9 included, as a real backend's pods do. The file is replaced atomically
// (temp file in the same directory, then rename), so a reader or a restarted provider sees
// either the previous snapshot or the next one, never half of one.
//
// Format: {"kind":"MockProviderState","version":1,"savedAt":"…","pods":[…]}, one pod per
// line. Times are epoch milliseconds; volume file contents are base64. Each pod carries
// its phase as of the snapshot, so other processes (tests) can inspect the backend with
// readMockState without running the state machine.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError, errorMessage } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { ResolvedVolume } from '../provider.ts';
import { formatIPv4, parseIPv4 } from '../../util/ipv4.ts';
import { formatZodError } from '../../util/zod-error.ts';
import type { IpPool } from './ip-pool.ts';
import { ContainerRun, phaseOf, PodRecord, type MockPhase } from './lifecycle.ts';

export const STATE_KIND = 'MockProviderState';
export const STATE_VERSION = 1;

export type { MockPhase } from './lifecycle.ts';

// The writer runs on the real clock even when a test fakes setTimeout and Date: the disk does
// not care about fake clocks, and a fake one would hold writes back until the test ticks it.
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;

const epochMs = z.number().int();
const exitCode = z.number().int().min(0).max(255);
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

const volumeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    name: z.string(),
    type: z.literal('files'),
    source: z.enum(['configMap', 'secret', 'downwardAPI', 'projected']),
    files: z.array(z.strictObject({ path: z.string(), content: base64, mode: z.number().int().nonnegative() })),
  }),
  z.strictObject({ name: z.string(), type: z.literal('emptyDir'), medium: z.string(), sizeLimit: z.string().optional() }),
]);

const podSchema = z.strictObject({
  namespace: z.string(),
  name: z.string().min(1),
  uid: z.string(),
  phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed']),
  /** Pod IP; null for host-network pods. */
  ip: z
    .string()
    .refine((s) => parseIPv4(s) !== undefined, 'expected an IPv4 address')
    .nullable(),
  createdAt: epochMs,
  stage: z.enum(['creating', 'running', 'backoff', 'terminated']),
  stageAt: epochMs,
  sandboxAt: epochMs.optional(),
  runStart: epochMs,
  readyAt: epochMs,
  exitCode,
  endReason: z.enum(['DeadlineExceeded', 'Deleted']).optional(),
  runningDelayMs: z.number().int().nonnegative(),
  completeAfterMs: z.number().int().nonnegative().optional(),
  injectedExitCode: exitCode,
  containers: z.array(
    z.strictObject({
      restartCount: z.number().int().nonnegative(),
      startedAt: epochMs.optional(),
      last: z.strictObject({ exitCode, startedAt: epochMs.optional(), finishedAt: epochMs }).optional(),
    }),
  ),
  // The API object as createPod/updatePod stored it: wire data, checked only where it matters.
  pod: z.looseObject({
    metadata: z.looseObject({ name: z.string(), namespace: z.string().optional(), uid: z.string().optional() }),
    spec: z.looseObject({ containers: z.array(z.looseObject({ name: z.string() })) }).optional(),
  }),
  volumes: z.array(volumeSchema),
});

const stateSchema = z.strictObject({
  kind: z.literal(STATE_KIND),
  version: z.literal(STATE_VERSION),
  savedAt: z.string(),
  pods: z.array(podSchema),
});

export type PersistedVolume = z.output<typeof volumeSchema>;
/** One pod of the state file: its spec, resolved volumes, IP and lifecycle state. */
export interface PersistedPod extends Omit<z.output<typeof podSchema>, 'pod'> {
  pod: Pod;
}

export interface MockState {
  savedAt: string;
  pods: PersistedPod[];
}

export function encodeVolumes(volumes: Map<string, ResolvedVolume>): PersistedVolume[] {
  const out: PersistedVolume[] = [];
  for (const v of volumes.values()) {
    if (v.type === 'files') {
      const files = v.files.map((f) => ({
        path: f.path,
        content: Buffer.from(f.content.buffer, f.content.byteOffset, f.content.byteLength).toString('base64'),
        mode: f.mode,
      }));
      out.push({ name: v.name, type: 'files', source: v.source, files });
    } else {
      out.push({ ...v });
    }
  }
  return out;
}

export function decodeVolumes(volumes: PersistedVolume[]): Map<string, ResolvedVolume> {
  const out = new Map<string, ResolvedVolume>();
  for (const v of volumes) {
    if (v.type === 'files') {
      // A plain Uint8Array, as the core hands them over (a Buffer would compare unequal).
      const files = v.files.map((f) => ({ path: f.path, content: new Uint8Array(Buffer.from(f.content, 'base64')), mode: f.mode }));
      out.set(v.name, { name: v.name, type: 'files', source: v.source, files });
    } else {
      out.set(v.name, { ...v });
    }
  }
  return out;
}

/** A live record as a state-file pod. */
export function persistRecord(rec: PodRecord): PersistedPod {
  const meta = rec.resolved.pod.metadata;
  return {
    namespace: meta?.namespace ?? '',
    name: meta?.name ?? '',
    uid: rec.uid,
    phase: phaseOf(rec),
    ip: rec.ip === 0 ? null : formatIPv4(rec.ip),
    createdAt: rec.createdAt,
    stage: rec.stage,
    stageAt: rec.stageAt,
    sandboxAt: rec.sandboxAt,
    runStart: rec.runStart,
    readyAt: rec.readyAt,
    exitCode: rec.exitCode,
    endReason: rec.endReason,
    runningDelayMs: rec.runningDelayMs,
    completeAfterMs: rec.completeAfterMs,
    injectedExitCode: rec.injectedExitCode,
    containers: rec.containers.map((c) => ({ restartCount: c.restartCount, startedAt: c.startedAt, last: c.last && { ...c.last } })),
    pod: rec.resolved.pod,
    volumes: encodeVolumes(rec.resolved.volumes),
  };
}

/** The pod's IP as a number; 0 for host-network pods (null in the file). */
export function persistedIP(p: PersistedPod): number {
  return p.ip === null ? 0 : (parseIPv4(p.ip) ?? 0);
}

/** A state-file pod as a live record, as it was when written (the caller brings it up to the clock). */
export function restoreRecord(p: PersistedPod): PodRecord {
  const rec = new PodRecord(`${p.namespace}/${p.name}`, p.uid, { pod: p.pod, volumes: decodeVolumes(p.volumes) }, p.createdAt, persistedIP(p));
  rec.stage = p.stage;
  rec.stageAt = p.stageAt;
  rec.sandboxAt = p.sandboxAt;
  rec.runStart = p.runStart;
  rec.readyAt = p.readyAt;
  rec.exitCode = p.exitCode;
  rec.endReason = p.endReason;
  rec.runningDelayMs = p.runningDelayMs;
  rec.completeAfterMs = p.completeAfterMs;
  rec.injectedExitCode = p.injectedExitCode;
  rec.containers = p.containers.map((c) =>
    Object.assign(new ContainerRun(), { restartCount: c.restartCount, startedAt: c.startedAt, last: c.last && { ...c.last } }),
  );
  return rec;
}

/**
 * The records of a state file, their IPs reserved in `ips`; a ConfigError when an IP is outside
 * the pool's podCIDR or held twice. The caller brings each record up to the clock.
 */
export function loadRecords(file: string, ips: IpPool, podCIDR: string): PodRecord[] {
  const { pods } = loadMockState(file);
  // In address order, so the pool is rebuilt in one pass.
  for (const p of [...pods].sort((a, b) => persistedIP(a) - persistedIP(b))) {
    const ip = persistedIP(p);
    if (ip !== 0 && !ips.reserve(ip)) {
      throw new ConfigError(`mock stateFile ${file}: pod ${p.namespace}/${p.name}: IP ${p.ip ?? ''} is outside podCIDR ${podCIDR} or held by another pod`);
    }
  }
  return pods.map(restoreRecord);
}

/** The state file's text for the records, reusing each record's cached line. */
export function snapshotText(savedAt: string, records: Iterable<PodRecord>): string {
  const lines: string[] = [];
  for (const rec of records) lines.push((rec.saved ??= JSON.stringify(persistRecord(rec))));
  return stateText(savedAt, lines);
}

/** The file's text around a snapshot's pods (each already JSON). */
export function stateText(savedAt: string, pods: readonly string[]): string {
  const head = `{"kind":"${STATE_KIND}","version":${STATE_VERSION},"savedAt":${JSON.stringify(savedAt)},"pods":[`;
  return pods.length === 0 ? `${head}]}\n` : `${head}\n${pods.join(',\n')}\n]}\n`;
}

/**
 * Reads and checks a state file. A missing file is an empty backend; anything unreadable or
 * malformed throws a ConfigError naming the file and the problem (pods are never dropped).
 */
export function loadMockState(file: string): MockState {
  const fail = (problem: string): never => {
    throw new ConfigError(`mock stateFile ${file}: ${problem}`);
  };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { savedAt: '', pods: [] };
    return fail(`cannot read: ${errorMessage(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return fail(`not valid JSON (${errorMessage(err)})`);
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) return fail(formatZodError(parsed.error));
  const pods = parsed.data.pods as PersistedPod[]; // the schema checked what the provider relies on
  const seen = new Set<string>();
  pods.forEach((p, i) => {
    const key = `${p.namespace}/${p.name}`;
    const meta = p.pod.metadata;
    if ((meta?.namespace ?? '') !== p.namespace || meta?.name !== p.name)
      fail(`pods[${i}]: pod.metadata names ${meta?.namespace ?? ''}/${meta?.name ?? ''}, not ${key}`);
    if ((meta?.uid ?? '') !== p.uid) fail(`pods[${i}] (${key}): pod.metadata.uid ${JSON.stringify(meta?.uid ?? '')} differs from uid ${JSON.stringify(p.uid)}`);
    if (seen.has(key)) fail(`pods[${i}]: pod ${key} appears twice`);
    seen.add(key);
    const containers = p.pod.spec?.containers.length ?? 0;
    if (p.containers.length !== containers) fail(`pods[${i}] (${key}): ${p.containers.length} container states for ${containers} containers`);
  });
  return { savedAt: parsed.data.savedAt, pods };
}

export interface MockStateSummary {
  /** When the snapshot was written ('' when there is no file). */
  savedAt: string;
  pods: { namespace: string; name: string; uid: string; phase: MockPhase; podIP: string | undefined }[];
}

/**
 * What the mock backend holds, for tests in another process (e.g. no duplicate pods after a
 * restart). Phases are as of the last snapshot, which follows each change within
 * milliseconds. A missing file is an empty backend; a corrupt one throws ConfigError.
 */
export function readMockState(file: string): MockStateSummary {
  const state = loadMockState(file);
  return {
    savedAt: state.savedAt,
    pods: state.pods.map((p) => ({ namespace: p.namespace, name: p.name, uid: p.uid, phase: p.phase, podIP: p.ip ?? undefined })),
  };
}

// A write costs time proportional to the number of pods, so writes are spaced by a multiple
// of the last one's duration: the writer never takes more than about a quarter of the time,
// however fast pods change, while a lone change on a small backend is on disk in ~1 ms.
const MIN_GAP_MS = 5;
const MAX_GAP_MS = 1000;
const RETRY_MS = 1000;

/**
 * Keeps the state file up to date with at most one write in flight: request() marks the
 * state changed and schedules a write; changes made during a write cause one more write
 * after it, with the snapshot taken when that write starts.
 */
export class StateWriter {
  readonly file: string;
  writes = 0;
  private readonly snapshot: () => string;
  private readonly log: Logger;
  private readonly tmp: string;
  private dirty = false;
  private closed = false;
  private failing = false;
  private running: Promise<void> | undefined = undefined;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private lastStart = -Infinity;
  private lastDuration = 0;
  /** Requests so far, and how many of them the last successful write covered. */
  private requested = 0;
  private written = 0;
  private waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(file: string, snapshot: () => string, log: Logger) {
    this.file = file;
    this.snapshot = snapshot;
    this.log = log;
    // Unique per writer, so two providers on one file (or a dead process's leftover) never share it.
    this.tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (err) {
      throw new ConfigError(`mock stateFile ${file}: cannot create its directory: ${errorMessage(err)}`);
    }
  }

  /** The state changed: it reaches the file soon. */
  request(): void {
    if (this.closed) return;
    this.requested++;
    this.dirty = true;
    if (!this.running && !this.timer) this.arm();
  }

  /**
   * Resolves once the changes requested so far are in the file (or the writer closed): a
   * backend acknowledges a create only once it would survive a crash.
   */
  durable(): Promise<void> {
    if (this.closed || this.written >= this.requested) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ upTo: this.requested, resolve }));
  }

  /** True while a write is scheduled or in progress (false after close, which ignores requests). */
  get busy(): boolean {
    return this.running !== undefined || this.timer !== undefined;
  }

  /** Writes whatever is pending, then stops; later requests are ignored. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) realClearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) await this.running;
    if (this.dirty) await this.write();
    if (this.dirty) this.log.error({ file: this.file }, 'mock state file not written at close: the last changes are lost');
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private arm(): void {
    const gap = this.failing ? RETRY_MS : Math.min(Math.max(MIN_GAP_MS, 4 * this.lastDuration), MAX_GAP_MS);
    const wait = Math.max(0, this.lastStart + gap - performance.now());
    this.timer = realSetTimeout(this.kick, wait);
  }

  private readonly kick = (): void => {
    this.timer = undefined;
    if (this.running || !this.dirty || this.closed) return;
    this.running = this.write().finally(() => {
      this.running = undefined;
      if (this.dirty && !this.closed) this.arm();
    });
  };

  private async write(): Promise<void> {
    this.dirty = false;
    const upTo = this.requested;
    const started = performance.now();
    this.lastStart = started;
    try {
      await writeFile(this.tmp, this.snapshot());
      await rename(this.tmp, this.file);
      this.writes++;
      this.written = upTo;
      this.waiters = this.waiters.filter((w) => (w.upTo <= upTo ? void w.resolve() : true));
      if (this.failing) this.log.info({ file: this.file }, 'mock state file written again');
      this.failing = false;
    } catch (err) {
      this.dirty = true;
      if (!this.failing) this.log.warn({ err, file: this.file }, 'cannot write mock state file; retrying');
      this.failing = true;
      await rm(this.tmp, { force: true }).catch(() => undefined);
    }
    this.lastDuration = performance.now() - started;
  }
}
