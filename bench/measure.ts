// What the benchmark measures, and how: a pod watch with timestamps taken here, the peer's
// processes from /proc, and kube-apiserver's own count of the peer's requests.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { KubeClient } from '../src/kube/client.ts';
import type { Pod } from '../src/kube/types.ts';

// ------------------------------------------------------------------------------ pod watch

export interface PodTimes {
  /** When the watch first saw the pod (ADDED). */
  added: number;
  /** When the watch first saw spec.nodeName set: the creation for pods created bound, the binding otherwise. */
  bound?: number;
  running?: number;
  /** When the watch first saw metadata.deletionTimestamp. */
  deleting?: number;
  gone?: number;
  /** PodScheduled lastTransitionTime (1 s resolution), kept for reference. */
  scheduledAt?: string;
}

/**
 * A list-then-watch of one resource in one namespace that resumes from the last resourceVersion when
 * kube-apiserver closes the watch (it does so to a consumer that falls behind, under load).
 */
abstract class NamespaceWatch<T extends { metadata?: { resourceVersion?: string } }> {
  /** Watches resumed after kube-apiserver closed one. */
  rewatches = 0;
  protected readonly abort = new AbortController();
  protected error: unknown;
  private running: Promise<void> | undefined;
  private lastRv = '';
  private readonly client: KubeClient;
  private readonly path: string;

  constructor(client: KubeClient, namespace: string, resource: string) {
    this.client = client;
    this.path = `/api/v1/namespaces/${namespace}/${resource}`;
  }

  /** One watch event, stamped with performance.now() when it arrived. */
  protected abstract onEvent(type: string, object: T, now: number): void;
  /** The watch failed for good (error is set). */
  protected onFailed(): void {}

  async start(): Promise<void> {
    this.lastRv = (await this.client.list<{ metadata: { resourceVersion: string } }>(this.path)).metadata.resourceVersion;
    this.running = this.loop().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.error = err;
      this.onFailed();
    });
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        const options = { resourceVersion: this.lastRv, allowWatchBookmarks: true, timeoutSeconds: 3600 };
        for await (const event of this.client.watch<T>(this.path, options, this.abort.signal)) {
          const now = performance.now();
          if (event.object.metadata?.resourceVersion) this.lastRv = event.object.metadata.resourceVersion;
          if (event.type === 'BOOKMARK') continue;
          if (event.type === 'ERROR') throw new Error(`watch error: ${JSON.stringify(event.object)}`);
          this.onEvent(event.type, event.object, now);
        }
      } catch (err) {
        if (this.abort.signal.aborted || ++failures > 20) throw err;
        this.rewatches++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }
}

/** Watches the pods of one namespace and stamps each transition with performance.now() of this process. */
export class PodWatch extends NamespaceWatch<Pod> {
  readonly pods = new Map<string, PodTimes>();
  private waiters: (() => void)[] = [];
  events = 0;

  constructor(client: KubeClient, namespace: string) {
    super(client, namespace, 'pods');
  }

  protected onEvent(type: string, pod: Pod, now: number): void {
    this.events++;
    const name = pod.metadata?.name ?? '';
    let times = this.pods.get(name);
    if (!times) {
      times = { added: now };
      this.pods.set(name, times);
    }
    if (times.bound === undefined && pod.spec?.nodeName) times.bound = now;
    if (times.running === undefined && pod.status?.phase === 'Running') times.running = now;
    if (times.deleting === undefined && pod.metadata?.deletionTimestamp) times.deleting = now;
    if (times.scheduledAt === undefined) {
      const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'True');
      if (scheduled?.lastTransitionTime) times.scheduledAt = scheduled.lastTransitionTime;
    }
    if (type === 'DELETED') times.gone = now;
    this.notify();
  }

  protected override onFailed(): void {
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  count(predicate: (t: PodTimes) => boolean): number {
    let n = 0;
    for (const t of this.pods.values()) if (predicate(t)) n++;
    return n;
  }

  /** Resolves once predicate() holds; rejects after timeoutMs (naming what) or when `failed` rejects. */
  async until(what: string, predicate: () => boolean, timeoutMs: number, failed: Promise<never>): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`)), timeoutMs);
    });
    try {
      while (!predicate()) {
        if (this.error) throw this.error;
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), timeout, failed, new Promise((r) => setTimeout(r, 1000))]);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Components of the control plane that also write Events about the bench's pods; the rest are the peer's. */
const CONTROL_PLANE_COMPONENTS = new Set(['default-scheduler', 'replicaset-controller', 'deployment-controller', 'taint-eviction-controller']);

interface WatchedEvent {
  metadata?: { resourceVersion?: string };
  source?: { component?: string };
  reportingComponent?: string;
}

/** Watches the Events of one namespace: how many the peer wrote (created or updated) and when the last one landed. */
export class EventWatch extends NamespaceWatch<WatchedEvent> {
  /** Event writes seen (ADDED and MODIFIED), the control plane's left out. */
  writes = 0;
  /** performance.now() of the last one. */
  last: number | undefined;

  constructor(client: KubeClient, namespace: string) {
    super(client, namespace, 'events');
  }

  protected onEvent(type: string, event: WatchedEvent, now: number): void {
    if (type !== 'ADDED' && type !== 'MODIFIED') return;
    if (CONTROL_PLANE_COMPONENTS.has(event.source?.component || event.reportingComponent || '')) return;
    this.writes++;
    this.last = now;
  }
}

/** Event writes (create, update, patch of events) between two readings of dispatchedByUser. */
export function eventWrites(before: Map<string, number>, after: Map<string, number>): number {
  let n = 0;
  for (const verb of ['create', 'update', 'patch']) n += (after.get(`${verb}.events`) ?? 0) - (before.get(`${verb}.events`) ?? 0);
  return n;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

// ------------------------------------------------------------------------------ /proc

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux

export interface ProcSample {
  /** Peak resident set size (VmHWM), KiB. */
  hwmKiB: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
}

export function readProc(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "pid (comm) ": state is field 3, utime 14, stime 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { hwmKiB: Number(hwm?.[1] ?? 0), cpuSeconds: ticks / CLK_TCK };
}

/** Sums over the peer's processes (peak RSS of several processes: the sum of their peaks). */
export function readProcs(pids: number[]): ProcSample {
  let hwmKiB = 0;
  let cpuSeconds = 0;
  for (const pid of pids) {
    try {
      const s = readProc(pid);
      hwmKiB += s.hwmKiB;
      cpuSeconds += s.cpuSeconds;
    } catch {
      // exited
    }
  }
  return { hwmKiB, cpuSeconds };
}

/** System-wide busy CPU seconds so far (all cores; /proc/stat less idle and iowait): shows what else ran during a run. */
export function systemBusySeconds(): number {
  return busySeconds(readFileSync('/proc/stat', 'utf8').split('\n')[0]!);
}

/** Busy CPU seconds so far of each core (cpu0, cpu1, ...): the pinned benchmark's sides each own one. */
export function perCpuBusySeconds(): number[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((line) => /^cpu\d+ /.test(line))
    .map(busySeconds);
}

/** A /proc/stat cpu line's busy seconds: its first eight counters less idle and iowait. */
function busySeconds(line: string): number {
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (f[3] ?? 0) - (f[4] ?? 0)) / CLK_TCK;
}

/**
 * Samples each core's busy seconds every `intervalMs` until stopped; busyShare(from, to) is each
 * core's busy fraction between two performance.now() times, from the nearest samples.
 */
export function sampleCpus(intervalMs = 250): { stop(): void; busyShare(from: number, to: number): number[] } {
  const samples: { at: number; busy: number[] }[] = [{ at: performance.now(), busy: perCpuBusySeconds() }];
  const timer = setInterval(() => samples.push({ at: performance.now(), busy: perCpuBusySeconds() }), intervalMs);
  const nearest = (t: number) => samples.reduce((best, s) => (Math.abs(s.at - t) < Math.abs(best.at - t) ? s : best));
  return {
    stop: () => clearInterval(timer),
    busyShare(from, to) {
      const a = nearest(from);
      const b = nearest(to);
      const seconds = (b.at - a.at) / 1000;
      return b.busy.map((busy, i) => (seconds > 0 ? Math.round(((busy - a.busy[i]!) / seconds) * 100) / 100 : 0));
    },
  };
}

// ------------------------------------------------------------------------------ kube-apiserver's count of the peer's requests

export const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'] as const;
/** Resource classes, most specific first: a request matches the first (lowest matchingPrecedence) FlowSchema. */
export const RESOURCE_CLASSES: { name: string; resources: string[]; precedence: number }[] = [
  { name: 'pods', resources: ['pods'], precedence: 3 },
  { name: 'pods-status', resources: ['pods/status'], precedence: 3 },
  { name: 'events', resources: ['events'], precedence: 3 },
  { name: 'nodes', resources: ['nodes', 'nodes/status'], precedence: 3 },
  { name: 'leases', resources: ['leases'], precedence: 3 },
  { name: 'other', resources: ['*'], precedence: 4 },
];

/**
 * FlowSchemas that give the peer's requests their own names in kube-apiserver's
 * apiserver_flowcontrol_dispatched_requests_total: one per verb and resource class for user
 * `user`, all on the exempt priority level (no queuing, as system:masters clients get), plus one
 * for non-resource requests (discovery, /version).
 */
export function flowSchemas(user: string): unknown[] {
  const subjects = [{ kind: 'User', user: { name: user } }];
  const schemas: unknown[] = [];
  const fs = (name: string, precedence: number, rule: Record<string, unknown>) => ({
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'FlowSchema',
    metadata: { name },
    spec: { priorityLevelConfiguration: { name: 'exempt' }, matchingPrecedence: precedence, rules: [{ subjects, ...rule }] },
  });
  for (const verb of VERBS) {
    for (const cls of RESOURCE_CLASSES) {
      schemas.push(
        fs(`${user}.${verb}.${cls.name}`, cls.precedence, {
          resourceRules: [{ verbs: [verb], apiGroups: ['*'], resources: cls.resources, clusterScope: true, namespaces: ['*'] }],
        }),
      );
    }
  }
  schemas.push(fs(`${user}.nonresource.other`, 3, { nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }] }));
  return schemas;
}

export interface ApiCounts {
  total: number;
  byVerb: Record<string, number>;
  byResource: Record<string, number>;
}

/** Reads kube-apiserver's /metrics with the admin client certificate. */
export async function scrapeApiserver(server: string, pkiDir: string): Promise<string> {
  const url = new URL('/metrics', server);
  return await new Promise((resolve, reject) => {
    const req = https.get(
      url,
      { ca: readFileSync(path.join(pkiDir, 'ca.crt')), cert: readFileSync(path.join(pkiDir, 'admin.crt')), key: readFileSync(path.join(pkiDir, 'admin.key')) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

/** The peer's dispatched requests by FlowSchema name <user>.<verb>.<class>. */
export function dispatchedByUser(metrics: string, user: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^apiserver_flowcontrol_dispatched_requests_total\{([^}]*)\}\s+([0-9.e+-]+)$/gm;
  for (let m = re.exec(metrics); m; m = re.exec(metrics)) {
    const fs = /flow_schema="([^"]*)"/.exec(m[1]!)?.[1];
    if (fs?.startsWith(`${user}.`)) out.set(fs.slice(user.length + 1), (out.get(fs.slice(user.length + 1)) ?? 0) + Number(m[2]));
  }
  return out;
}

export function countsBetween(before: Map<string, number>, after: Map<string, number>): ApiCounts {
  const counts: ApiCounts = { total: 0, byVerb: {}, byResource: {} };
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0);
    if (delta <= 0) continue;
    const [verb, cls] = key.split('.') as [string, string];
    counts.total += delta;
    counts.byVerb[verb] = (counts.byVerb[verb] ?? 0) + delta;
    counts.byResource[cls] = (counts.byResource[cls] ?? 0) + delta;
  }
  return counts;
}

export function perPod(counts: ApiCounts, pods: number): ApiCounts {
  const round = (n: number) => Math.round((n / pods) * 1000) / 1000;
  return {
    total: round(counts.total),
    byVerb: Object.fromEntries(Object.entries(counts.byVerb).map(([k, v]) => [k, round(v)])),
    byResource: Object.fromEntries(Object.entries(counts.byResource).map(([k, v]) => [k, round(v)])),
  };
}
