// The order the kubelet stops a deleted pod's containers in: the app containers (with their
// preStop hooks) first, all at once; then the sidecars (restartable init containers) one by one
// in reverse spec order, with what is left of the grace period. A preStop hook that calls a
// sidecar (the lifecycle-hook conformance specs do) still finds it running.
import type { ContainerRecord } from './state.ts';

export async function stopInKubeletOrder(
  containers: readonly ContainerRecord[],
  graceSeconds: number,
  stop: (c: ContainerRecord, graceSeconds: number) => Promise<void>,
  now: () => number = Date.now,
): Promise<void> {
  const started = now();
  await Promise.all(containers.filter((c) => c.running && !c.sidecar).map((c) => stop(c, graceSeconds)));
  for (const c of containers.filter((x) => x.sidecar).reverse()) {
    if (!c.running) continue;
    const left = Math.max(0, graceSeconds - Math.floor((now() - started) / 1000));
    await stop(c, left);
  }
}
