// The status the kubelet would report for a sandbox pod, rendered from its record alone (no
// processes, no clock): phase, conditions, init and app container statuses.
import type { Container, ContainerStatus, PodCondition, PodStatus } from '../../kube/types.ts';
import { rfc3339 } from '../../version.ts';
import type { ContainerRecord, PodRecordState, Terminated } from './state.ts';

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

/** The container's spec (app or init) in the pod the record runs. */
export function containerSpec(state: PodRecordState, name: string): Container | undefined {
  const spec = state.pod.spec;
  return spec?.containers.find((c) => c.name === name) ?? spec?.initContainers?.find((c) => c.name === name);
}

/** The pod's address: its own, or the node's with hostNetwork; none before its sandbox exists. */
export function podIP(state: PodRecordState, hostIP: string): string | undefined {
  if (state.pod.spec?.hostNetwork) return state.sandbox ? hostIP : undefined;
  return state.sandbox?.network?.podIP;
}

export function podPhase(state: PodRecordState): PodPhase {
  if (state.terminal) return state.terminal.phase;
  if (!state.initDone) return 'Pending';
  const apps = state.containers.filter((c) => !c.init);
  if (apps.some((c) => c.running || c.terminated)) return 'Running';
  return 'Pending';
}

/** RFC 3339 with whole seconds, as the kubelet reports container times. */
export function toSeconds(time: string): string {
  return time.replace(/\.\d+Z$/, 'Z');
}

function condition(type: string, ok: boolean, reason?: string, message?: string): PodCondition {
  return { type, status: ok ? 'True' : 'False', ...(reason && { reason }), ...(message && { message }) };
}

export function renderPodStatus(state: PodRecordState, hostIP: string): PodStatus {
  const phase = podPhase(state);
  const ip = podIP(state, hostIP);
  const inits = state.containers.filter((c) => c.init);
  const apps = state.containers.filter((c) => !c.init);
  const status: PodStatus = {
    phase,
    hostIP,
    hostIPs: [{ ip: hostIP }],
    ...(ip && { podIP: ip, podIPs: [{ ip }] }),
    startTime: rfc3339(new Date(state.createdAt)),
    ...(inits.length > 0 && { initContainerStatuses: inits.map((c) => renderContainerStatus(state, c)) }),
    containerStatuses: apps.map((c) => renderContainerStatus(state, c)),
  };
  const incomplete = inits.filter((c) => !c.sidecar && c.terminated?.exitCode !== 0).map((c) => c.name);
  const ready = phase === 'Running' && apps.every((c) => c.ready && c.running);
  const notReady = `containers with unready status: [${apps
    .filter((c) => !(c.ready && c.running))
    .map((c) => c.name)
    .join(' ')}]`;
  const readyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
  status.conditions = [
    condition('PodReadyToStartContainers', state.sandbox !== undefined && !state.terminal),
    state.initDone
      ? condition('Initialized', true)
      : condition('Initialized', false, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`),
    ready ? condition('ContainersReady', true) : condition('ContainersReady', false, readyReason, notReady),
    ready ? condition('Ready', true) : condition('Ready', false, readyReason, notReady),
  ];
  if (state.terminal?.reason) {
    status.reason = state.terminal.reason;
    if (state.terminal.message) status.message = state.terminal.message;
  }
  return status;
}

function terminatedState(t: Terminated): NonNullable<ContainerStatus['state']> {
  return {
    terminated: {
      exitCode: t.exitCode,
      ...(t.signal !== undefined && t.signal > 0 && { signal: t.signal }),
      reason: t.reason,
      ...(t.message !== undefined && { message: t.message }),
      ...(t.startedAt && { startedAt: t.startedAt }),
      finishedAt: t.finishedAt,
      ...(t.containerID && { containerID: t.containerID }),
    },
  };
}

export function renderContainerStatus(state: PodRecordState, c: ContainerRecord): ContainerStatus {
  const spec = containerSpec(state, c.name);
  const base = {
    name: c.name,
    image: spec?.image ?? '',
    imageID: c.imageID ?? '',
    restartCount: c.restartCount,
    // An init container that completed is ready (the kubelet's rule); others while running and ready.
    ready: (c.init && !c.sidecar && c.terminated?.exitCode === 0 && !c.running && !c.waiting) || (c.ready && c.running !== undefined),
    started: c.started && c.running !== undefined,
  };
  const lastState = c.last ? terminatedState(c.last) : {};
  if (c.running) {
    return { ...base, containerID: c.running.containerID, state: { running: { startedAt: toSeconds(c.running.startedAt) } }, lastState };
  }
  if (c.waiting) {
    // Waiting to (re)start: the last run, if any, is lastState.
    const last = c.terminated ? terminatedState(c.terminated) : lastState;
    const waiting = { reason: c.waiting.reason, ...(c.waiting.message && { message: c.waiting.message }) };
    return { ...base, ...(c.terminated?.containerID && { containerID: c.terminated.containerID }), state: { waiting }, lastState: last };
  }
  if (c.terminated) return { ...base, containerID: c.terminated.containerID, state: terminatedState(c.terminated), lastState };
  return { ...base, state: { waiting: { reason: state.initDone ? 'ContainerCreating' : 'PodInitializing' } }, lastState };
}
