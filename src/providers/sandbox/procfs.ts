// What the sandbox provider reads from /proc: process identity (pid + start time, so a reused
// pid is never mistaken for ours), parent links and CPU/memory figures for stats.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times: 100 on every Linux Node runs on. */
export const CLOCK_TICKS = 100;
const PAGE_SIZE = 4096;

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time after boot, in clock ticks: with the pid, a process's identity. */
  startTicks: number;
  rssBytes: number;
}

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const num = (n: number) => Number(f[n - 3] ?? 0);
  return { pid, comm, state: f[0] ?? '?', ppid: num(4), cpuTicks: num(14) + num(15), startTicks: num(22), rssBytes: num(24) * PAGE_SIZE };
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** True when `pid` runs and is the process that started at `startTicks` (not a zombie, not a reused pid). */
export function isAlive(pid: number | undefined, startTicks: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTicks === undefined || stat.startTicks === startTicks;
}

export function allPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/** Every process's stat, read once (processes may vanish meanwhile; they are skipped). */
export function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const pid of allPids()) {
    const s = readStat(pid);
    if (s) out.push(s);
  }
  return out;
}

/** Direct children of `pid` (the kernel here has no /proc/<pid>/task/<pid>/children). */
export function childrenOf(pid: number, stats: ProcStat[] = allStats()): ProcStat[] {
  return stats.filter((s) => s.ppid === pid);
}

/** `pid` and all its descendants. */
export function descendantsOf(pid: number, stats: ProcStat[] = allStats()): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const s of stats) {
    const list = byParent.get(s.ppid);
    if (list) list.push(s);
    else byParent.set(s.ppid, [s]);
  }
  const out: ProcStat[] = [];
  const self = stats.find((s) => s.pid === pid);
  if (self) out.push(self);
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const child of byParent.get(next) ?? []) {
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** Sends a signal, ignoring a process that is already gone. */
export function signal(pid: number | undefined, sig: NodeJS.Signals): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** The pty slave a `script` process made (its child's stdin), or undefined before there is one. */
export function ptySlave(scriptPid: number): string | undefined {
  for (const p of allStats()) {
    if (p.ppid !== scriptPid) continue;
    try {
      const target = readlinkSync(`/proc/${p.pid}/fd/0`);
      if (target.startsWith('/dev/pts/')) return target;
    } catch {
      // gone
    }
  }
  return undefined;
}
