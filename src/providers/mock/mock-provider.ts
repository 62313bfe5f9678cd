// The in-memory provider behind the end-to-end and scale tests. Pods run nowhere: each one
// is a small record whose state advances on a clock (Pending → Running → Succeeded/Failed,
// with restarts), and its status is rendered on demand to look like a real kubelet's.
// Scale: one Map lookup per call, state kept as numbers (statuses are built only when
// asked for), and at most one timer per pod, only while a transition is due.
//
// Per-pod overrides, read from the pod's annotations at createPod (and again at updatePod):
//   mock.vk.io/create-delay-ms: integer; overrides lifecycle.createDelayMs.
//   mock.vk.io/running-delay-ms: integer; overrides lifecycle.runningDelayMs.
//   mock.vk.io/complete-after-ms: integer, or "never"; overrides lifecycle.completeAfterMs.
//   mock.vk.io/exit-code: 0-255; the code containers exit with when they complete (default 0).
//       Non-zero means reason Error: restartPolicy Never → pod Failed; OnFailure and Always →
//       restart with restartCount+1 (CrashLoopBackOff for lifecycle.restartDelayMs between).
//       Without a completion time the containers never exit, so this needs complete-after-ms.
//   mock.vk.io/fail-create: createPod rejects with this message (failure injection).
//   mock.vk.io/fail-delete: deletePod rejects with this message.
//   mock.vk.io/log-lines: text each container prints (one log line per line) when it starts.
// A malformed value makes createPod/updatePod reject, naming the annotation.
//
// The kubelet API capabilities are simulated too:
//   logs (logs.ts): a start line, the log-lines annotation, then a line every logIntervalMs while
//     the container runs; --previous is the instance before the last restart; follow ends with it.
//   stats: steady per-container CPU and memory figures derived from the pod UID and container
//     name (within the container's limits), CPU time growing at that rate since the start.
//   exec (shell.ts): a tiny scripted shell (echo, cat, exit, hostname, printenv, sleep, ...).
//   attach: the main process prints the container's new log lines and echoes stdin back; the
//     session ends with the container, or at stdin's end when the container has stdinOnce.
//   port-forward (port-forward.ts): every port echoes; port 80 answers HTTP with "hello from <pod>".
//
// With config.stateFile the pods live in a file as well (see state.ts): every change is
// written there within milliseconds, and a new provider on the same file (after a restart
// or a kill -9) picks its pods up where they were, times included.
import { createHash } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, NotFoundError, VkError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { ContainerStatus, Container, Pod, PodCondition, PodStatus } from '../../kube/types.ts';
import { parseQuantity, milliValue, value as quantityValue } from '../../kube/quantity.ts';
import { podKey, type ContainerStats, type ExecStreams, type LogOptions, type NodeConfig, type PodListener, type PodStats, type Provider, type ResolvedPod, type ResolvedVolume } from '../provider.ts';
import { formatIPv4, parseIPv4Cidr } from '../../util/ipv4.ts';
import type { MockProviderConfig } from './config.ts';
import { LogModel, annotationLines, logTimestamp } from './logs.ts';
import { servePort } from './port-forward.ts';
import { MockShell } from './shell.ts';
import { decodeVolumes, encodeVolumes, loadMockState, parseIPv4, StateWriter, stateText, type PersistedPod } from './state.ts';
import { waitForDrain } from '../../util/streams.ts';

export { readMockState, type MockStateSummary } from './state.ts';

export const ANNOTATION_CREATE_DELAY = 'mock.vk.io/create-delay-ms';
export const ANNOTATION_RUNNING_DELAY = 'mock.vk.io/running-delay-ms';
export const ANNOTATION_COMPLETE_AFTER = 'mock.vk.io/complete-after-ms';
export const ANNOTATION_EXIT_CODE = 'mock.vk.io/exit-code';
export const ANNOTATION_FAIL_CREATE = 'mock.vk.io/fail-create';
export const ANNOTATION_FAIL_DELETE = 'mock.vk.io/fail-delete';
export const ANNOTATION_LOG_LINES = 'mock.vk.io/log-lines';

export interface MockProviderOptions {
  nodeName: string;
  log: Logger;
  now?: () => Date;
  /** The node's IP as pods see it (status.hostIP); 127.0.0.1 when unset. */
  hostIP?: string;
}

export interface MockProviderStats {
  pods: number;
  phases: { Pending: number; Running: number; Succeeded: number; Failed: number };
  created: number;
  replaced: number;
  updated: number;
  deleted: number;
  createFailures: number;
  deleteFailures: number;
  notifications: number;
  /** Pods loaded from the state file at construction. */
  restored: number;
  /** Snapshots written to the state file. */
  stateWrites: number;
  podIPsInUse: number;
  /** Lifecycle timers pending; a scale test can assert this falls to 0 once pods settle. */
  timers: number;
}

type Stage = 'creating' | 'running' | 'backoff' | 'terminated';

interface Termination {
  exitCode: number;
  startedAt: number | undefined;
  finishedAt: number;
}

class ContainerRun {
  restartCount = 0;
  startedAt: number | undefined = undefined;
  last: Termination | undefined = undefined;
}

// Times are epoch milliseconds; they become RFC3339 strings only in rendered statuses.
class PodRecord {
  readonly key: string;
  readonly uid: string;
  resolved: ResolvedPod;
  readonly createdAt: number;
  /** IPv4 as a number; 0 for host-network pods, which use the host IP. */
  readonly ip: number;
  stage: Stage = 'creating';
  stageAt: number;
  sandboxAt: number | undefined = undefined;
  runStart = 0;
  /** Last transition of ContainersReady/Ready. */
  readyAt: number;
  exitCode = 0;
  endReason: 'DeadlineExceeded' | 'Deleted' | undefined = undefined;
  containers: ContainerRun[];
  runningDelayMs = 0;
  completeAfterMs: number | undefined = undefined;
  injectedExitCode = 0;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  timerAt = 0;
  gone: 'deleted' | 'replaced' | undefined = undefined;
  /** This record as a state-file line; cleared whenever the record changes. */
  saved: string | undefined = undefined;

  constructor(key: string, uid: string, resolved: ResolvedPod, createdAt: number, ip: number) {
    this.key = key;
    this.uid = uid;
    this.resolved = resolved;
    this.createdAt = createdAt;
    this.stageAt = createdAt;
    this.readyAt = createdAt;
    this.ip = ip;
    this.containers = (resolved.pod.spec?.containers ?? []).map(() => new ContainerRun());
  }
}

interface Overrides {
  createDelayMs: number;
  runningDelayMs: number;
  completeAfterMs: number | undefined;
  exitCode: number;
}

const MAX_TIMER_MS = 2_147_483_647; // setTimeout fires at once beyond this
const MAX_STEPS = 1000; // transitions applied in one go after a clock jump

/** Sequential addresses from network+2 (network+1 is the notional gateway); freed ones are reused once the range is spent. */
class IpPool {
  private readonly first: number;
  private readonly size: number;
  private next = 0;
  private readonly free: number[] = [];
  inUse = 0;

  constructor(cidr: string) {
    const parsed = parseIPv4Cidr(cidr);
    if (!parsed) throw new VkError('VK_PROVIDER', `mock: invalid podCIDR ${cidr}`);
    this.first = parsed.base + 2;
    this.size = 2 ** (32 - parsed.bits) - 3;
  }

  allocate(): number | undefined {
    let ip: number | undefined;
    if (this.next < this.size) ip = this.first + this.next++;
    else ip = this.free.pop();
    if (ip !== undefined) this.inUse++;
    return ip;
  }

  /** Marks a specific address (a restored pod's) as in use; false when outside the range or taken. */
  reserve(ip: number): boolean {
    const offset = ip - this.first;
    if (offset < 0 || offset >= this.size) return false;
    if (offset >= this.next) {
      for (let o = this.next; o < offset; o++) this.free.push(this.first + o);
      this.next = offset + 1;
    } else {
      const i = this.free.indexOf(ip);
      if (i < 0) return false;
      this.free.splice(i, 1);
    }
    this.inUse++;
    return true;
  }

  release(ip: number): void {
    this.free.push(ip);
    this.inUse--;
  }
}

// toISOString costs about a microsecond and a status has ~10 stamps; pods share seconds, so cache.
const stamps = new Map<number, string>();

function rfc3339(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  let s = stamps.get(seconds);
  if (s === undefined) {
    if (stamps.size >= 4096) stamps.clear();
    s = new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z';
    stamps.set(seconds, s);
  }
  return s;
}

/** A deep copy; JSON for the pod (plain wire data, and faster than structuredClone), fresh buffers for files. */
function cloneResolved(r: ResolvedPod): ResolvedPod {
  const volumes = new Map<string, ResolvedVolume>();
  for (const [name, v] of r.volumes) {
    // new Uint8Array copies; a Buffer's slice() would not.
    volumes.set(name, v.type === 'files' ? { ...v, files: v.files.map((f) => ({ ...f, content: new Uint8Array(f.content) })) } : { ...v });
  }
  return { pod: JSON.parse(JSON.stringify(r.pod)) as Pod, volumes, ...(r.pullSecrets && { pullSecrets: structuredClone(r.pullSecrets) }) };
}

function intAnnotation(annotations: Record<string, string>, key: string, max: number): number | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (!/^\d{1,10}$/.test(text) || Number(text) > max) {
    throw new VkError('VK_PROVIDER', `annotation ${key}: expected an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(text);
}

const imageIDs = new Map<string, string>();

/** A stable docker-pullable imageID per image: repository without tag, fake digest from the name. */
function imageID(image: string): string {
  let id = imageIDs.get(image);
  if (id !== undefined) return id;
  const at = image.indexOf('@');
  let repo = at >= 0 ? image.slice(0, at) : image;
  const colon = repo.lastIndexOf(':');
  if (colon > repo.lastIndexOf('/')) repo = repo.slice(0, colon);
  const digest = at >= 0 ? image.slice(at + 1) : `sha256:${createHash('sha256').update(image).digest('hex')}`;
  id = `docker-pullable://${repo}@${digest}`;
  if (imageIDs.size >= 1024) imageIDs.clear(); // bounded even if every pod uses its own image
  imageIDs.set(image, id);
  return id;
}

function terminatedState(exitCode: number, startedAt: number | undefined, finishedAt: number, containerID: string | undefined) {
  return {
    terminated: {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      ...(startedAt !== undefined && { startedAt: rfc3339(startedAt) }),
      finishedAt: rfc3339(finishedAt),
      ...(containerID !== undefined && { containerID }),
    },
  };
}

interface LogTarget {
  kind: 'container' | 'init';
  /** Index in spec.containers (-1 for init containers). */
  index: number;
  model: LogModel;
}


function quantityOr(text: string | undefined, read: (q: ReturnType<typeof parseQuantity>) => bigint): number | undefined {
  if (text === undefined) return undefined;
  try {
    return Number(read(parseQuantity(String(text))));
  } catch {
    return undefined;
  }
}

/**
 * Steady synthetic usage for one container: a rate between 2m and 200m CPU and a working set
 * between 16 and 272 MiB picked from a hash of pod UID and container name, held under 80% of
 * the container's limits (requests when no limit); CPU time is that rate times the run time.
 */
export function syntheticStats(uid: string, container: Container, runningMs: number): ContainerStats {
  const seed = createHash('sha256').update(`${uid}/${container.name}`).digest();
  let milliCores = 2 + (seed.readUInt16BE(0) % 199);
  let memory = (16 + (seed.readUInt16BE(2) % 257)) * 1024 * 1024;
  const resources = container.resources;
  const cpuCap = quantityOr(resources?.limits?.cpu ?? resources?.requests?.cpu, milliValue);
  const memCap = quantityOr(resources?.limits?.memory ?? resources?.requests?.memory, quantityValue);
  if (cpuCap !== undefined && cpuCap > 0) milliCores = Math.max(1, Math.min(milliCores, Math.floor(cpuCap * 0.8)));
  if (memCap !== undefined && memCap > 0) memory = Math.max(1024 * 1024, Math.min(memory, Math.floor(memCap * 0.8)));
  const nanoCores = milliCores * 1_000_000;
  return {
    name: container.name,
    cpuUsageNanoCores: nanoCores,
    cpuUsageCoreNanoSeconds: Math.round((nanoCores * Math.max(runningMs, 0)) / 1000),
    memoryWorkingSetBytes: memory,
    memoryUsageBytes: memory + 4 * 1024 * 1024,
  };
}

export class MockProvider implements Provider {
  readonly name = 'mock';
  /** Present only when config.notify is set, so a poll-only mock lacks the capability. */
  readonly notifyPods?: (listener: PodListener) => void;

  private readonly config: MockProviderConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly hostIP: string;
  private readonly pods = new Map<string, PodRecord>();
  private readonly ips: IpPool;
  private readonly listeners: PodListener[] = [];
  private dirty = new Set<PodRecord>();
  private flushScheduled = false;
  private readonly waits = new Set<{ timer: ReturnType<typeof setTimeout>; reject: (err: Error) => void }>();
  private healthy = true;
  private unhealthyMessage = '';
  private closed = false;
  private readonly counters = { created: 0, replaced: 0, updated: 0, deleted: 0, createFailures: 0, deleteFailures: 0, notifications: 0, restored: 0 };
  private readonly store: StateWriter | undefined;

  constructor(config: MockProviderConfig, options: MockProviderOptions) {
    this.config = config;
    this.log = options.log.child({ provider: 'mock', node: options.nodeName });
    this.now = options.now ?? (() => new Date());
    this.hostIP = options.hostIP ?? '127.0.0.1';
    this.ips = new IpPool(config.podCIDR);
    if (config.notify) {
      this.notifyPods = (listener) => {
        this.listeners.push(listener);
      };
    }
    if (config.stateFile !== undefined) {
      const file = resolvePath(config.stateFile);
      this.store = new StateWriter(file, () => this.snapshot(), this.log);
      if (this.restore(file)) this.store.request(); // transitions fell due while no process ran
    }
  }

  async createPod(resolved: ResolvedPod): Promise<void> {
    if (this.closed) throw new VkError('VK_PROVIDER', 'mock: provider is closed');
    const pod = resolved.pod;
    const key = podKey(pod);
    const uid = pod.metadata?.uid ?? '';
    const annotations = pod.metadata?.annotations ?? {};
    const overrides = this.overrides(annotations);
    if (annotations[ANNOTATION_FAIL_CREATE] !== undefined) {
      this.counters.createFailures++;
      await this.wait(overrides.createDelayMs);
      throw new VkError('VK_PROVIDER', annotations[ANNOTATION_FAIL_CREATE] || `${ANNOTATION_FAIL_CREATE}: injected failure`);
    }
    const existing = this.pods.get(key);
    if (existing?.uid === uid) return;
    if (existing) {
      this.log.debug({ pod: key, oldUid: existing.uid, uid }, 'replacing pod incarnation');
      this.drop(existing, 'replaced');
      this.counters.replaced++;
    }
    let ip = 0;
    if (!pod.spec?.hostNetwork) {
      const allocated = this.ips.allocate();
      if (allocated === undefined) throw new VkError('VK_PROVIDER', `mock: podCIDR ${this.config.podCIDR} has no free addresses`);
      ip = allocated;
    }
    const rec = new PodRecord(key, uid, cloneResolved(resolved), this.nowMs(), ip);
    this.applyOverrides(rec, overrides);
    this.pods.set(key, rec);
    this.counters.created++;
    this.advance(rec, rec.createdAt);
    this.schedule(rec);
    this.changed(rec);
    await this.wait(overrides.createDelayMs);
  }

  async updatePod(resolved: ResolvedPod): Promise<void> {
    const pod = resolved.pod;
    const rec = this.find(podKey(pod), pod.metadata?.uid);
    const overrides = this.overrides(pod.metadata?.annotations ?? {});
    const now = this.nowMs();
    this.advance(rec, now);
    const before = rec.resolved.pod.spec?.containers ?? [];
    rec.resolved = cloneResolved(resolved);
    this.applyOverrides(rec, overrides);
    const after = rec.resolved.pod.spec?.containers ?? [];
    if (after.length !== rec.containers.length) rec.containers = after.map(() => new ContainerRun()); // the API forbids this; stay consistent anyway
    if (rec.stage === 'running') {
      // A new image means the kubelet kills the container and starts it again.
      after.forEach((c, i) => {
        const run = rec.containers[i];
        if (!run || before[i]?.image === c.image) return;
        run.last = { exitCode: 0, startedAt: run.startedAt, finishedAt: now };
        run.restartCount++;
        run.startedAt = now;
      });
    }
    this.counters.updated++;
    this.advance(rec, now); // activeDeadlineSeconds may have passed
    this.schedule(rec);
    this.changed(rec);
  }

  async deletePod(pod: Pod): Promise<void> {
    const key = podKey(pod);
    const rec = this.find(key, pod.metadata?.uid);
    const annotations = pod.metadata?.annotations ?? rec.resolved.pod.metadata?.annotations ?? {};
    if (annotations[ANNOTATION_FAIL_DELETE] !== undefined) {
      this.counters.deleteFailures++;
      throw new VkError('VK_PROVIDER', annotations[ANNOTATION_FAIL_DELETE] || `${ANNOTATION_FAIL_DELETE}: injected failure`);
    }
    const now = this.nowMs();
    this.advance(rec, now);
    this.drop(rec, 'deleted');
    this.counters.deleted++;
    this.store?.request();
    if (rec.stage !== 'terminated') {
      // Like the kubelet, report the final state (containers stopped, terminal phase) once.
      this.terminate(rec, now, 0, 'Deleted');
      this.markDirty(rec);
    }
  }

  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) return undefined;
    this.refresh(rec);
    return this.render(rec);
  }

  async getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) return undefined;
    this.refresh(rec);
    return this.buildStatus(rec);
  }

  async listPods(): Promise<Pod[]> {
    const out: Pod[] = [];
    for (const rec of this.pods.values()) {
      this.refresh(rec);
      out.push(this.render(rec));
    }
    return out;
  }

  nodeConfig(): NodeConfig {
    const c = this.config;
    return {
      capacity: { ...c.capacity },
      allocatable: { ...c.allocatable },
      labels: { ...c.labels },
      taints: c.taints.map((t) => ({ ...t })),
      operatingSystem: c.operatingSystem,
      architecture: c.architecture,
      nodeInfo: { containerRuntimeVersion: 'mock://1.0.0', operatingSystem: c.operatingSystem, architecture: c.architecture },
    };
  }

  async ping(signal: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!this.healthy) throw new VkError('VK_PROVIDER', this.unhealthyMessage);
  }

  // --- Kubelet API capabilities.

  async getContainerLogs(namespace: string, name: string, container: string, options: LogOptions): Promise<Readable> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) throw new NotFoundError(`mock: pod ${namespace}/${name} not found`);
    this.refresh(rec);
    const target = this.logTarget(rec, container, options.previous);
    return Readable.from(this.logLines(rec, target, options), { objectMode: false });
  }

  async getStats(): Promise<PodStats[]> {
    const now = this.nowMs();
    const out: PodStats[] = [];
    for (const rec of this.pods.values()) {
      this.refresh(rec);
      if (rec.stage !== 'running') continue;
      const meta = rec.resolved.pod.metadata;
      const containers: ContainerStats[] = [];
      (rec.resolved.pod.spec?.containers ?? []).forEach((c, i) => {
        const startedAt = rec.containers[i]?.startedAt;
        if (startedAt !== undefined) containers.push(syntheticStats(rec.uid, c, now - startedAt));
      });
      out.push({ namespace: meta?.namespace ?? '', name: meta?.name ?? '', uid: rec.uid, containers });
    }
    return out;
  }

  async runInContainer(namespace: string, name: string, container: string, command: string[], streams: ExecStreams): Promise<number> {
    const { rec, spec } = this.runningContainer(namespace, name, container);
    const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: name, HOME: '/root' };
    for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
    const shell = new MockShell({ stdin: streams.stdin, stdout: streams.stdout, stderr: streams.stderr, tty: streams.tty, signal: streams.signal, env, hostname: rec.resolved.pod.metadata?.name ?? name });
    return shell.run(command);
  }

  async attachToContainer(namespace: string, name: string, container: string, streams: ExecStreams): Promise<void> {
    const { rec, spec } = this.runningContainer(namespace, name, container);
    const target = this.logTarget(rec, container, false);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, streams.signal]);
    const out = streams.stdout;
    const write = async (data: string | Buffer) => {
      if (!out || out.destroyed || out.writableEnded) return;
      const text = streams.tty ? Buffer.from(data.toString().replace(/\r?\n/g, '\r\n')) : data;
      if (!out.write(text)) await waitForDrain(out, signal);
    };
    const tasks: Promise<void>[] = [
      // The main process's output: its log lines from now on, until the container stops.
      (async () => {
        for await (const chunk of this.logLines(rec, target, { follow: true, previous: false, timestamps: false, tailLines: 0, signal })) await write(chunk);
      })(),
    ];
    if (streams.stdin) {
      const stdin = streams.stdin;
      tasks.push(
        (async () => {
          try {
            for await (const chunk of stdin as AsyncIterable<Buffer>) {
              if (signal.aborted) return;
              await write(streams.tty ? Buffer.from(chunk.toString('latin1').replace(/\r/g, '\n'), 'latin1') : chunk);
            }
          } catch {
            // The client went away.
          }
          // With stdinOnce the runtime closes the process's stdin after this session: like cat, it ends.
          if (!spec.stdinOnce) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        })(),
      );
    }
    try {
      await Promise.race([...tasks, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
    } finally {
      stop.abort();
    }
  }

  async portForward(namespace: string, name: string, port: number, stream: Duplex): Promise<void> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) throw new NotFoundError(`mock: pod ${namespace}/${name} not found`);
    this.refresh(rec);
    if (rec.stage === 'creating' || rec.stage === 'terminated') throw new VkError('VK_PROVIDER', `pod "${name}" is not running (phase ${this.phase(rec)})`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VkError('VK_PROVIDER', `invalid port ${port}`);
    await servePort(name, port, stream);
  }

  /** A running container of a known pod, or a kubelet-like error. */
  private runningContainer(namespace: string, name: string, container: string): { rec: PodRecord; spec: Container } {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) throw new NotFoundError(`mock: pod ${namespace}/${name} not found`);
    this.refresh(rec);
    const containers = rec.resolved.pod.spec?.containers ?? [];
    const index = containers.findIndex((c) => c.name === container);
    const sidecar = (rec.resolved.pod.spec?.initContainers ?? []).find((c) => c.name === container && c.restartPolicy === 'Always');
    const spec = containers[index] ?? sidecar;
    if (!spec) throw new NotFoundError(`container "${container}" not found in pod "${name}"`);
    const running = index >= 0 ? rec.stage === 'running' && rec.containers[index]?.startedAt !== undefined : rec.sandboxAt !== undefined && rec.stage !== 'terminated';
    if (!running) throw new VkError('VK_PROVIDER', `container "${container}" in pod "${name}" is not running`);
    return { rec, spec };
  }

  /** The container instance whose log is asked for, with kubelet-like errors when there is none. */
  private logTarget(rec: PodRecord, container: string, previous: boolean): LogTarget {
    const pod = rec.resolved.pod;
    const podName = pod.metadata?.name ?? '';
    const extra = annotationLines(pod.metadata?.annotations?.[ANNOTATION_LOG_LINES]);
    const model = (c: Container, instance: LogModel['instance']) => new LogModel(podName, c.name, c.image ?? '', instance, extra, this.config.logIntervalMs);
    const noPrevious = () => new VkError('VK_PROVIDER', `previous terminated container "${container}" in pod "${podName}" not found`);
    const waiting = (reason: string) => new VkError('VK_PROVIDER', `container "${container}" in pod "${podName}" is waiting to start: ${reason}`);
    const index = (pod.spec?.containers ?? []).findIndex((c) => c.name === container);
    const spec = pod.spec?.containers?.[index];
    const run = rec.containers[index];
    if (spec && run) {
      const last = run.last;
      // The instance before the current one; while none runs (back-off), the last one is "current".
      const lastInstance = last && { startedAt: last.startedAt ?? last.finishedAt, finishedAt: last.finishedAt, restartCount: run.startedAt === undefined ? run.restartCount : run.restartCount - 1 };
      if (previous) {
        if (!lastInstance) throw noPrevious();
        return { kind: 'container', index, model: model(spec, lastInstance) };
      }
      if (rec.stage === 'creating') throw waiting('ContainerCreating');
      if (run.startedAt !== undefined) {
        return { kind: 'container', index, model: model(spec, { startedAt: run.startedAt, finishedAt: rec.stage === 'terminated' ? rec.stageAt : undefined, restartCount: run.restartCount }) };
      }
      if (lastInstance) return { kind: 'container', index, model: model(spec, lastInstance) };
      throw waiting(rec.stage === 'backoff' ? 'CrashLoopBackOff' : 'ContainerCreating');
    }
    const init = (pod.spec?.initContainers ?? []).find((c) => c.name === container);
    if (!init) throw new NotFoundError(`container "${container}" not found in pod "${podName}"`);
    if (previous) throw noPrevious();
    if (rec.sandboxAt === undefined) throw waiting('PodInitializing');
    const sidecar = init.restartPolicy === 'Always';
    const finishedAt = !sidecar ? rec.sandboxAt : rec.stage === 'terminated' ? rec.stageAt : undefined;
    return { kind: 'init', index: -1, model: model(init, { startedAt: rec.sandboxAt, finishedAt, restartCount: 0 }) };
  }

  /** When the instance a log follows has ended: its finish time; undefined while it runs. */
  private instanceEnd(rec: PodRecord, target: LogTarget): number | undefined {
    const startedAt = target.model.instance.startedAt;
    if (rec.gone) return this.nowMs();
    if (target.kind === 'init') return rec.stage === 'terminated' ? rec.stageAt : undefined;
    const run = rec.containers[target.index];
    if (!run) return this.nowMs();
    if (rec.stage === 'running' && run.startedAt === startedAt) return undefined;
    if (run.last && (run.last.startedAt ?? run.last.finishedAt) === startedAt) return run.last.finishedAt;
    if (rec.stage === 'terminated') return rec.stageAt;
    return this.nowMs();
  }

  /** The log's lines per the options, in batches; a follower waits for new ones until the instance ends. */
  private async *logLines(rec: PodRecord, target: LogTarget, options: LogOptions): AsyncGenerator<string | Buffer> {
    const { model } = target;
    let total = model.count(this.nowMs());
    let i = options.sinceTime ? model.indexAt(options.sinceTime.getTime()) : 0;
    if (options.tailLines !== undefined) i = Math.max(i, total - options.tailLines);
    let budget = options.limitBytes ?? Infinity;
    while (true) {
      while (i < total) {
        let batch = '';
        for (let n = 0; n < 512 && i < total; n++, i++) {
          const line = model.line(i);
          batch += options.timestamps ? `${logTimestamp(line.at)} ${line.text}\n` : `${line.text}\n`;
        }
        const bytes = Buffer.byteLength(batch);
        if (bytes >= budget) {
          yield Buffer.from(batch).subarray(0, budget);
          return;
        }
        budget -= bytes;
        yield batch;
      }
      if (!options.follow || model.instance.finishedAt !== undefined || options.signal.aborted) return;
      // Sleep until the next line is due, looking at least once a second whether the instance ended.
      const wait = Math.min(Math.max(model.timeOf(total) - this.nowMs(), 0), 1000);
      try {
        await sleep(wait, undefined, { signal: options.signal });
      } catch {
        return;
      }
      if (!rec.gone) this.refresh(rec);
      const end = this.instanceEnd(rec, target);
      if (end !== undefined) model.instance.finishedAt = end;
      total = model.count(this.nowMs());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const rec of this.pods.values()) this.clearTimer(rec);
    for (const w of this.waits) {
      clearTimeout(w.timer);
      w.reject(new VkError('VK_PROVIDER', 'mock: provider closed'));
    }
    this.waits.clear();
    this.dirty.clear();
    // The backend's pods stay: only this process lets go of them.
    await this.store?.close();
  }

  // Test helpers.

  /** Makes ping() reject with `message` until set healthy again. */
  setHealthy(healthy: boolean, message = 'mock provider is unhealthy'): void {
    this.healthy = healthy;
    this.unhealthyMessage = message;
  }

  /** The pod exactly as createPod/updatePod stored it (resolved env and volumes); do not mutate. */
  resolvedPod(namespace: string, name: string): ResolvedPod | undefined {
    return this.pods.get(`${namespace}/${name}`)?.resolved;
  }

  podCount(): number {
    return this.pods.size;
  }

  stats(): MockProviderStats {
    const phases = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0 };
    let timers = 0;
    for (const rec of this.pods.values()) {
      phases[this.phase(rec)]++;
      if (rec.timer) timers++;
    }
    return { pods: this.pods.size, phases, ...this.counters, stateWrites: this.store?.writes ?? 0, podIPsInUse: this.ips.inUse, timers };
  }

  // Internals.

  private nowMs(): number {
    return this.now().getTime();
  }

  private find(key: string, uid: string | undefined): PodRecord {
    const rec = this.pods.get(key);
    if (!rec) throw new NotFoundError(`mock: pod ${key} not found`);
    if (uid && uid !== rec.uid) throw new NotFoundError(`mock: pod ${key} with uid ${uid} not found (running uid ${rec.uid})`);
    return rec;
  }

  private overrides(annotations: Record<string, string>): Overrides {
    const lc = this.config.lifecycle;
    const complete = annotations[ANNOTATION_COMPLETE_AFTER]?.trim() === 'never' ? null : intAnnotation(annotations, ANNOTATION_COMPLETE_AFTER, MAX_TIMER_MS);
    return {
      createDelayMs: intAnnotation(annotations, ANNOTATION_CREATE_DELAY, MAX_TIMER_MS) ?? lc.createDelayMs,
      runningDelayMs: intAnnotation(annotations, ANNOTATION_RUNNING_DELAY, MAX_TIMER_MS) ?? lc.runningDelayMs,
      completeAfterMs: complete === null ? undefined : (complete ?? lc.completeAfterMs),
      exitCode: intAnnotation(annotations, ANNOTATION_EXIT_CODE, 255) ?? 0,
    };
  }

  private applyOverrides(rec: PodRecord, o: Overrides): void {
    rec.runningDelayMs = o.runningDelayMs;
    rec.completeAfterMs = o.completeAfterMs;
    rec.injectedExitCode = o.exitCode;
  }

  /** Resolves after `ms`; close() rejects it. Timers only exist while a create is in flight. */
  private wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        timer: setTimeout(
          () => {
            this.waits.delete(w);
            resolve();
          },
          Math.min(ms, MAX_TIMER_MS),
        ),
        reject,
      };
      this.waits.add(w);
    });
  }

  private drop(rec: PodRecord, why: 'deleted' | 'replaced'): void {
    this.clearTimer(rec);
    rec.gone = why;
    if (rec.ip !== 0) this.ips.release(rec.ip);
    if (this.pods.get(rec.key) === rec) this.pods.delete(rec.key);
  }

  // --- State machine. Transitions are stamped with the time they were due, not when a
  // timer happened to fire, so a fake clock that jumps gives exact timestamps.

  private deadlineAt(rec: PodRecord): number {
    const seconds = rec.resolved.pod.spec?.activeDeadlineSeconds;
    return typeof seconds === 'number' && rec.stage !== 'terminated' ? rec.createdAt + seconds * 1000 : Infinity;
  }

  private dueAt(rec: PodRecord): number {
    switch (rec.stage) {
      case 'creating':
        return rec.createdAt + rec.runningDelayMs;
      case 'running':
        return rec.completeAfterMs === undefined ? Infinity : rec.runStart + rec.completeAfterMs;
      case 'backoff':
        return rec.stageAt + this.config.lifecycle.restartDelayMs;
      case 'terminated':
        return Infinity;
    }
  }

  /** Applies every transition due by `now`; true when the state changed. */
  private advance(rec: PodRecord, now: number): boolean {
    let changed = false;
    for (let i = 0; i < MAX_STEPS; i++) {
      const deadline = this.deadlineAt(rec);
      const due = this.dueAt(rec);
      if (deadline <= now && deadline <= due) {
        this.terminate(rec, deadline, 137, 'DeadlineExceeded');
      } else if (due <= now) {
        const stage = rec.stage;
        if (stage === 'creating') this.start(rec, due);
        else if (stage === 'running') this.exit(rec, due);
        else if (stage === 'backoff') this.restart(rec, due);
        // A zero-length run/backoff cycle would never let time move: one restart per timer.
        if (rec.stage === 'running' && stage !== 'creating' && rec.completeAfterMs === 0 && this.config.lifecycle.restartDelayMs === 0) return true;
      } else {
        break;
      }
      changed = true;
    }
    return changed;
  }

  private start(rec: PodRecord, at: number): void {
    rec.stage = 'running';
    rec.stageAt = at;
    rec.sandboxAt = at;
    rec.runStart = at;
    rec.readyAt = at;
    for (const c of rec.containers) c.startedAt = at;
  }

  private exit(rec: PodRecord, at: number): void {
    const code = rec.injectedExitCode;
    const policy = rec.resolved.pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) {
      this.terminate(rec, at, code, undefined);
      return;
    }
    for (const c of rec.containers) {
      c.last = { exitCode: code, startedAt: c.startedAt, finishedAt: at };
      c.startedAt = undefined;
    }
    if (this.config.lifecycle.restartDelayMs > 0) {
      rec.stage = 'backoff';
      rec.stageAt = at;
      rec.readyAt = at;
    } else {
      this.restart(rec, at);
    }
  }

  private restart(rec: PodRecord, at: number): void {
    if (rec.stage === 'backoff') rec.readyAt = at;
    rec.stage = 'running';
    rec.stageAt = at;
    rec.runStart = at;
    for (const c of rec.containers) {
      c.restartCount++;
      c.startedAt = at;
    }
  }

  private terminate(rec: PodRecord, at: number, exitCode: number, reason: PodRecord['endReason']): void {
    if (rec.stage === 'running') rec.readyAt = at;
    rec.stage = 'terminated';
    rec.stageAt = at;
    rec.exitCode = exitCode;
    rec.endReason = reason;
  }

  private phase(rec: PodRecord): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
    switch (rec.stage) {
      case 'creating':
        return 'Pending';
      case 'running':
      case 'backoff':
        return 'Running';
      case 'terminated':
        return rec.exitCode === 0 ? 'Succeeded' : 'Failed';
    }
  }

  /** Brings a pod up to the clock (timers may lag, or `now` may be a fake clock) and re-arms its timer. */
  private refresh(rec: PodRecord): void {
    if (this.closed) return;
    if (this.advance(rec, this.nowMs())) {
      this.schedule(rec);
      this.changed(rec);
    }
  }

  private schedule(rec: PodRecord): void {
    if (rec.gone || this.closed) return;
    const at = Math.min(this.deadlineAt(rec), this.dueAt(rec));
    if (at === Infinity) {
      this.clearTimer(rec);
      return;
    }
    if (rec.timer && rec.timerAt === at) return;
    this.clearTimer(rec);
    rec.timerAt = at;
    rec.timer = setTimeout(this.onTimer, Math.min(Math.max(at - this.nowMs(), 0), MAX_TIMER_MS), rec);
  }

  private clearTimer(rec: PodRecord): void {
    if (rec.timer) clearTimeout(rec.timer);
    rec.timer = undefined;
  }

  // One shared callback (the record rides as the timer argument): no closure per pod.
  private readonly onTimer = (rec: PodRecord): void => {
    rec.timer = undefined;
    if (rec.gone || this.closed) return;
    if (this.advance(rec, this.nowMs())) this.changed(rec);
    this.schedule(rec); // re-arms too when the timer fired before the clock reached `at`
  };

  /** After any change to a live record: to the state file and to the listeners. */
  private changed(rec: PodRecord): void {
    rec.saved = undefined;
    this.store?.request();
    this.markDirty(rec);
  }

  // --- State file.

  private snapshot(): string {
    const lines: string[] = [];
    for (const rec of this.pods.values()) lines.push((rec.saved ??= JSON.stringify(this.persisted(rec))));
    return stateText(new Date(this.nowMs()).toISOString(), lines);
  }

  private persisted(rec: PodRecord): PersistedPod {
    const meta = rec.resolved.pod.metadata;
    return {
      namespace: meta?.namespace ?? '',
      name: meta?.name ?? '',
      uid: rec.uid,
      phase: this.phase(rec),
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

  /**
   * Loads the pods of a state file written by an earlier provider; their lifecycles go on
   * from their recorded times. True when some pod had transitions fall due meanwhile.
   */
  private restore(file: string): boolean {
    const { pods } = loadMockState(file);
    const ipOf = (p: PersistedPod) => (p.ip === null ? 0 : (parseIPv4(p.ip) ?? 0));
    // In address order, so the pool is rebuilt in one pass.
    for (const p of [...pods].sort((a, b) => ipOf(a) - ipOf(b))) {
      const ip = ipOf(p);
      if (ip !== 0 && !this.ips.reserve(ip)) {
        throw new ConfigError(`mock stateFile ${file}: pod ${p.namespace}/${p.name}: IP ${p.ip ?? ''} is outside podCIDR ${this.config.podCIDR} or held by another pod`);
      }
    }
    const now = this.nowMs();
    let caughtUp = false;
    for (const p of pods) {
      const key = `${p.namespace}/${p.name}`;
      const rec = new PodRecord(key, p.uid, { pod: p.pod, volumes: decodeVolumes(p.volumes) }, p.createdAt, ipOf(p));
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
      rec.containers = p.containers.map((c) => Object.assign(new ContainerRun(), { restartCount: c.restartCount, startedAt: c.startedAt, last: c.last && { ...c.last } }));
      this.pods.set(key, rec);
      if (this.advance(rec, now)) caughtUp = true;
      this.schedule(rec);
    }
    this.counters.restored = pods.length;
    if (pods.length > 0) this.log.info({ file, pods: pods.length }, 'restored pods from the mock state file');
    return caughtUp;
  }

  // --- Notifications: changed pods are collected and delivered in one batch on the next
  // turn of the event loop, so a listener never runs inside createPod and a pod that
  // changed several times in one turn is reported once, with its latest state.

  private markDirty(rec: PodRecord): void {
    if (this.listeners.length === 0 || rec.gone === 'replaced') return;
    this.dirty.add(rec);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const batch = this.dirty;
    this.dirty = new Set();
    for (const rec of batch) {
      if (rec.gone === 'replaced') continue;
      const pod = this.render(rec);
      for (const listener of this.listeners) {
        this.counters.notifications++;
        try {
          listener(pod);
        } catch (err) {
          this.log.warn({ err, pod: rec.key }, 'pod listener threw');
        }
      }
    }
  };

  // --- Rendering.

  /** The stored pod with its current status; shallow, so callers must not mutate the spec. */
  private render(rec: PodRecord): Pod {
    return { ...rec.resolved.pod, status: this.buildStatus(rec) };
  }

  private buildStatus(rec: PodRecord): PodStatus {
    const pod = rec.resolved.pod;
    const spec = pod.spec;
    const generation = pod.metadata?.generation;
    const phase = this.phase(rec);
    const terminal = rec.stage === 'terminated';
    const running = rec.stage === 'running';
    const sandboxUp = rec.sandboxAt !== undefined;
    const initContainers = spec?.initContainers ?? [];
    const containers = spec?.containers ?? [];
    const blockingInit = initContainers.filter((c) => c.restartPolicy !== 'Always');

    const cond = (type: string, ok: boolean, at: number, reason?: string, message?: string): PodCondition => ({
      type,
      status: ok ? 'True' : 'False',
      ...(generation !== undefined && { observedGeneration: generation }),
      lastTransitionTime: rfc3339(at),
      ...(reason !== undefined && { reason }),
      ...(message !== undefined && { message }),
    });
    const unready = () => `containers with unready status: [${[...initContainers.filter((c) => c.restartPolicy === 'Always'), ...containers].map((c) => c.name).join(' ')}]`;
    const initialized = blockingInit.length === 0 || sandboxUp;
    const readyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
    const readyMessage = running || phase === 'Succeeded' ? undefined : unready();
    const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
    const conditions: PodCondition[] = [
      cond('PodReadyToStartContainers', sandboxUp && !terminal, terminal && sandboxUp ? rec.stageAt : (rec.sandboxAt ?? rec.createdAt)),
      initialized
        ? cond('Initialized', true, blockingInit.length === 0 ? rec.createdAt : (rec.sandboxAt ?? rec.createdAt))
        : cond('Initialized', false, rec.createdAt, 'ContainersNotInitialized', `containers with incomplete status: [${blockingInit.map((c) => c.name).join(' ')}]`),
      running ? cond('Ready', true, rec.readyAt) : cond('Ready', false, rec.readyAt, readyReason, readyMessage),
      running ? cond('ContainersReady', true, rec.readyAt) : cond('ContainersReady', false, rec.readyAt, readyReason, readyMessage),
      scheduled ? { ...scheduled } : cond('PodScheduled', true, rec.createdAt),
    ];

    const podIP = rec.ip === 0 ? this.hostIP : formatIPv4(rec.ip);
    const status: PodStatus = {
      ...(generation !== undefined && { observedGeneration: generation }),
      phase,
      conditions,
      hostIP: this.hostIP,
      hostIPs: [{ ip: this.hostIP }],
      ...(sandboxUp && { podIP, podIPs: [{ ip: podIP }] }),
      startTime: rfc3339(rec.createdAt),
      ...(initContainers.length > 0 && { initContainerStatuses: initContainers.map((c) => this.initContainerStatus(rec, c)) }),
      containerStatuses: containers.map((c, i) => this.containerStatus(rec, c, rec.containers[i])).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      ...(pod.status?.qosClass !== undefined && { qosClass: pod.status.qosClass }),
    };
    if (rec.endReason === 'DeadlineExceeded') {
      status.reason = 'DeadlineExceeded';
      status.message = 'Pod was active on the node longer than the specified deadline';
    }
    return status;
  }

  private containerID(rec: PodRecord, name: string): string {
    return `mock://${rec.uid}-${name}`;
  }

  private containerStatus(rec: PodRecord, c: Container, run: ContainerRun | undefined): ContainerStatus {
    const image = c.image ?? '';
    const base = { name: c.name, image, restartCount: run?.restartCount ?? 0 };
    const last = run?.last;
    const lastState = last ? terminatedState(last.exitCode, last.startedAt, last.finishedAt, this.containerID(rec, c.name)) : {};
    const id = this.containerID(rec, c.name);
    switch (rec.stage) {
      case 'creating': {
        const waitingFor = (rec.resolved.pod.spec?.initContainers ?? []).some((ic) => ic.restartPolicy !== 'Always');
        return { ...base, imageID: '', ready: false, started: false, state: { waiting: { reason: waitingFor ? 'PodInitializing' : 'ContainerCreating' } }, lastState };
      }
      case 'running':
        return { ...base, imageID: imageID(image), containerID: id, ready: true, started: true, state: { running: { startedAt: rfc3339(run?.startedAt ?? rec.runStart) } }, lastState };
      case 'backoff': {
        const pod = rec.resolved.pod;
        const seconds = Math.ceil(this.config.lifecycle.restartDelayMs / 1000);
        const message = `back-off ${seconds}s restarting failed container=${c.name} pod=${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${rec.uid})`;
        return { ...base, imageID: imageID(image), containerID: id, ready: false, started: false, state: { waiting: { reason: 'CrashLoopBackOff', message } }, lastState };
      }
      case 'terminated':
        return {
          ...base,
          imageID: run?.startedAt !== undefined || last ? imageID(image) : '',
          ...(run?.startedAt !== undefined && { containerID: id }),
          ready: false,
          started: false,
          state: terminatedState(rec.exitCode, run?.startedAt, rec.stageAt, run?.startedAt !== undefined ? id : undefined),
          lastState,
        };
    }
  }

  // Init containers finish the moment the sandbox is up; sidecars (restartPolicy Always) run until the pod ends.
  private initContainerStatus(rec: PodRecord, c: Container): ContainerStatus {
    const image = c.image ?? '';
    const id = this.containerID(rec, c.name);
    const base = { name: c.name, image, restartCount: 0, lastState: {} };
    const at = rec.sandboxAt;
    if (at === undefined) return { ...base, imageID: '', ready: false, started: false, state: { waiting: { reason: 'PodInitializing' } } };
    if (c.restartPolicy !== 'Always') {
      return { ...base, imageID: imageID(image), containerID: id, ready: true, started: false, state: terminatedState(0, at, at, id) };
    }
    if (rec.stage === 'terminated') {
      return { ...base, imageID: imageID(image), containerID: id, ready: false, started: false, state: terminatedState(rec.endReason === 'DeadlineExceeded' ? 137 : 0, at, rec.stageAt, id) };
    }
    return { ...base, imageID: imageID(image), containerID: id, ready: true, started: true, state: { running: { startedAt: rfc3339(at) } } };
  }
}
