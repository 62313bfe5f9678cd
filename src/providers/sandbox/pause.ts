// The pod sandbox: one long-lived pause process (catatonit -P, PID 1 of the pod's pid namespace,
// reaping orphans) that holds the pod's pid, ipc, uts, mount and network namespaces. It is
// started through util-linux unshare, detached from the virtual kubelet (own session, no pipes),
// so it outlives a restart of ours; killing it makes the kernel kill every process left in the
// pod's pid namespace (containers' nested namespaces included) and free the namespaces.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VkError } from '../../errors.ts';
import { shellQuote } from '../../util/command.ts';
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

/**
 * What the pod's first process does in its new namespaces before it becomes the pause process
 * (the pod's network and hostname, network.ts): an sh script, run with `set -e`, its arguments
 * as "$@". Done there rather than by more processes spawned from the provider afterwards:
 * spawning from a large Node process is what a burst of pod starts waits on.
 */
export interface PauseSetup {
  script: string;
  args: string[];
  /** Where the script's stderr goes; read when it fails. */
  errFile: string;
}

/** The setup script failed: its exit code and stderr. */
export class PauseSetupError extends VkError {
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(exitCode: number | null, stderr: string) {
    super('VK_PROVIDER', `the pod sandbox's setup failed (exit code ${exitCode}): ${stderr.trim().split('\n').slice(-3).join('; ') || 'no message'}`);
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Starts the pause process in fresh namespaces, after `setup` when given; `podDir` marks it. */
export async function startPause(tools: PauseTools, podDir?: string, setup?: PauseSetup): Promise<PauseProcess> {
  const command = setup
    ? ['/bin/sh', '-c', `exec 2>"$1"; shift; set -e\n${setup.script}\nexec 2>/dev/null; exec ${shellQuote(tools.pause)} -P`, 'sh', setup.errFile, ...setup.args]
    : [tools.pause, '-P'];
  const child = spawn(tools.unshare, ['--pid', '--fork', '--ipc', '--uts', '--net', '--mount', '--propagation', 'private', '--kill-child', '--', ...command], {
    detached: true,
    stdio: 'ignore',
    env: podDir === undefined ? process.env : { ...process.env, [POD_DIR_ENV]: podDir },
  });
  const unsharePid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () => resolve(child.pid!));
    child.once('error', (err) => reject(new VkError('VK_PROVIDER', `cannot start ${tools.unshare}: ${err.message}`)));
  });
  let exitCode: number | null | undefined;
  child.once('exit', (code) => (exitCode = code));
  child.unref();
  // The kernel's command name: the executable's base name, at most 15 characters.
  const pauseComm = path.basename(tools.pause).slice(0, 15);
  const deadline = Date.now() + 10_000;
  let pid: number | undefined;
  while (true) {
    pid ??= forkedChild(unsharePid);
    if (pid !== undefined) {
      // unshare forks, then the child execs the setup's sh (which execs the pause process) or the pause process itself.
      const stat = readStat(pid);
      if (stat && stat.comm === pauseComm) return { pid, startTicks: stat.startTicks, unsharePid };
      if (!stat) pid = undefined;
    }
    if (exitCode !== undefined) {
      if (setup && exitCode !== 0) throw new PauseSetupError(exitCode, await readFile(setup.errFile, 'utf8').catch(() => ''));
      throw new VkError('VK_PROVIDER', `the pod's pause process exited at once (code ${exitCode}): is ${tools.pause} installed?`);
    }
    if (Date.now() > deadline) {
      signal(unsharePid, 'SIGKILL');
      throw new VkError('VK_PROVIDER', 'the pod sandbox did not start within 10 s');
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
