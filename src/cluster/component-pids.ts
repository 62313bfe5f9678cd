// The processes of a running `vk-cluster up`: each component (kube-apiserver, kube-scheduler,
// kube-controller-manager) is a child of the supervisor, this same binary called with the
// component's name as its first argument; etcd runs inside the supervisor.
import { readdirSync, readFileSync } from 'node:fs';

export const CHILD_COMPONENTS = ['kube-apiserver', 'kube-scheduler', 'kube-controller-manager'] as const;
export type ChildComponent = (typeof CHILD_COMPONENTS)[number];

/** The pid of each component the supervisor runs now (a component being restarted is missing). */
export function componentPids(supervisorPid: number): Partial<Record<ChildComponent, number>> {
  const out: Partial<Record<ChildComponent, number>> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the 2nd field after the ")" that ends the command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== supervisorPid || fields[0] === 'Z') continue;
      const name = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[1];
      if ((CHILD_COMPONENTS as readonly string[]).includes(name ?? '')) out[name as ChildComponent] = Number(entry);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** True while the process runs (and is not a zombie). */
export function processRuns(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
