// What the machine holds of a sandbox data directory's pods, read from the machine itself and not
// from a provider process (which may be dead): every pod with a record, a live process or a
// cgroup (findLeftovers), and whether it really runs (its pause process and a container process
// alive). A chaos run compares this with the API; a pod deleted there must vanish from here.
import path from 'node:path';
import { findLeftovers } from './leftovers.ts';
import { pauseAlive } from './pause.ts';
import type { PodPhase } from './pod-status.ts';
import { isAlive } from './procfs.ts';
import { loadStates } from './state.ts';

export interface SandboxBackendPod {
  uid: string;
  /** From the pod's record; empty when only its processes or cgroup are left. */
  namespace: string;
  name: string;
  /** Running: the pause process and at least one app container's process are alive. */
  phase: PodPhase;
}

export function sandboxBackendPods(dataDir: string): SandboxBackendPod[] {
  const records = new Map(loadStates(dataDir).flatMap((e) => (e.state ? [[path.basename(e.dir), e.state] as const] : [])));
  return findLeftovers(dataDir).pods.map((uid) => {
    const state = records.get(uid);
    if (!state) return { uid, namespace: '', name: '', phase: 'Pending' };
    let phase: PodPhase = 'Pending';
    if (state.terminal) phase = state.terminal.phase;
    else if (state.sandbox && pauseAlive(state.sandbox.pause)) {
      const running = state.containers.some(
        (c) => !c.init && c.running && isAlive(c.running.childPid ?? c.running.shimPid, c.running.childStart ?? c.running.shimStart),
      );
      if (running) phase = 'Running';
    }
    return { uid, namespace: state.namespace, name: state.name, phase };
  });
}
