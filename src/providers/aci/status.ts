// An ACI container group's instance view → a kubelet-shaped PodStatus. Pure: the provider keeps
// the last group it read and renders the status from it when asked.
import type { ContainerStatus, Pod, PodCondition, PodStatus } from '../../kube/types.ts';
import type { AciEvent, ContainerGroup, ContainerInstanceView, ContainerState } from './arm-types.ts';

export interface StatusContext {
  hostIP: string;
  /** When the provider created the group (the pod's start time). */
  createdAt: string;
  /** The provider's own note while the group is not readable yet (e.g. the create is still in flight). */
  now: string;
}

/** Reasons ACI's waiting detail maps to, so kubectl shows what users know. */
function waitingReason(detail: string | undefined, events: AciEvent[] | undefined): string {
  const last = events?.at(-1)?.name ?? '';
  if (/pull/i.test(detail ?? '') || /Failed.*pull|Inaccessible/i.test(last))
    return /fail|inaccessible|error/i.test(`${detail} ${last}`) ? 'ErrImagePull' : 'ContainerCreating';
  if (/CrashLoopBackOff/i.test(detail ?? '')) return 'CrashLoopBackOff';
  return 'ContainerCreating';
}

function lastWarning(events: AciEvent[] | undefined): string | undefined {
  const warnings = (events ?? []).filter((e) => e.type === 'Warning' || /fail|error/i.test(e.name ?? ''));
  return (warnings.at(-1) ?? events?.at(-1))?.message;
}

function terminated(state: ContainerState) {
  const exitCode = state.exitCode ?? 0;
  return {
    exitCode,
    reason: exitCode === 0 ? 'Completed' : 'Error',
    ...(state.startTime && { startedAt: state.startTime }),
    ...(state.finishTime && { finishedAt: state.finishTime }),
    ...(state.detailStatus && exitCode !== 0 && { message: state.detailStatus }),
  };
}

function containerStatus(name: string, image: string, view: ContainerInstanceView | undefined, groupReady: boolean, failedMessage?: string): ContainerStatus {
  const current = view?.currentState;
  const previous = view?.previousState;
  const lastState = previous?.state === 'Terminated' ? { terminated: terminated(previous) } : {};
  const base = { name, image, imageID: '', restartCount: view?.restartCount ?? 0, lastState };
  switch (current?.state) {
    case 'Running':
      return {
        ...base,
        ready: groupReady,
        started: true,
        state: { running: { ...(current.startTime && { startedAt: current.startTime }) } },
      };
    case 'Terminated':
      return { ...base, ready: false, started: false, state: { terminated: terminated(current) } };
    default: {
      const message = failedMessage ?? lastWarning(view?.events) ?? current?.detailStatus;
      return {
        ...base,
        ready: false,
        started: false,
        state: { waiting: { reason: failedMessage ? 'ProviderFailed' : waitingReason(current?.detailStatus, view?.events), ...(message && { message }) } },
      };
    }
  }
}

type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

function phaseOf(statuses: ContainerStatus[], restartPolicy: string, failed: boolean): Phase {
  if (failed) return 'Failed';
  const ends = statuses.map((s) => s.state?.terminated);
  if (statuses.length > 0 && ends.every((t) => t !== undefined)) {
    const allZero = ends.every((t) => t!.exitCode === 0);
    if (restartPolicy === 'Never') return allZero ? 'Succeeded' : 'Failed';
    if (restartPolicy === 'OnFailure' && allZero) return 'Succeeded';
  }
  return statuses.some((s) => s.state?.running || s.state?.terminated || s.restartCount > 0) ? 'Running' : 'Pending';
}

/** The pod's status from the group as last read (undefined: not read yet). */
export function groupToPodStatus(pod: Pod, group: ContainerGroup | undefined, ctx: StatusContext): PodStatus {
  const spec = pod.spec;
  const props = group?.properties;
  const provisioning = props?.provisioningState;
  const failed = provisioning === 'Failed';
  const failedMessage = failed ? (lastWarning(props?.instanceView?.events) ?? `container group provisioning ${provisioning}`) : undefined;
  const groupReady = provisioning === 'Succeeded' && props?.instanceView?.state === 'Running';
  const byName = new Map((props?.containers ?? []).map((c) => [c.name, c.properties.instanceView]));
  const initByName = new Map((props?.initContainers ?? []).map((c) => [c.name, c.properties.instanceView]));
  const containerStatuses = (spec?.containers ?? [])
    .map((c) => containerStatus(c.name, c.image ?? '', byName.get(c.name), groupReady, failedMessage))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const initContainerStatuses = (spec?.initContainers ?? []).map((c) => {
    const s = containerStatus(c.name, c.image ?? '', initByName.get(c.name), false, failedMessage);
    if (s.state?.waiting && !failed) s.state.waiting.reason = 'PodInitializing';
    return s;
  });
  const initialized = initContainerStatuses.every((s) => s.state?.terminated?.exitCode === 0);
  const initFailed = (spec?.restartPolicy ?? 'Always') === 'Never' && initContainerStatuses.some((s) => (s.state?.terminated?.exitCode ?? 0) !== 0);
  const phase = phaseOf(initialized ? containerStatuses : [], spec?.restartPolicy ?? 'Always', failed || initFailed);
  const ready = phase === 'Running' && containerStatuses.every((s) => s.ready);
  const at = ctx.createdAt;
  const cond = (type: string, ok: boolean, reason?: string, message?: string): PodCondition => ({
    type,
    status: ok ? 'True' : 'False',
    lastTransitionTime: at,
    ...(reason && { reason }),
    ...(message && { message }),
  });
  const unready = `containers with unready status: [${containerStatuses
    .filter((s) => !s.ready)
    .map((s) => s.name)
    .join(' ')}]`;
  const readyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
  const podIP = props?.ipAddress?.ip;
  const status: PodStatus = {
    phase,
    conditions: [
      cond('PodScheduled', true),
      initialized ? cond('Initialized', true) : cond('Initialized', false, 'ContainersNotInitialized', 'init containers have not completed'),
      ready ? cond('ContainersReady', true) : cond('ContainersReady', false, readyReason, phase === 'Succeeded' ? undefined : unready),
      ready ? cond('Ready', true) : cond('Ready', false, readyReason, phase === 'Succeeded' ? undefined : unready),
    ],
    hostIP: ctx.hostIP,
    hostIPs: [{ ip: ctx.hostIP }],
    ...(podIP && { podIP, podIPs: [{ ip: podIP }] }),
    startTime: at,
    containerStatuses,
    ...(initContainerStatuses.length > 0 && { initContainerStatuses }),
  };
  if (failed) {
    status.reason = 'ProviderFailed';
    status.message = `ACI could not provision container group ${group?.name ?? ''}: ${failedMessage}`;
  }
  return status;
}
