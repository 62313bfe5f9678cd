// Memory of the sandbox provider's pods, per pod, from /proc: every process that belongs to a pod
// of a data directory (the pause process and its unshare parent, marked by their environment;
// the container's monitor and everything under it, whose command lines name a path in the pod's
// directory), with its anonymous memory and proportional set size from /proc/<pid>/smaps_rollup.
// Anonymous memory is what a process costs on its own; PSS also charges it its share of the file
// pages (binaries, libraries) it maps, so shared code is counted once across all pods.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { POD_DIR_ENV } from '../src/providers/sandbox/pause.ts';
import { allStats, descendantsOf } from '../src/providers/sandbox/procfs.ts';

export interface ProcessMemory {
  pid: number;
  comm: string;
  anonKiB: number;
  pssKiB: number;
}

export interface PodMemory {
  uid: string;
  processes: ProcessMemory[];
  anonKiB: number;
  pssKiB: number;
}

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined; // gone meanwhile
  }
}

/** Anonymous and PSS figures of one process (kB as the kernel writes them), undefined when it is gone. */
export function processMemory(pid: number): { anonKiB: number; pssKiB: number } | undefined {
  const text = read(`/proc/${pid}/smaps_rollup`);
  if (!text) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { anonKiB: field('Anonymous'), pssKiB: field('Pss') };
}

/** The pod uid a path under `<dataDir>/pods` belongs to. */
function podOf(pods: string, value: string): string | undefined {
  if (!value.startsWith(`${pods}/`)) return undefined;
  return value.slice(pods.length + 1).split('/')[0] || undefined;
}

/** Every pod of `dataDir` with its processes' memory. */
export function podMemory(dataDir: string): PodMemory[] {
  const pods = path.join(path.resolve(dataDir), 'pods');
  const stats = allStats();
  const owner = new Map<number, string>();
  for (const s of stats) {
    if (owner.has(s.pid)) continue;
    const marker = read(`/proc/${s.pid}/environ`)
      ?.split('\0')
      .find((e) => e.startsWith(`${POD_DIR_ENV}=`));
    const uid =
      (marker && podOf(pods, marker.slice(POD_DIR_ENV.length + 1))) ||
      (read(`/proc/${s.pid}/cmdline`) ?? '')
        .split('\0')
        .map((arg) => podOf(pods, arg))
        .find((u) => u !== undefined);
    if (!uid) continue;
    for (const d of descendantsOf(s.pid, stats)) owner.set(d.pid, uid);
  }
  const byPod = new Map<string, PodMemory>();
  const comms = new Map(stats.map((s) => [s.pid, s.comm]));
  for (const [pid, uid] of owner) {
    const mem = processMemory(pid);
    if (!mem) continue;
    let pod = byPod.get(uid);
    if (!pod) byPod.set(uid, (pod = { uid, processes: [], anonKiB: 0, pssKiB: 0 }));
    pod.processes.push({ pid, comm: comms.get(pid) ?? '?', ...mem });
    pod.anonKiB += mem.anonKiB;
    pod.pssKiB += mem.pssKiB;
  }
  return [...byPod.values()];
}

/** Per-process-name averages over pods (KiB per pod), e.g. { catatonit: {...}, node: {...} }. */
export function memoryByCommand(pods: PodMemory[]): Record<string, { processesPerPod: number; anonKiB: number; pssKiB: number }> {
  const sums = new Map<string, { count: number; anonKiB: number; pssKiB: number }>();
  for (const pod of pods) {
    for (const p of pod.processes) {
      const s = sums.get(p.comm) ?? { count: 0, anonKiB: 0, pssKiB: 0 };
      s.count++;
      s.anonKiB += p.anonKiB;
      s.pssKiB += p.pssKiB;
      sums.set(p.comm, s);
    }
  }
  const n = Math.max(pods.length, 1);
  const round = (v: number) => Math.round(v * 10) / 10;
  return Object.fromEntries(
    [...sums].map(([comm, s]) => [comm, { processesPerPod: round(s.count / n), anonKiB: round(s.anonKiB / n), pssKiB: round(s.pssKiB / n) }]),
  );
}
