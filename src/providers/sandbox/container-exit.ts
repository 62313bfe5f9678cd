// How a container run ends, as record arithmetic with no processes and no files: the terminated
// state (reason, termination message), the CrashLoopBackOff and ImagePullBackOff delays, the
// waiting reasons they show, and whether the container starts again.
import type { ShimExit } from './shim.ts';
import type { ContainerRecord, Instance, Terminated } from './state.ts';
import { toSeconds } from './pod-status.ts';

export interface CrashLoopBackOff {
  initialMs: number;
  maxMs: number;
  /** A run at least this long starts the back-off over. */
  resetAfterMs: number;
}

export interface PullBackOff {
  initialMs: number;
  maxMs: number;
}

/** A time as the shim and the status write it, in ms; now when absent or unreadable. */
export function parseTime(text: string | undefined, now = Date.now()): number {
  if (!text) return now;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? now : ms;
}

/** Does a container that stopped start again under the pod's restartPolicy? Sidecars always do. */
export function shouldRestart(c: Pick<ContainerRecord, 'sidecar' | 'terminated'>, policy: string): boolean {
  if (c.sidecar) return true;
  if (policy === 'Always') return true;
  if (policy === 'OnFailure') return (c.terminated?.exitCode ?? 0) !== 0;
  return false;
}

/** Readers of what a run left behind; each returns undefined when there is nothing (or it cannot be read). */
export interface RunOutput {
  /** The container's terminationMessagePath file. */
  terminationLog(): string | undefined;
  /** The run's CRI log file. */
  log(): string | undefined;
}

function attempt(read: () => string | undefined): string | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The last lines of a CRI log as the kubelet's FallbackToLogsOnError takes them: 80 lines, 2 KiB, without the CRI prefix. */
export function messageFromLog(text: string): string | undefined {
  const lines = text.trimEnd().split('\n').slice(-80);
  return (
    lines
      .map((l) => l.split(' ').slice(3).join(' '))
      .join('\n')
      .slice(-2048) || undefined
  );
}

/**
 * The terminated state's message: a problem we know of (the monitor died, the sandbox went),
 * else the start error, else the termination-log file (4 KiB), else with FallbackToLogsOnError
 * and a non-zero exit the end of the log.
 */
export function terminationMessage(
  exit: Pick<ShimExit, 'exitCode' | 'startError'>,
  problem: string | undefined,
  policy: string | undefined,
  output: RunOutput,
): string | undefined {
  let message = problem ?? exit.startError;
  if (message === undefined) {
    const text = attempt(output.terminationLog)?.slice(0, 4096);
    if (text) message = text;
  }
  if (message === undefined && exit.exitCode !== 0 && policy === 'FallbackToLogsOnError') {
    const text = attempt(output.log);
    if (text !== undefined) message = messageFromLog(text);
  }
  return message;
}

export function terminationReason(exit: Pick<ShimExit, 'exitCode' | 'startError'>, oomKilled: boolean): string {
  if (exit.startError !== undefined) return 'StartError';
  if (oomKilled) return 'OOMKilled';
  return exit.exitCode === 0 ? 'Completed' : 'Error';
}

export function terminatedState(exit: ShimExit, inst: Pick<Instance, 'startedAt' | 'containerID'>, reason: string, message: string | undefined): Terminated {
  return {
    exitCode: exit.exitCode,
    ...(exit.signal && { signal: Number(exit.exitCode) - 128 }),
    reason,
    ...(message !== undefined && { message }),
    startedAt: toSeconds(inst.startedAt),
    finishedAt: toSeconds(exit.finishedAt),
    containerID: inst.containerID,
  };
}

/**
 * CrashLoopBackOff after a run of `ranMs`: the first restart is immediate, later ones wait
 * initialMs, doubling up to maxMs; a run of resetAfterMs or more starts over.
 */
export function crashLoopAfterExit(
  backoffMs: number,
  ranMs: number,
  cfg: CrashLoopBackOff,
  now: number,
): Pick<ContainerRecord, 'backoffMs' | 'backoffUntil' | 'backoffWaitMs'> {
  const current = ranMs >= cfg.resetAfterMs ? 0 : backoffMs;
  if (current === 0) return { backoffMs: cfg.initialMs, backoffUntil: undefined };
  return { backoffMs: Math.min(current * 2, cfg.maxMs), backoffUntil: now + current, backoffWaitMs: current };
}

/** Records the end of the running instance on the container's record (terminated, not ready, back-off). */
export function recordExit(c: ContainerRecord, terminated: Terminated, ranMs: number, cfg: CrashLoopBackOff, now: number): void {
  c.running = undefined;
  c.terminated = terminated;
  c.ready = false;
  c.started = false;
  Object.assign(c, crashLoopAfterExit(c.backoffMs, ranMs, cfg, now));
}

/** The next ImagePullBackOff delay: initialMs after the first failure, doubling up to maxMs. */
export function nextPullBackoff(pullBackoffMs: number, cfg: PullBackOff): number {
  return pullBackoffMs === 0 ? cfg.initialMs : Math.min(pullBackoffMs * 2, cfg.maxMs);
}

/** Records a failed pull: the error's reason (ErrImagePull...) now, the retry after the next back-off. */
export function recordPullFailure(c: ContainerRecord, reason: string, message: string, cfg: PullBackOff, now: number): void {
  c.pullBackoffMs = nextPullBackoff(c.pullBackoffMs, cfg);
  c.pullRetryAt = now + c.pullBackoffMs;
  c.waiting = { reason, message };
}

/** The kubelet's ImagePullBackOff waiting state after an ErrImagePull. */
export function imagePullBackOff(image: string, pullMessage: string | undefined): { reason: string; message: string } {
  return { reason: 'ImagePullBackOff', message: `Back-off pulling image ${JSON.stringify(image)}: ${pullMessage ?? ''}`.trim() };
}

/** The kubelet's CrashLoopBackOff waiting state while a restart is held back. */
export function crashLoopBackOff(
  c: Pick<ContainerRecord, 'name' | 'backoffMs' | 'backoffWaitMs'>,
  pod: { name: string; namespace: string; uid: string },
): { reason: string; message: string } {
  const seconds = Math.round((c.backoffWaitMs ?? c.backoffMs) / 1000);
  return { reason: 'CrashLoopBackOff', message: `back-off ${seconds}s restarting failed container=${c.name} pod=${pod.name}_${pod.namespace}(${pod.uid})` };
}
