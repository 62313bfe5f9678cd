// The mock pod's state machine: a record of numbers (epoch milliseconds) and the pure functions
// that move it along the clock. creating → running → (exit) → terminated, or → backoff →
// running again when the restart policy restarts it; activeDeadlineSeconds ends any stage.
// Transitions are stamped with the time they were due, not when a timer happened to fire, so
// a fake clock that jumps gives exact timestamps. Timers and notifications are the provider's.
import { ContainerStateError, NotFoundError } from '../../errors.ts';
import type { Container } from '../../kube/types.ts';
import type { ResolvedPod, ResolvedVolume } from '../provider.ts';
import { internedCopy } from './intern.ts';
import { cloneJson } from '../../util/clone-json.ts';

export type Stage = 'creating' | 'running' | 'backoff' | 'terminated';
export type MockPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface Termination {
  exitCode: number;
  startedAt: number | undefined;
  finishedAt: number;
}

export class ContainerRun {
  restartCount = 0;
  startedAt: number | undefined = undefined;
  last: Termination | undefined = undefined;
}

export const MAX_TIMER_MS = 2_147_483_647; // setTimeout fires at once beyond this
const MAX_STEPS = 1000; // transitions applied in one go after a clock jump

// Times are epoch milliseconds; they become RFC3339 strings only in rendered statuses.
export class PodRecord {
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
  /** Set when the provider let go of the record: deleted, replaced by a new incarnation, or its create aborted. */
  gone: 'deleted' | 'replaced' | 'aborted' | undefined = undefined;
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

export function phaseOf(rec: PodRecord): MockPhase {
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

/** When activeDeadlineSeconds ends the pod; Infinity without one or once it ended. */
export function deadlineAt(rec: PodRecord): number {
  const seconds = rec.resolved.pod.spec?.activeDeadlineSeconds;
  return typeof seconds === 'number' && rec.stage !== 'terminated' ? rec.createdAt + seconds * 1000 : Infinity;
}

/** When the current stage ends by itself; Infinity when it does not. */
export function dueAt(rec: PodRecord, restartDelayMs: number): number {
  switch (rec.stage) {
    case 'creating':
      return rec.createdAt + rec.runningDelayMs;
    case 'running':
      return rec.completeAfterMs === undefined ? Infinity : rec.runStart + rec.completeAfterMs;
    case 'backoff':
      return rec.stageAt + restartDelayMs;
    case 'terminated':
      return Infinity;
  }
}

/** The next time the record needs a timer (the earlier of its deadline and its stage's end). */
export function nextAt(rec: PodRecord, restartDelayMs: number): number {
  return Math.min(deadlineAt(rec), dueAt(rec, restartDelayMs));
}

/** Applies every transition due by `now`; true when the state changed. */
export function advance(rec: PodRecord, now: number, restartDelayMs: number): boolean {
  let changed = false;
  for (let i = 0; i < MAX_STEPS; i++) {
    const deadline = deadlineAt(rec);
    const due = dueAt(rec, restartDelayMs);
    if (deadline <= now && deadline <= due) {
      terminate(rec, deadline, 137, 'DeadlineExceeded');
    } else if (due <= now) {
      const stage = rec.stage;
      if (stage === 'creating') start(rec, due);
      else if (stage === 'running') exit(rec, due, restartDelayMs);
      else if (stage === 'backoff') restart(rec, due);
      // A zero-length run/backoff cycle would never let time move: one restart per timer.
      if (rec.stage === 'running' && stage !== 'creating' && rec.completeAfterMs === 0 && restartDelayMs === 0) return true;
    } else {
      break;
    }
    changed = true;
  }
  return changed;
}

function start(rec: PodRecord, at: number): void {
  rec.stage = 'running';
  rec.stageAt = at;
  rec.sandboxAt = at;
  rec.runStart = at;
  rec.readyAt = at;
  for (const c of rec.containers) c.startedAt = at;
}

function exit(rec: PodRecord, at: number, restartDelayMs: number): void {
  const code = rec.injectedExitCode;
  const policy = rec.resolved.pod.spec?.restartPolicy ?? 'Always';
  if (policy === 'Never' || (policy === 'OnFailure' && code === 0)) {
    terminate(rec, at, code, undefined);
    return;
  }
  for (const c of rec.containers) {
    c.last = { exitCode: code, startedAt: c.startedAt, finishedAt: at };
    c.startedAt = undefined;
  }
  if (restartDelayMs > 0) {
    rec.stage = 'backoff';
    rec.stageAt = at;
    rec.readyAt = at;
  } else {
    restart(rec, at);
  }
}

function restart(rec: PodRecord, at: number): void {
  if (rec.stage === 'backoff') rec.readyAt = at;
  rec.stage = 'running';
  rec.stageAt = at;
  rec.runStart = at;
  for (const c of rec.containers) {
    c.restartCount++;
    c.startedAt = at;
  }
}

/** Ends the pod: its containers stop with `exitCode` (137 for the deadline, 0 when deleted). */
export function terminate(rec: PodRecord, at: number, exitCode: number, reason: PodRecord['endReason']): void {
  if (rec.stage === 'running') rec.readyAt = at;
  rec.stage = 'terminated';
  rec.stageAt = at;
  rec.exitCode = exitCode;
  rec.endReason = reason;
}

/**
 * Applies a spec update at `now`: containers whose image changed restart (the kubelet kills and
 * starts them again) while the pod runs. The caller advances the record before and after.
 */
export function applySpecUpdate(rec: PodRecord, resolved: ResolvedPod, now: number): void {
  const before = rec.resolved.pod.spec?.containers ?? [];
  rec.resolved = resolved;
  const after = resolved.pod.spec?.containers ?? [];
  if (after.length !== rec.containers.length) rec.containers = after.map(() => new ContainerRun()); // the API forbids this; stay consistent anyway
  if (rec.stage !== 'running') return;
  after.forEach((c, i) => {
    const run = rec.containers[i];
    if (!run || before[i]?.image === c.image) return;
    run.last = { exitCode: 0, startedAt: run.startedAt, finishedAt: now };
    run.restartCount++;
    run.startedAt = now;
  });
}

/** Shared by every copy without volumes (~200 bytes each otherwise): the mock never changes a copy's volumes. */
const NO_VOLUMES = new Map<string, ResolvedVolume>();

/** A deep copy: the pod's parts shared with equal ones of other pods and frozen (intern.ts), fresh buffers for files. */
export function cloneResolved(r: ResolvedPod): ResolvedPod {
  const volumes = r.volumes.size === 0 ? NO_VOLUMES : new Map<string, ResolvedVolume>();
  for (const [name, v] of r.volumes) {
    // new Uint8Array copies; a Buffer's slice() would not.
    volumes.set(name, v.type === 'files' ? { ...v, files: v.files.map((f) => ({ ...f, content: new Uint8Array(f.content) })) } : { ...v });
  }
  return { pod: internedCopy(r.pod), volumes, ...(r.pullSecrets && { pullSecrets: cloneJson(r.pullSecrets) }) };
}

/** A running container (or sidecar) of the pod, or a kubelet-like error. */
export function runningContainer(rec: PodRecord, podName: string, container: string): Container {
  const containers = rec.resolved.pod.spec?.containers ?? [];
  const index = containers.findIndex((c) => c.name === container);
  const sidecar = (rec.resolved.pod.spec?.initContainers ?? []).find((c) => c.name === container && c.restartPolicy === 'Always');
  const spec = containers[index] ?? sidecar;
  if (!spec) throw new NotFoundError(`container "${container}" not found in pod "${podName}"`);
  const running =
    index >= 0 ? rec.stage === 'running' && rec.containers[index]?.startedAt !== undefined : rec.sandboxAt !== undefined && rec.stage !== 'terminated';
  // The kubelet's wording; ContainerStateError.notRunning words it differently.
  if (!running) throw ContainerStateError.notRunning(podName, container);
  return spec;
}
