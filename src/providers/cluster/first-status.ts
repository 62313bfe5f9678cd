// Holds back the first report of a target pod that has not started yet (Pending, no container
// status): a target that starts the pod within the delay costs the source one status write
// (Running) instead of two (Pending, then Running). Under a burst the source's API server is the
// bottleneck, and with status changes served ahead of creates the Pending writes were 1.4 of
// the burst node's 2.4 status patches per pod. Anything else is reported at once.
import type { Pod } from '../../kube/types.ts';

/** How long a not-yet-started target pod waits before its first report (the kubelet's first status also lags its start). */
export const FIRST_STATUS_DELAY_MS = 1000;

export function notStarted(pod: Pod): boolean {
  const status = pod.status;
  return (
    !pod.metadata?.deletionTimestamp &&
    (status?.phase ?? 'Pending') === 'Pending' &&
    !status?.containerStatuses?.length &&
    !status?.initContainerStatuses?.length
  );
}

export class FirstStatusDelay {
  private readonly report: (key: string) => void;
  private readonly delayMs: number;
  private readonly held = new Map<string, NodeJS.Timeout>();

  constructor(report: (key: string) => void, delayMs = FIRST_STATUS_DELAY_MS) {
    this.report = report;
    this.delayMs = delayMs;
  }

  /** Reports the key now, or (a target pod that has not started) once the delay has passed, unless a later change reports it first. */
  changed(key: string, pod: Pod | undefined): void {
    const timer = this.held.get(key);
    if (pod && notStarted(pod)) {
      if (timer) return;
      const held = setTimeout(() => {
        this.held.delete(key);
        this.report(key);
      }, this.delayMs);
      held.unref();
      this.held.set(key, held);
      return;
    }
    if (timer) {
      clearTimeout(timer);
      this.held.delete(key);
    }
    this.report(key);
  }

  stop(): void {
    for (const timer of this.held.values()) clearTimeout(timer);
    this.held.clear();
  }
}
