// Starting a container's monitor (monitor/monitor.c, see shim.ts for its files) as a detached
// process and waiting for it to report the start, reading the JSON files it writes, and finding
// monitors a crashed provider left behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../log.ts';
import { MONITOR_NAME, monitorBinary } from './monitor-build.ts';
import { allStats, descendantsOf, isAlive, readStat, signal as sendSignal } from './procfs.ts';
import { encodeSpec, type ShimSpec, type ShimState } from './shim.ts';

/** How long a container's monitor may take to report the start. */
const SHIM_START_TIMEOUT_MS = 10_000;
/** The safety net of the file watches (a missed inotify event costs at most this). */
const WATCH_FALLBACK_MS = 250;
/** The spec's file name in the instance directory (the monitor's only argument). */
const SPEC_FILE = 'monitor-spec';

/** Builds the monitor now (when not cached) so that the first container start does not wait for it. */
export async function prepareMonitor(log: Logger): Promise<void> {
  await monitorBinary((line) => log.info(line));
}

/** The spec file of a monitor's command line, or undefined when it is not a container monitor's. */
export function monitorSpecArg(argv: readonly string[]): string | undefined {
  const [command, spec] = argv;
  return command?.endsWith(`/${MONITOR_NAME}`) && spec?.endsWith(`/${SPEC_FILE}`) ? spec : undefined;
}

/** A JSON file the shim or the runtime wrote, or undefined when it is absent or unreadable. */
export function readJson<T>(file: string): T | undefined {
  try {
    if (!statSync(file).isFile()) return undefined;
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * Calls `check` whenever something in `dir` changes (inotify) and every WATCH_FALLBACK_MS (in
 * case an event is missed); `check` returns true when done. Resolves when it has, or after `timeoutMs`.
 */
function watchUntil(dir: string, check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      watcher?.close();
      clearInterval(timer);
      clearTimeout(deadline);
      resolve();
    };
    const look = () => {
      if (!done && check()) finish();
    };
    const timer = setInterval(look, WATCH_FALLBACK_MS);
    const deadline = setTimeout(finish, timeoutMs);
    try {
      watcher = watch(dir, look);
      watcher.on('error', () => watcher?.close());
    } catch {
      // the timer alone
    }
    look();
  });
}

export interface LaunchedShim {
  child: ChildProcess;
  shimPid: number;
  /** The shim's start time in clock ticks (with the pid, it names the process). */
  shimStart: number;
  /** What the shim reported: the sandboxed process's pid once started; undefined when it said nothing in time. */
  state: ShimState | undefined;
}

/**
 * Writes the spec into the instance directory `dir`, starts the shim on it, and waits for the
 * shim to report the start with the sandboxed process's pid (or the exit, for a command that
 * fails at once). Undefined when the shim cannot be spawned.
 */
export async function launchShim(dir: string, spec: ShimSpec): Promise<LaunchedShim | undefined> {
  const specFile = path.join(dir, SPEC_FILE);
  await writeFile(specFile, encodeSpec(spec));
  const child = spawn(await monitorBinary(), [specFile], { detached: true, stdio: 'ignore' });
  const shimPid = await new Promise<number | undefined>((resolve) => {
    child.once('spawn', () => resolve(child.pid));
    child.once('error', () => resolve(undefined));
  });
  child.unref();
  if (shimPid === undefined) return undefined;
  const shimStart = readStat(shimPid)?.startTicks ?? 0;
  // The shim renames its state file into the instance directory when the process has started.
  let state: ShimState | undefined;
  await watchUntil(
    dir,
    () => {
      state = readJson<ShimState>(spec.stateFile);
      return state?.childPid !== undefined || existsSync(spec.exitFile) || !isAlive(shimPid, shimStart);
    },
    SHIM_START_TIMEOUT_MS,
  );
  return { child, shimPid, shimStart, state };
}

/**
 * Kills the container runs under `podDir` whose monitors are not in `known`: a provider killed
 * between starting a monitor and recording it leaves one behind.
 */
export function killStrayShims(podDir: string, known: ReadonlySet<number>, log: Logger): void {
  const marker = `${path.join(podDir, 'containers')}/`;
  const stats = allStats();
  for (const p of stats) {
    if (known.has(p.pid)) continue;
    let cmdline: string[];
    try {
      cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const spec = monitorSpecArg(cmdline);
    if (!spec?.startsWith(marker)) continue;
    const info = readJson<{ 'child-pid'?: number }>(path.join(path.dirname(spec), 'info.json'));
    const child = info?.['child-pid'];
    if (child && readStat(child)?.comm === 'bwrap') sendSignal(child, 'SIGKILL');
    for (const d of descendantsOf(p.pid, stats)) sendSignal(d.pid, 'SIGKILL');
    log.info({ shimPid: p.pid, spec }, 'killed a container run the pod state does not know');
  }
}
