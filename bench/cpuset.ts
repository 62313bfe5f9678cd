// cgroup v1 cpusets: a set of processes confined to one CPU, to model "this cluster runs on a
// machine of its own" on a shared machine (the cluster-provider benchmark). Needs root and a
// writable /sys/fs/cgroup/cpuset; every set made here is removed by release().
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = '/sys/fs/cgroup/cpuset';

/** Why cpusets cannot be used here, or undefined when they can. */
export function cpusetUnavailable(): string | undefined {
  try {
    const probe = path.join(ROOT, `vk-bench-probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
    return undefined;
  } catch (err) {
    return `cgroup v1 cpuset not writable at ${ROOT}: ${(err as Error).message}`;
  }
}

/** `pid` and every process descended from it (a control plane supervisor and its etcd, kube-apiserver, ...). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which may hold spaces: parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

export class Cpuset {
  readonly cpus: string;
  private readonly dir: string;

  private constructor(dir: string, cpus: string) {
    this.dir = dir;
    this.cpus = cpus;
  }

  static create(name: string, cpus: string): Cpuset {
    const dir = path.join(ROOT, `vk-bench-${name}-${process.pid}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'cpuset.cpus'), cpus);
    writeFileSync(path.join(dir, 'cpuset.mems'), readFileSync(path.join(ROOT, 'cpuset.mems'), 'utf8').trim());
    return new Cpuset(dir, cpus);
  }

  /** Moves the processes (all their threads; children they start later stay in the set). */
  add(pids: number[]): void {
    for (const pid of pids) {
      try {
        writeFileSync(path.join(this.dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }

  /** Moves whatever is still in the set back to the root set and removes the set. */
  release(): void {
    const procs = () => readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
    for (const pid of procs()) {
      try {
        writeFileSync(path.join(ROOT, 'cgroup.procs'), pid);
      } catch {
        // exited
      }
    }
    rmdirSync(this.dir);
  }
}
