// Turns a provider's pod status into the status the API should hold, and computes the
// smallest patch that gets it there. Pure functions: the rules are unit-tested.
import type { ContainerStatus, Pod, PodCondition, PodStatus } from '../kube/types.ts';
import { rfc3339 } from '../version.ts';

/** Conditions the kubelet owns; every other condition type (PodScheduled, DisruptionTarget, readiness gates) is kept as the API has it. */
const KUBELET_CONDITIONS = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']);

export function isTerminalPhase(phase: string | undefined): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}

function allReady(statuses: ContainerStatus[] | undefined, expected: number): boolean {
  return (statuses?.length ?? 0) >= expected && (statuses ?? []).every((s) => s.ready === true);
}

/** Init containers not done yet; sidecars (restartPolicy Always) count as done once started. */
function incompleteInits(pod: Pod, status: PodStatus): string[] {
  const statuses = status.initContainerStatuses ?? [];
  return (pod.spec?.initContainers ?? [])
    .filter((c) => {
      const s = statuses.find((x) => x.name === c.name);
      return !(s?.state?.terminated?.exitCode === 0 || (c.restartPolicy === 'Always' && s?.started === true));
    })
    .map((c) => c.name);
}

function initDone(pod: Pod, status: PodStatus): boolean {
  return incompleteInits(pod, status).length === 0;
}

/**
 * The status to write: the provider's, completed with what the kubelet always sets
 * (hostIP, startTime, the kubelet-owned conditions) and merged with conditions others own.
 */
export function completeStatus(apiPod: Pod, provider: PodStatus, hostIP: string, now: Date): PodStatus {
  const current = apiPod.status ?? {};
  const time = rfc3339(now);
  const status: PodStatus = { ...provider };
  status.hostIP = provider.hostIP ?? hostIP;
  status.hostIPs = provider.hostIPs ?? [{ ip: status.hostIP }];
  if (status.podIP && !status.podIPs) status.podIPs = [{ ip: status.podIP }];
  status.startTime = current.startTime ?? provider.startTime ?? time;
  status.qosClass = current.qosClass ?? provider.qosClass;
  // The spec generation this status reflects, as the kubelet reports it (pod and its conditions).
  const generation = apiPod.metadata?.generation;
  if (generation !== undefined) status.observedGeneration = generation;

  const phase = status.phase ?? 'Pending';
  const containersReady = phase === 'Running' && allReady(status.containerStatuses, apiPod.spec?.containers.length ?? 0);
  const derived: Record<string, boolean> = {
    PodReadyToStartContainers: phase !== 'Pending' || (status.containerStatuses ?? []).some((s) => s.state?.running || s.state?.terminated),
    Initialized: phase !== 'Pending' || initDone(apiPod, status),
    ContainersReady: containersReady,
    Ready: containersReady && readinessGatesPass(apiPod),
  };
  const conditions: PodCondition[] = [];
  for (const type of ['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']) {
    const fromProvider = provider.conditions?.find((c) => c.type === type);
    const value = fromProvider ? fromProvider.status === 'True' : derived[type]!;
    const before = current.conditions?.find((c) => c.type === type);
    const condition: PodCondition = {
      type,
      status: value ? 'True' : 'False',
      lastTransitionTime: before?.status === (value ? 'True' : 'False') ? (before.lastTransitionTime ?? time) : time,
      ...(generation !== undefined && { observedGeneration: generation }),
    };
    if (!value && type === 'Initialized') {
      // As the kubelet: which init containers have not completed (the e2e suite checks reason and message).
      const incomplete = incompleteInits(apiPod, status);
      condition.reason = fromProvider?.reason ?? 'ContainersNotInitialized';
      condition.message = fromProvider?.message ?? `containers with incomplete status: [${incomplete.join(' ')}]`;
    }
    if (!value && (type === 'ContainersReady' || type === 'Ready')) {
      const notReady = (status.containerStatuses ?? []).filter((s) => !s.ready).map((s) => s.name);
      if (notReady.length > 0) {
        condition.reason = 'ContainersNotReady';
        condition.message = `containers with unready status: [${notReady.join(' ')}]`;
      } else if (fromProvider?.reason) {
        condition.reason = fromProvider.reason;
        condition.message = fromProvider.message;
      }
    }
    conditions.push(condition);
  }
  for (const other of current.conditions ?? []) {
    if (!KUBELET_CONDITIONS.has(other.type)) conditions.push(other);
  }
  for (const other of provider.conditions ?? []) {
    if (!KUBELET_CONDITIONS.has(other.type) && !conditions.some((c) => c.type === other.type)) conditions.push(other);
  }
  if (!conditions.some((c) => c.type === 'PodScheduled')) conditions.push({ type: 'PodScheduled', status: 'True', lastTransitionTime: time });
  status.conditions = conditions;
  return status;
}

function readinessGatesPass(pod: Pod): boolean {
  const gates = pod.spec?.readinessGates ?? [];
  return gates.every((gate) => pod.status?.conditions?.some((c) => c.type === gate.conditionType && c.status === 'True'));
}

/** Condition equality ignoring probe and transition times, which move without a real change. */
function comparable(key: string, value: unknown): unknown {
  if (key === 'conditions' && Array.isArray(value)) {
    return (value as PodCondition[])
      .map(({ type, status, reason, message, observedGeneration }) => ({ type, status, reason: reason ?? '', message: message ?? '', observedGeneration }))
      .sort((a, b) => a.type.localeCompare(b.type));
  }
  return value;
}

/**
 * The value as the API server would hand it back, for comparison: object keys sorted (it
 * writes fields in Go struct order, not ours) and zero values dropped ('' 0 false null {}),
 * which Go's omitempty drops or a reader cannot tell from absent. Without this a status that
 * is already written looks changed on every resync.
 */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value === '' || value === 0 || value === false ? undefined : value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = canonical((value as Record<string, unknown>)[key]);
    if (v !== undefined && v !== null) out[key] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The status fields that differ, or undefined when the API already holds this status. */
export function statusPatch(current: PodStatus | undefined, desired: PodStatus): Partial<PodStatus> | undefined {
  const patch: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(desired)) {
    if (value === undefined) continue;
    const before = (current as Record<string, unknown> | undefined)?.[key];
    if (JSON.stringify(canonical(comparable(key, value))) !== JSON.stringify(canonical(comparable(key, before)))) patch[key] = value;
  }
  return Object.keys(patch).length > 0 ? (patch as Partial<PodStatus>) : undefined;
}

/** A Pending status that tells why the pod cannot start yet (e.g. CreateContainerConfigError). */
export function waitingStatus(pod: Pod, reason: string, message: string): PodStatus {
  const waiting = (name: string, image: string): ContainerStatus => ({
    name,
    image,
    imageID: '',
    ready: false,
    restartCount: 0,
    started: false,
    state: { waiting: { reason, message } },
  });
  return {
    phase: 'Pending',
    containerStatuses: (pod.spec?.containers ?? []).map((c) => waiting(c.name, c.image ?? '')),
    initContainerStatuses: (pod.spec?.initContainers ?? []).map((c) => waiting(c.name, c.image ?? '')),
  };
}

/** A Failed status for a pod this node can never run (unsupported spec), as the kubelet does for rejected pods. */
export function rejectedStatus(reason: string, message: string): PodStatus {
  return { phase: 'Failed', reason, message };
}
