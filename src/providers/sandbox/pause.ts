// The pod sandbox: one long-lived pause process (catatonit -P, PID 1 of the pod's pid namespace,
// reaping orphans) that holds the pod's pid, ipc, uts, mount and network namespaces. It is
// started through util-linux unshare, detached from the virtual kubelet (own session, no pipes),
// so it outlives a restart of ours; killing it makes the kernel kill every process left in the
// pod's pid namespace (containers' nested namespaces included) and free the namespaces.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { VkError } from '../../errors.ts';
import { childrenOf, isAlive, readStat, signal } from './procfs.ts';

export interface PauseProcess {
  /** Host pid of the pause process (the namespaces' holder). */
  pid: number;
  startTicks: number;
  /** The unshare process waiting for it. */
  unsharePid: number;
}

export interface PauseTools {
  unshare: string;
  pause: string;
}

/** The child unshare forked: usually the next pid or one after it (looked at first), else found in /proc. */
function forkedChild(unsharePid: number): number | undefined {
  for (let pid = unsharePid + 1; pid <= unsharePid + 4; pid++) if (readStat(pid)?.ppid === unsharePid) return pid;
  return childrenOf(unsharePid)[0]?.pid;
}

/**
 * The pause process's marker: its pod's directory, in its environment, so that `vk down` finds
 * the pods of a data directory that is gone (leftovers.ts). The containers never see it (bwrap
 * --clearenv).
 */
export const POD_DIR_ENV = 'VK_SANDBOX_POD_DIR';

/** Starts the pause process in fresh namespaces (then setPauseHostname names the pod); `podDir` marks it. */
export async function startPause(tools: PauseTools, podDir?: string): Promise<PauseProcess> {
  const child = spawn(
    tools.unshare,
    ['--pid', '--fork', '--ipc', '--uts', '--net', '--mount', '--propagation', 'private', '--kill-child', '--', tools.pause, '-P'],
    {
      detached: true,
      stdio: 'ignore',
      env: podDir === undefined ? process.env : { ...process.env, [POD_DIR_ENV]: podDir },
    },
  );
  const unsharePid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (err) => reject(new VkError('VK_PROVIDER', `cannot start ${tools.unshare}: ${err.message}`)));
  });
  let exitCode: number | null | undefined;
  child.once('exit', (code) => (exitCode = code));
  child.unref();
  const deadline = Date.now() + 5000;
  let pid: number | undefined;
  while (true) {
    pid ??= forkedChild(unsharePid);
    if (pid !== undefined) {
      // unshare forks first, then the child execs catatonit: wait for the exec.
      const stat = readStat(pid);
      if (stat && stat.comm !== 'unshare') return { pid, startTicks: stat.startTicks, unsharePid };
      if (!stat) pid = undefined;
    }
    if (exitCode !== undefined) throw new VkError('VK_PROVIDER', `the pod's pause process exited at once (code ${exitCode}): is ${tools.pause} installed?`);
    if (Date.now() > deadline) {
      signal(unsharePid, 'SIGKILL');
      throw new VkError('VK_PROVIDER', 'the pod sandbox did not start within 5 s');
    }
    await sleep(2);
  }
}

export function pauseAlive(pause: PauseProcess): boolean {
  return isAlive(pause.pid, pause.startTicks);
}

/** Kills the pause process (and with it everything in the pod's pid namespace) and waits until it is gone. */
export async function stopPause(pause: PauseProcess, timeoutMs = 10_000): Promise<void> {
  if (pauseAlive(pause)) signal(pause.pid, 'SIGKILL');
  const deadline = Date.now() + timeoutMs;
  while (pauseAlive(pause) && Date.now() < deadline) await sleep(5);
  // unshare exits once its child is gone; reap-wise it is init's (or ours) to collect.
  const unshare = readStat(pause.unsharePid);
  if (unshare && unshare.comm === 'unshare' && unshare.state !== 'Z') {
    const until = Date.now() + 2000;
    while (isAlive(pause.unsharePid, unshare.startTicks) && Date.now() < until) await sleep(10);
  }
}
