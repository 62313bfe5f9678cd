// What a sandbox provider's pods leave on the machine when its data directory is gone (removed,
// or a `vk up` state directory deleted while pods ran): pods outlive the provider by design, so
// without their records nothing would ever stop them. They are found by the sandbox's own
// markers, which name the data directory:
//   - pause processes (and their unshare parents): POD_DIR_ENV=<dataDir>/pods/<uid> in their environment;
//   - container monitors: `…/sandbox-monitor <dataDir>/pods/<uid>/…/monitor-spec` as their command line,
//     with their descendants (bwrap, script, the containers);
//   - cgroups: <any cgroup>/virtual-kubelet-sandbox/<uid> for those pods' uids;
//   - files: <dataDir>/pods, run and spare-rootfs (the image store is kept).
// Killing a pause process makes the kernel kill everything left in its pod's pid namespace.
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_NAME } from './cgroups.ts';
import { POD_DIR_ENV } from './pause.ts';
import { allPids, allStats, descendantsOf, signal } from './procfs.ts';
import { monitorSpecArg } from './shim-launcher.ts';
import { podsDir } from './state.ts';

const CGROUP_MOUNT = '/sys/fs/cgroup';

export interface SandboxLeftovers {
  /** Pod uids whose processes, cgroups or files were found. */
  pods: string[];
  /** Marked processes and the shims' descendants. */
  pids: number[];
  /** The pods' cgroup directories (pod level; container cgroups are inside). */
  cgroups: string[];
  /** Directories under the data directory to remove. */
  files: string[];
}

function readProc(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined; // gone, or not ours to read
  }
}

/** The uid of a pod directory path under `pods` (`<pods>/<uid>[/...]`), if it is one. */
function podUidOf(pods: string, file: string): string | undefined {
  if (!file.startsWith(`${pods}/`)) return undefined;
  return file.slice(pods.length + 1).split('/')[0] || undefined;
}

/** Directories named ROOT_NAME in every cgroup hierarchy (v2 and v1 controllers alike). */
function sandboxCgroupRoots(dir = CGROUP_MOUNT, depth = 0, out: string[] = []): string[] {
  if (depth > 12) return out;
  let entries: string[];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return out;
  }
  for (const name of entries) {
    const child = path.join(dir, name);
    if (name === ROOT_NAME) out.push(child);
    else sandboxCgroupRoots(child, depth + 1, out);
  }
  return out;
}

export function findLeftovers(dataDir: string): SandboxLeftovers {
  const pods = podsDir(path.resolve(dataDir));
  const uids = new Set<string>();
  const pids = new Set<number>();
  const stats = allStats();
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const marker = readProc(pid, 'environ')
      ?.split('\0')
      .find((entry) => entry.startsWith(`${POD_DIR_ENV}=`));
    const markedUid = marker && podUidOf(pods, marker.slice(POD_DIR_ENV.length + 1));
    if (markedUid) {
      uids.add(markedUid);
      pids.add(pid);
      continue;
    }
    const argv = readProc(pid, 'cmdline')?.split('\0') ?? [];
    const spec = monitorSpecArg(argv);
    const shimUid = spec ? podUidOf(pods, spec) : undefined;
    if (shimUid) {
      uids.add(shimUid);
      for (const s of descendantsOf(pid, stats)) pids.add(s.pid);
    }
  }
  if (existsSync(pods)) for (const uid of readdirSync(pods)) uids.add(uid);
  const cgroups: string[] = [];
  for (const root of sandboxCgroupRoots()) for (const uid of uids) if (existsSync(path.join(root, uid))) cgroups.push(path.join(root, uid));
  const files = [pods, path.join(dataDir, 'run'), path.join(dataDir, 'spare-rootfs')].filter((f) => existsSync(f));
  return { pods: [...uids], pids: [...pids], cgroups, files };
}

/** Processes still in a cgroup directory or its children. */
function cgroupProcesses(dir: string): number[] {
  const out: number[] = [];
  const procs = readProcsFile(dir);
  out.push(...procs);
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...cgroupProcesses(path.join(dir, e.name)));
  } catch {
    // gone
  }
  return out;
}

function readProcsFile(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Removes a cgroup directory, its children first (rmdir is how cgroups are removed). */
function removeCgroupTree(dir: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

export interface CleanupReport extends SandboxLeftovers {
  /** Leftovers that could not be removed, with why. */
  failed: string[];
}

/** Kills every leftover process of the data directory's pods, then removes their cgroups and files. */
export async function removeLeftovers(dataDir: string, timeoutMs = 10_000): Promise<CleanupReport> {
  const found = findLeftovers(dataDir);
  const failed: string[] = [];
  const deadline = Date.now() + timeoutMs;
  // SIGKILL again until none is left: a shim may start one more process while it dies.
  let alive = [...found.pids, ...found.cgroups.flatMap(cgroupProcesses)];
  while (alive.length > 0) {
    for (const pid of alive) signal(pid, 'SIGKILL');
    await sleep(50);
    alive = [...found.pids, ...found.cgroups.flatMap(cgroupProcesses)].filter((pid) => {
      const state = /^\d+ \(.*\) (\S)/.exec(readProc(pid, 'stat') ?? '')?.[1];
      return state !== undefined && state !== 'Z' && state !== 'X';
    });
    if (Date.now() > deadline) {
      failed.push(`processes still running after ${timeoutMs} ms: ${alive.join(', ')}`);
      break;
    }
  }
  for (const dir of found.cgroups) {
    let removed = removeCgroupTree(dir);
    while (!removed && Date.now() < deadline) {
      await sleep(100); // The kernel frees a cgroup shortly after its last process exits.
      removed = removeCgroupTree(dir);
    }
    if (!removed) failed.push(`cgroup ${dir} could not be removed`);
  }
  // The provider's root cgroups these pods were in, once empty: rmdir refuses one that another
  // provider's pods still use.
  for (const root of new Set(found.cgroups.map((dir) => path.dirname(dir)))) {
    try {
      rmdirSync(root);
    } catch {
      // still in use, or gone
    }
  }
  for (const file of found.files) {
    try {
      if (statSync(file).isDirectory()) rmSync(file, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      failed.push(`${file}: ${(err as Error).message}`);
    }
  }
  return { ...found, failed };
}
