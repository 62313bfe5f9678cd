// What the chaos run checks, as pure functions of what it observed: the API server's pods on
// the node, the backend's pods (the mock's state file), the backend's creation log and the
// deletions the workload asked for. A kubelet's promises, counted:
//   duplicates  a UID the backend created more than once
//   lost        a pod the API says should run that the backend does not have
//   leaked      a pod deleted in the API still in the backend after its grace period + 30 s
//               (+ the time the node could not act meanwhile: vk dead, kube-apiserver down)
//   diverged    a pod in both whose phase differs
export interface ApiPod {
  uid: string;
  key: string;
  phase: string;
  /** Has a deletionTimestamp. */
  deleting: boolean;
}

export interface BackendPod {
  uid: string;
  key: string;
  phase: string;
}

export interface Deletion {
  uid: string;
  key: string;
  atMs: number;
  graceSeconds: number;
}

/** A window in which the node could not act: vk dead, or kube-apiserver down or stalled. */
export interface Outage {
  startMs: number;
  endMs: number;
}

export interface Findings {
  duplicates: string[];
  lost: string[];
  leaked: string[];
  diverged: string[];
}

/** Beyond a deleted pod's grace period, how long the backend may still hold it. */
export const LEAK_SLACK_MS = 30_000;

const TERMINAL = new Set(['Succeeded', 'Failed']);

/** UIDs created more than once, from the creation log's UIDs in order. */
export function duplicateUids(createdUids: Iterable<string>): string[] {
  const seen = new Map<string, number>();
  for (const uid of createdUids) seen.set(uid, (seen.get(uid) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([uid, n]) => `${uid} created ${n} times`);
}

/** Pods that should be running: bound to the node, not being deleted, not finished. */
export function shouldRun(pod: ApiPod): boolean {
  return !pod.deleting && !TERMINAL.has(pod.phase);
}

/**
 * The end-state comparison (after the workload stopped and the node had time to settle):
 * every count must be 0.
 */
export function compare(
  api: readonly ApiPod[],
  backend: readonly BackendPod[],
  createdUids: Iterable<string>,
  deletions: readonly Deletion[],
  nowMs: number,
  outages: readonly Outage[] = [],
): Findings {
  const backendByUid = new Map(backend.map((p) => [p.uid, p]));
  const apiByUid = new Map(api.map((p) => [p.uid, p]));
  const lost: string[] = [];
  const diverged: string[] = [];
  for (const pod of api) {
    const there = backendByUid.get(pod.uid);
    if (!there) {
      if (shouldRun(pod)) lost.push(`${pod.key} (${pod.uid}): ${pod.phase} in the API, not in the backend`);
      continue;
    }
    if (!pod.deleting && there.phase !== pod.phase) diverged.push(`${pod.key} (${pod.uid}): ${pod.phase} in the API, ${there.phase} in the backend`);
  }
  return { duplicates: duplicateUids(createdUids), lost, leaked: leakedPods(backend, apiByUid, deletions, nowMs, outages), diverged };
}

/**
 * Backend pods the API no longer has (or has only as terminating) past their grace period +
 * LEAK_SLACK_MS. A pod gone from the API without a deletion this run asked for (a Deployment
 * scaled down, a garbage collection) gets its grace from when it was first seen gone: the caller
 * records those as deletions too.
 */
export function leakedPods(
  backend: readonly BackendPod[],
  apiByUid: ReadonlyMap<string, ApiPod>,
  deletions: readonly Deletion[],
  nowMs: number,
  outages: readonly Outage[] = [],
): string[] {
  const deletedAt = new Map<string, Deletion>();
  for (const d of deletions) if (!deletedAt.has(d.uid)) deletedAt.set(d.uid, d);
  const leaked: string[] = [];
  for (const pod of backend) {
    const inApi = apiByUid.get(pod.uid);
    if (inApi && !inApi.deleting) continue;
    const d = deletedAt.get(pod.uid);
    if (!d) continue; // not yet known as deleted: the caller's next observation dates it
    const overdueMs = nowMs - (d.atMs + d.graceSeconds * 1000 + LEAK_SLACK_MS + overlapMs(outages, d.atMs, nowMs));
    if (overdueMs > 0)
      leaked.push(`${pod.key} (${pod.uid}): still in the backend ${Math.round(overdueMs / 1000)} s past its grace period + ${LEAK_SLACK_MS / 1000} s`);
  }
  return leaked;
}

/** How long the outages overlap [fromMs, toMs]. */
export function overlapMs(outages: readonly Outage[], fromMs: number, toMs: number): number {
  let total = 0;
  for (const o of outages) total += Math.max(0, Math.min(o.endMs, toMs) - Math.max(o.startMs, fromMs));
  return total;
}

/**
 * How many of the pods that should have been running when a fault struck (`atFault`) are not
 * yet Running in both the API and the backend; pods deleted since then no longer count.
 */
export function unconverged(atFault: ReadonlySet<string>, api: readonly ApiPod[], backend: readonly BackendPod[]): number {
  const backendPhase = new Map(backend.map((p) => [p.uid, p.phase]));
  let n = 0;
  for (const pod of api) {
    if (!atFault.has(pod.uid) || !shouldRun(pod)) continue;
    if (pod.phase !== 'Running' || backendPhase.get(pod.uid) !== 'Running') n++;
  }
  return n;
}

/** The p-th percentile (0–100) of `values`, nearest rank; undefined when empty. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
