// Resource limits and usage of the sandbox's containers through cgroups, where the machine lets
// us have them. At start the provider looks for (in this order)
//   - cgroup v2: the unified hierarchy, with memory and cpu (and pids) available to the cgroup the
//     provider runs in, which may be a delegated subtree; they are enabled in subtree_control;
//   - cgroup v1: writable memory and cpu hierarchies (cpuacct and pids used when present);
//   - nothing usable: no limits (the node says so in its SandboxResourceLimits condition).
//
// Layout, in each hierarchy used: <the provider's own cgroup>/virtual-kubelet-sandbox/<pod uid>/<container>.
// Every cgroup created is recorded by its absolute paths (CgroupPaths), so a restarted provider
// finds them again whatever cgroup it runs in itself; reading usage, OOM kills and removing work
// from those paths alone.
//
// The values written are the kubelet's conversions (cgroup-limits.ts): memory limit →
// memory.limit_in_bytes (+ memsw, so no swapping past it) or memory.max (+ memory.swap.max 0).
// Working set = usage − inactive file pages, as cAdvisor has it.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sharesToWeight, type ContainerLimits } from './cgroup-limits.ts';

export type CgroupVersion = 1 | 2;

/** One cgroup, by the directory of each controller used (on v2 they are all the same directory). */
export interface CgroupPaths {
  version: CgroupVersion;
  memory: string;
  cpu: string;
  /** CPU usage (v1 cpuacct; on v2 the cpu directory). */
  cpuacct?: string;
  pids?: string;
}

export interface CgroupUsage {
  /** Cumulative CPU time, in ns. */
  cpuNs?: number;
  memoryUsageBytes?: number;
  memoryWorkingSetBytes?: number;
}

export const ROOT_NAME = 'virtual-kubelet-sandbox';
// --- Discovery.

interface Mount {
  mountPoint: string;
  /** The mount's root inside its hierarchy (not "/" when a container mounted a subtree). */
  root: string;
  fstype: string;
  superOptions: string[];
}

/** Parses /proc/self/mountinfo (cgroup and cgroup2 mounts only). */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const fstype = right[0] ?? '';
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    out.push({ root: unescape(left[3] ?? '/'), mountPoint: unescape(left[4] ?? ''), fstype, superOptions: (right[2] ?? '').split(',') });
  }
  return out;
}

/** Parses /proc/self/cgroup: hierarchy controllers ("" for v2) → path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m) out.set(m[2]!, m[3]!);
  }
  return out;
}

/** Where `cgroupPath` (as /proc/self/cgroup names it) is under a mount of its hierarchy. */
function dirFor(mount: Mount, cgroupPath: string): string {
  let rel = cgroupPath;
  if (mount.root !== '/' && (rel === mount.root || rel.startsWith(`${mount.root}/`))) rel = rel.slice(mount.root.length);
  // The cgroup namespace may show "/.." paths for cgroups outside it: use the mount's root then.
  if (rel.includes('..')) rel = '/';
  return path.join(mount.mountPoint, rel);
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(file: string): number | undefined {
  const text = readText(file)?.trim();
  if (text === undefined || text === '' || text === 'max') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function parseKeyValues(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, val] = line.trim().split(/\s+/);
    if (key && val !== undefined && Number.isFinite(Number(val))) out.set(key, Number(val));
  }
  return out;
}

export interface DetectOptions {
  /** Contents of /proc/self/mountinfo (tests give a layout under a temporary directory). */
  mountinfo?: string;
  /** Contents of /proc/self/cgroup. */
  selfCgroup?: string;
  /** The provider's directory under its own cgroup; default virtual-kubelet-sandbox. */
  name?: string;
  /** Skip v2 or v1 (tests; config `cgroups`). */
  versions?: CgroupVersion[];
}

export interface Detection {
  cgroups?: Cgroups;
  /** For the node condition: CgroupV1, CgroupV2, or why there are none. */
  reason: string;
  message: string;
}

/** Looks at what the machine offers; creates the provider's root cgroup(s) when usable. */
export function detectCgroups(options: DetectOptions = {}): Detection {
  const mountinfo = options.mountinfo ?? readText('/proc/self/mountinfo') ?? '';
  const self = parseProcCgroup(options.selfCgroup ?? readText('/proc/self/cgroup') ?? '');
  const mounts = parseMountinfo(mountinfo);
  const name = options.name ?? ROOT_NAME;
  const versions = options.versions ?? [2, 1];
  const problems: string[] = [];

  if (versions.includes(2)) {
    const unified = mounts.find((m) => m.fstype === 'cgroup2');
    if (unified && self.has('')) {
      const parent = dirFor(unified, self.get('')!);
      const v2 = CgroupsV2.open(parent, name);
      if (typeof v2 !== 'string') return { cgroups: v2, reason: 'CgroupV2', message: v2.describe() };
      problems.push(v2);
    } else {
      problems.push('cgroup v2: no unified hierarchy');
    }
  }
  if (versions.includes(1)) {
    const v1 = CgroupsV1.open(mounts, self, name);
    if (typeof v1 !== 'string') return { cgroups: v1, reason: 'CgroupV1', message: v1.describe() };
    problems.push(v1);
  }
  return { reason: 'NoCgroups', message: `CPU and memory limits are not enforced: ${problems.join('; ')}; usage is read from /proc` };
}

function tryMkdir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true });
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function write(dir: string, file: string, data: string | number): void {
  writeFileSync(path.join(dir, file), String(data));
}

function tryWrite(dir: string, file: string, data: string | number): boolean {
  try {
    write(dir, file, data);
    return true;
  } catch {
    return false;
  }
}

// --- The two implementations.

export interface Cgroups {
  readonly version: CgroupVersion;
  /** The provider's root cgroup. */
  readonly root: CgroupPaths;
  /** What is enforced, for the node condition. */
  describe(): string;
  /** Creates (or finds) the pod's cgroup; `pidsMax` limits the pod's processes, `limits` (pod-level resources) all of them together. */
  createPod(uid: string, pidsMax?: number, limits?: ContainerLimits): CgroupPaths;
  /** Creates a fresh cgroup for a container run (an old one of the same name is removed first). */
  createContainer(pod: CgroupPaths, name: string, limits: ContainerLimits): Promise<CgroupPaths>;
}

function child(parent: CgroupPaths, name: string): CgroupPaths {
  const j = (dir: string | undefined) => (dir === undefined ? undefined : path.join(dir, name));
  return {
    version: parent.version,
    memory: j(parent.memory)!,
    cpu: j(parent.cpu)!,
    ...(parent.cpuacct && { cpuacct: j(parent.cpuacct)! }),
    ...(parent.pids && { pids: j(parent.pids)! }),
  };
}

/** The distinct directories of a cgroup (one per hierarchy). */
export function cgroupDirs(p: CgroupPaths): string[] {
  return [...new Set([p.memory, p.cpu, p.cpuacct, p.pids].filter((d): d is string => d !== undefined))];
}

/** The cgroup.procs files a process writes its pid to, to join the cgroup. */
export function procsFiles(p: CgroupPaths): string[] {
  return cgroupDirs(p).map((d) => path.join(d, 'cgroup.procs'));
}

class CgroupsV1 implements Cgroups {
  readonly version = 1 as const;
  readonly root: CgroupPaths;
  private readonly hasMemsw: boolean;

  private constructor(root: CgroupPaths) {
    this.root = root;
    this.hasMemsw = existsSync(path.join(root.memory, 'memory.memsw.limit_in_bytes'));
  }

  static open(mounts: Mount[], self: Map<string, string>, name: string): CgroupsV1 | string {
    const dirs: Partial<Record<'memory' | 'cpu' | 'cpuacct' | 'pids', string>> = {};
    for (const controller of ['memory', 'cpu', 'cpuacct', 'pids'] as const) {
      const mount = mounts.find((m) => m.fstype === 'cgroup' && m.superOptions.includes(controller));
      if (!mount) continue;
      const key = [...self.keys()].find((k) => k.split(',').includes(controller));
      dirs[controller] = path.join(dirFor(mount, key === undefined ? '/' : self.get(key)!), name);
    }
    if (!dirs.memory || !dirs.cpu) return `cgroup v1: no ${[!dirs.memory && 'memory', !dirs.cpu && 'cpu'].filter(Boolean).join(' or ')} hierarchy`;
    const required: [string, string][] = [
      [dirs.memory, 'memory.limit_in_bytes'],
      [dirs.cpu, 'cpu.cfs_quota_us'],
      [dirs.cpu, 'cpu.shares'],
    ];
    for (const [controller, dir] of Object.entries(dirs)) {
      const err = tryMkdir(dir);
      if (!err) continue;
      if (controller === 'cpuacct' || controller === 'pids') delete dirs[controller];
      else return `cgroup v1: cannot create ${dir} (${err})`;
    }
    for (const [dir, file] of required) if (!existsSync(path.join(dir, file))) return `cgroup v1: ${path.join(dir, file)} missing`;
    if (dirs.cpuacct && !existsSync(path.join(dirs.cpuacct, 'cpuacct.usage'))) delete dirs.cpuacct;
    if (dirs.pids && !existsSync(path.join(dirs.pids, 'pids.max'))) delete dirs.pids;
    return new CgroupsV1({
      version: 1,
      memory: dirs.memory,
      cpu: dirs.cpu,
      ...(dirs.cpuacct && { cpuacct: dirs.cpuacct }),
      ...(dirs.pids && { pids: dirs.pids }),
    });
  }

  describe(): string {
    const extra = [this.root.cpuacct && 'CPU usage from cpuacct', this.root.pids && 'podPidsLimit'].filter(Boolean);
    return `cgroup v1: memory limits (memory.limit_in_bytes${this.hasMemsw ? ', no swap beyond it' : ''}), CPU limits (CFS quota) and requests (cpu.shares) are enforced${extra.length ? `; ${extra.join(', ')}` : ''}; cgroups under ${this.root.memory}`;
  }

  createPod(uid: string, pidsMax?: number, limits?: ContainerLimits): CgroupPaths {
    const p = child(this.root, uid);
    for (const dir of cgroupDirs(p)) mkdirSync(dir, { recursive: true });
    if (p.pids && pidsMax !== undefined) tryWrite(p.pids, 'pids.max', pidsMax);
    if (limits) this.limit(p, limits);
    return p;
  }

  async createContainer(pod: CgroupPaths, name: string, limits: ContainerLimits): Promise<CgroupPaths> {
    const p = child(pod, name);
    await removeCgroup(p);
    for (const dir of cgroupDirs(p)) mkdirSync(dir, { recursive: true });
    this.limit(p, limits);
    return p;
  }

  private limit(p: CgroupPaths, limits: ContainerLimits): void {
    if (limits.memoryBytes !== undefined) {
      write(p.memory, 'memory.limit_in_bytes', limits.memoryBytes);
      // No swapping past the limit (the kubelet's default without swap support).
      if (this.hasMemsw) tryWrite(p.memory, 'memory.memsw.limit_in_bytes', limits.memoryBytes);
    }
    write(p.cpu, 'cpu.shares', limits.cpuShares);
    if (limits.cpuQuotaUs !== undefined) {
      write(p.cpu, 'cpu.cfs_period_us', limits.cpuPeriodUs);
      write(p.cpu, 'cpu.cfs_quota_us', limits.cpuQuotaUs);
    }
  }
}

class CgroupsV2 implements Cgroups {
  readonly version = 2 as const;
  readonly root: CgroupPaths;
  private readonly controllers: string[];

  private constructor(root: CgroupPaths, controllers: string[]) {
    this.root = root;
    this.controllers = controllers;
  }

  static open(parent: string, name: string): CgroupsV2 | string {
    const available = (readText(path.join(parent, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
    const missing = ['memory', 'cpu'].filter((c) => !available.includes(c));
    if (missing.length > 0) return `cgroup v2: ${missing.join(' and ')} not available in ${parent}`;
    const wanted = ['memory', 'cpu', ...(available.includes('pids') ? ['pids'] : [])];
    // The parent must hand them down (it may hold processes itself only when it is the root).
    const enabled = () => (readText(path.join(parent, 'cgroup.subtree_control')) ?? '').trim().split(/\s+/);
    const toEnable = wanted.filter((c) => !enabled().includes(c));
    if (toEnable.length > 0 && !tryWrite(parent, 'cgroup.subtree_control', toEnable.map((c) => `+${c}`).join(' '))) {
      return `cgroup v2: cannot enable ${toEnable.join(', ')} in ${path.join(parent, 'cgroup.subtree_control')} (not delegated, or the cgroup holds processes)`;
    }
    const dir = path.join(parent, name);
    const err = tryMkdir(dir);
    if (err) return `cgroup v2: cannot create ${dir} (${err})`;
    if (!tryWrite(dir, 'cgroup.subtree_control', wanted.map((c) => `+${c}`).join(' '))) return `cgroup v2: cannot enable ${wanted.join(', ')} in ${dir}`;
    return new CgroupsV2({ version: 2, memory: dir, cpu: dir, cpuacct: dir, ...(wanted.includes('pids') && { pids: dir }) }, wanted);
  }

  describe(): string {
    return `cgroup v2: memory limits (memory.max), CPU limits (cpu.max) and requests (cpu.weight) are enforced${this.controllers.includes('pids') ? '; podPidsLimit (pids.max)' : ''}; cgroups under ${this.root.memory}`;
  }

  createPod(uid: string, pidsMax?: number, limits?: ContainerLimits): CgroupPaths {
    const p = child(this.root, uid);
    mkdirSync(p.memory, { recursive: true });
    // The root may have been released (and made again just now) by another provider of this cgroup.
    const controllers = this.controllers.map((c) => `+${c}`).join(' ');
    tryWrite(this.root.memory, 'cgroup.subtree_control', controllers);
    tryWrite(p.memory, 'cgroup.subtree_control', controllers);
    if (p.pids && pidsMax !== undefined) tryWrite(p.pids, 'pids.max', pidsMax);
    if (limits) this.limit(p, limits);
    return p;
  }

  async createContainer(pod: CgroupPaths, name: string, limits: ContainerLimits): Promise<CgroupPaths> {
    const p = child(pod, name);
    await removeCgroup(p);
    mkdirSync(p.memory, { recursive: true });
    this.limit(p, limits);
    return p;
  }

  private limit(p: CgroupPaths, limits: ContainerLimits): void {
    if (limits.memoryBytes !== undefined) {
      write(p.memory, 'memory.max', limits.memoryBytes);
      tryWrite(p.memory, 'memory.swap.max', 0);
    }
    write(p.cpu, 'cpu.weight', sharesToWeight(limits.cpuShares));
    if (limits.cpuQuotaUs !== undefined) write(p.cpu, 'cpu.max', `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}`);
  }
}

// --- Reading and removing, from the recorded paths alone.

/** CPU time and memory of a cgroup (and everything under it); undefined when it is gone. */
export function readUsage(p: CgroupPaths): CgroupUsage | undefined {
  if (!existsSync(p.memory)) return undefined;
  const out: CgroupUsage = {};
  if (p.version === 1) {
    const usage = readNumber(path.join(p.memory, 'memory.usage_in_bytes'));
    const stat = parseKeyValues(readText(path.join(p.memory, 'memory.stat')));
    if (usage !== undefined) {
      out.memoryUsageBytes = usage;
      out.memoryWorkingSetBytes = Math.max(0, usage - (stat.get('total_inactive_file') ?? stat.get('inactive_file') ?? 0));
    }
    const cpu = p.cpuacct ? readNumber(path.join(p.cpuacct, 'cpuacct.usage')) : undefined;
    if (cpu !== undefined) out.cpuNs = cpu;
  } else {
    const usage = readNumber(path.join(p.memory, 'memory.current'));
    const stat = parseKeyValues(readText(path.join(p.memory, 'memory.stat')));
    if (usage !== undefined) {
      out.memoryUsageBytes = usage;
      out.memoryWorkingSetBytes = Math.max(0, usage - (stat.get('inactive_file') ?? 0));
    }
    const usec = parseKeyValues(readText(path.join(p.cpu, 'cpu.stat'))).get('usage_usec');
    if (usec !== undefined) out.cpuNs = usec * 1000;
  }
  return out;
}

/** How many processes the kernel's OOM killer killed in this cgroup (over its whole life). */
export function oomKills(p: CgroupPaths): number {
  const file = p.version === 1 ? path.join(p.memory, 'memory.oom_control') : path.join(p.memory, 'memory.events');
  return parseKeyValues(readText(file)).get('oom_kill') ?? 0;
}

/** The processes in a cgroup (not its children). */
export function cgroupPids(dir: string): number[] {
  return (readText(path.join(dir, 'cgroup.procs')) ?? '')
    .split('\n')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Removes one cgroup directory and those under it, killing what still runs there; false when some stayed. */
async function removeDir(dir: string, timeoutMs: number): Promise<boolean> {
  let subdirs: string[];
  try {
    subdirs = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
  let ok = true;
  for (const sub of subdirs) ok = (await removeDir(sub, timeoutMs)) && ok;
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    // cgroup v2 kills the whole cgroup at once; v1 has each process killed.
    const kill = path.join(dir, 'cgroup.kill');
    if (!(existsSync(kill) && tryWrite(dir, 'cgroup.kill', 1))) {
      for (const pid of cgroupPids(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    try {
      rmdirSync(dir);
      return ok;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return ok;
      // A plain directory (tests' layout) holds the files we wrote: remove those.
      if (code === 'ENOTEMPTY' && !existsSync(path.join(dir, 'cgroup.procs'))) return false;
      if (Date.now() > deadline) return false;
    }
    await sleep(Math.min(10 * (i + 1), 100));
  }
}

/** Removes a cgroup (every hierarchy's directory, and the cgroups under it); true when all are gone. */
export async function removeCgroup(p: CgroupPaths, timeoutMs = 2000): Promise<boolean> {
  let ok = true;
  for (const dir of cgroupDirs(p)) ok = (await removeDir(dir, timeoutMs)) && ok;
  return ok;
}

/** Removes the provider's root cgroup in each hierarchy where it is empty (rmdir refuses one with child cgroups). */
export function releaseRoot(root: CgroupPaths): void {
  for (const dir of cgroupDirs(root)) {
    try {
      rmdirSync(dir);
    } catch {
      // pods' cgroups are still in it, or it is gone
    }
  }
}

/** SIGKILLs the processes left in a cgroup (a container's background processes once it ended). */
export function killCgroup(p: CgroupPaths): void {
  for (const dir of cgroupDirs(p)) {
    for (const pid of cgroupPids(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** A shell snippet that moves the shell into the cgroup (before it execs anything): `echo $$ > …` for each file. */
export function joinScript(procs: string[], quote: (s: string) => string): string {
  return procs.map((f) => `echo $$ > ${quote(f)}`).join(' && ');
}
