// Stopping one container run: the preStop hook, the stop signal, SIGKILL after the grace period,
// and the signalling rules of a run's process tree (pid-namespace init, shared pid namespace).
import { setTimeout as sleep } from 'node:timers/promises';
import { allStats, childrenOf, descendantsOf, isAlive, signal as sendSignal } from './procfs.ts';
import type { Instance } from './state.ts';

const SIGNALS: Record<string, NodeJS.Signals> = {
  SIGTERM: 'SIGTERM',
  SIGINT: 'SIGINT',
  SIGQUIT: 'SIGQUIT',
  SIGHUP: 'SIGHUP',
  SIGKILL: 'SIGKILL',
  SIGUSR1: 'SIGUSR1',
  SIGUSR2: 'SIGUSR2',
  SIGWINCH: 'SIGWINCH',
};

/** The container's stop signal (lifecycle.stopSignal or the image's StopSignal, "TERM" or "SIGTERM"); SIGTERM by default. */
export function stopSignalOf(name: string | undefined): NodeJS.Signals {
  if (!name) return 'SIGTERM';
  const upper = name.toUpperCase();
  return SIGNALS[upper.startsWith('SIG') ? upper : `SIG${upper}`] ?? 'SIGTERM';
}

/** Signals the instance's processes: the command (SIGTERM etc.), or everything (SIGKILL). */
export function killInstance(inst: Instance, sig: NodeJS.Signals, sharePid: boolean): void {
  const stats = allStats();
  if (!inst.childPid || !isAlive(inst.childPid, inst.childStart)) {
    // Not known yet: the whole tree under the shim.
    for (const p of descendantsOf(inst.shimPid, stats)) if (p.pid !== inst.shimPid) sendSignal(p.pid, sig);
    return;
  }
  if (sig === 'SIGKILL') {
    // Killing a pid namespace's init kills all of it; with a shared namespace, kill the tree.
    // bwrap's monitor under the shim goes too (it would wait for the killed init forever).
    for (const p of sharePid ? descendantsOf(inst.childPid, stats) : [{ pid: inst.childPid }]) sendSignal(p.pid, 'SIGKILL');
    for (const p of descendantsOf(inst.shimPid, stats)) if (p.pid !== inst.shimPid) sendSignal(p.pid, 'SIGKILL');
    return;
  }
  // The init of a pid namespace ignores signals it has no handler for: signal the command itself.
  if (sharePid) sendSignal(inst.childPid, sig);
  else for (const p of childrenOf(inst.childPid, stats)) sendSignal(p.pid, sig);
}

export interface StopPlan {
  graceSeconds: number;
  stopSignal: NodeJS.Signals;
  sharePid: boolean;
  /** Runs the preStop hook (given the time left), when the container has one. */
  preStop?: (timeoutMs: number) => Promise<unknown>;
}

async function waitWhileAlive(inst: Instance, until: number): Promise<void> {
  while (isAlive(inst.shimPid, inst.shimStart) && Date.now() < until) await sleep(20);
}

/**
 * Stops the run: preStop (within the grace period), the stop signal, SIGKILL once the grace
 * period is over, and at last the monitor itself if it still lingers 10 s later. Resolves when
 * the monitor is gone (or given up on); the caller collects the exit.
 */
export async function stopInstance(inst: Instance, plan: StopPlan): Promise<void> {
  const deadline = Date.now() + plan.graceSeconds * 1000;
  if (plan.preStop && plan.graceSeconds > 0) {
    await Promise.race([plan.preStop(Math.max(deadline - Date.now(), 1)), sleep(Math.max(deadline - Date.now(), 0))]);
  }
  killInstance(inst, plan.graceSeconds > 0 ? plan.stopSignal : 'SIGKILL', plan.sharePid);
  await waitWhileAlive(inst, deadline);
  if (isAlive(inst.shimPid, inst.shimStart)) killInstance(inst, 'SIGKILL', plan.sharePid);
  await waitWhileAlive(inst, Date.now() + 10_000);
  if (isAlive(inst.shimPid, inst.shimStart)) sendSignal(inst.shimPid, 'SIGKILL');
}
