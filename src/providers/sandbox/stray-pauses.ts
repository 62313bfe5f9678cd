// Pause processes a provider started but never recorded: a kill -9 between starting a pod's pause
// process and saving it in the pod's record leaves one running, with nothing that would ever stop
// it (the restarted provider makes the sandbox again). They carry POD_DIR_ENV=<pod dir> in their
// environment, as their unshare parents do, so they are found at adoption and killed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { POD_DIR_ENV, type PauseProcess } from './pause.ts';
import { allPids, signal } from './procfs.ts';

/** The marked processes (pause and unshare) of every pod under `podsDir`, by pod directory. */
export function markedPodProcesses(podsDir: string): Map<string, number[]> {
  const prefix = `${POD_DIR_ENV}=${path.resolve(podsDir)}/`;
  const out = new Map<string, number[]>();
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone
    }
    const marker = environ.split('\0').find((entry) => entry.startsWith(prefix));
    if (!marker) continue;
    const dir = marker.slice(POD_DIR_ENV.length + 1);
    out.set(dir, [...(out.get(dir) ?? []), pid]);
  }
  return out;
}

/** SIGKILLs the marked processes of `dir` other than its recorded pause process (and that one's unshare). */
export function killStrayPauses(marked: ReadonlyMap<string, number[]>, dir: string, recorded: PauseProcess | undefined): number[] {
  const keep = new Set(recorded ? [recorded.pid, recorded.unsharePid] : []);
  const stray = (marked.get(path.resolve(dir)) ?? []).filter((pid) => !keep.has(pid));
  for (const pid of stray) signal(pid, 'SIGKILL');
  return stray;
}
