// An ECS task as a Kubernetes pod status. Pure functions of what DescribeTasks returned (and of
// the earlier runs of a restarting pod). STOPPED is Succeeded only when every essential container
// (the pod's containers; init containers are not essential) exited 0; otherwise Failed, with the
// exit codes and the task's stoppedReason in the message (upstream reported Succeeded whatever
// the exit codes were).
import type { Container as EcsContainer, Task } from '@aws-sdk/client-ecs';
import type { Container, ContainerStatus, Pod, PodCondition, PodStatus } from '../../kube/types.ts';

type ContainerState = NonNullable<ContainerStatus['state']>;
import { rfc3339 } from '../../version.ts';

/** What the provider knows of a pod's runs. */
export interface TaskView {
  pod: Pod;
  /** The task of the current run; undefined while a restart waits out its backoff. */
  task: Task | undefined;
  /** Stopped tasks of earlier runs, oldest first (their count is the restart count). */
  previous: Task[];
  /** When the next run starts (epoch ms), while a restart waits. */
  restartAt?: number;
  createdAt: number;
  nodeIP: string;
}

const stamp = (d: Date | undefined, fallback: number = Date.now()) => rfc3339(d ?? new Date(fallback));

/** The pod IP: the private IPv4 address of the task's ENI attachment. */
export function podIPOf(task: Task | undefined): string | undefined {
  const eni = task?.attachments?.find((a) => a.type === 'ElasticNetworkInterface');
  return eni?.details?.find((d) => d.name === 'privateIPv4Address')?.value;
}

function essentialNames(pod: Pod): string[] {
  return (pod.spec?.containers ?? []).map((c) => c.name);
}

/** A stopped task's result: Succeeded only when every essential container has exit code 0. */
export function taskOutcome(task: Task, pod: Pod): { phase: 'Succeeded' | 'Failed'; message: string } {
  const codes = essentialNames(pod).map((name) => ({ name, code: task.containers?.find((c) => c.name === name)?.exitCode }));
  const succeeded = codes.every((c) => c.code === 0);
  const list = codes.map((c) => `${c.name}=${c.code ?? 'none'}`).join(', ');
  const why = `${task.stopCode ?? 'Stopped'}: ${task.stoppedReason ?? 'no reason given'}`;
  return { phase: succeeded ? 'Succeeded' : 'Failed', message: `task ${taskId(task)} stopped (${why}); exit codes: ${list}` };
}

/** Whether a stopped task runs again under the pod's restartPolicy (Always; OnFailure unless it succeeded). */
export function wantsRestart(task: Task, pod: Pod): boolean {
  const policy = pod.spec?.restartPolicy ?? 'Always';
  if (policy === 'Never') return false;
  if (policy === 'Always') return true;
  return taskOutcome(task, pod).phase === 'Failed';
}

export function taskId(task: Task): string {
  const arn = task.taskArn ?? '';
  return arn.slice(arn.lastIndexOf('/') + 1);
}

function terminated(task: Task, c: EcsContainer | undefined): ContainerState {
  const exitCode = c?.exitCode ?? (c?.lastStatus === 'STOPPED' ? 137 : 128);
  const reason = c?.exitCode === 0 ? 'Completed' : c?.exitCode !== undefined ? 'Error' : c?.reason?.startsWith('CannotPull') ? 'ErrImagePull' : 'StartError';
  const message = c?.reason ?? (c?.exitCode === undefined ? task.stoppedReason : undefined);
  return {
    terminated: {
      exitCode,
      reason,
      ...(message && { message }),
      ...(task.startedAt && { startedAt: stamp(task.startedAt) }),
      finishedAt: stamp(task.stoppedAt ?? task.executionStoppedAt ?? task.stoppingAt),
      ...(c?.runtimeId && { containerID: `ecs://${c.runtimeId}` }),
    },
  };
}

function containerStatus(view: TaskView, spec: Container, init: boolean, waitingInit: boolean): ContainerStatus {
  const { task, previous } = view;
  const last = previous.at(-1);
  const lastState = last
    ? terminated(
        last,
        last.containers?.find((c) => c.name === spec.name),
      )
    : {};
  const c = task?.containers?.find((x) => x.name === spec.name);
  const base = {
    name: spec.name,
    image: spec.image ?? '',
    imageID: c?.imageDigest ? `${spec.image}@${c.imageDigest}` : '',
    restartCount: previous.length,
    lastState,
    ...(c?.runtimeId && { containerID: `ecs://${c.runtimeId}` }),
  };
  if (!task) {
    const after = view.restartAt !== undefined ? Math.max(0, Math.round((view.restartAt - Date.now()) / 1000)) : 0;
    const message = `back-off ${after}s restarting failed container=${spec.name} pod=${view.pod.metadata?.name}_${view.pod.metadata?.namespace}(${view.pod.metadata?.uid})`;
    return { ...base, ready: false, started: false, state: { waiting: { reason: 'CrashLoopBackOff', message } } };
  }
  if (c?.lastStatus === 'RUNNING' && task.lastStatus !== 'STOPPED')
    return { ...base, ready: !init && task.lastStatus === 'RUNNING', started: true, state: { running: { startedAt: stamp(task.startedAt) } } };
  if (c?.lastStatus === 'STOPPED' || task.lastStatus === 'STOPPED') return { ...base, ready: false, started: false, state: terminated(task, c) };
  return { ...base, ready: false, started: false, state: { waiting: { reason: waitingInit ? 'PodInitializing' : 'ContainerCreating' } } };
}

/** The pod's phase for the task's lastStatus (PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED). */
export function phaseOf(view: TaskView): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  const { task } = view;
  if (!task) return 'Running'; // between runs of a restarting pod
  switch (task.lastStatus) {
    case 'STOPPED':
      return taskOutcome(task, view.pod).phase;
    case 'PROVISIONING':
    case 'PENDING':
    case 'ACTIVATING':
      return view.previous.length > 0 ? 'Running' : 'Pending';
    default:
      return task.startedAt || view.previous.length > 0 ? 'Running' : 'Pending';
  }
}

export function renderStatus(view: TaskView): PodStatus {
  const { pod, task } = view;
  const generation = pod.metadata?.generation;
  const phase = phaseOf(view);
  const inits = pod.spec?.initContainers ?? [];
  const initsDone = inits.every((i) => task?.containers?.find((c) => c.name === i.name)?.exitCode === 0);
  const containerStatuses = (pod.spec?.containers ?? []).map((c) => containerStatus(view, c, false, inits.length > 0 && !initsDone));
  const initContainerStatuses = inits.map((c) => containerStatus(view, c, true, false));
  const ready = phase === 'Running' && containerStatuses.every((c) => c.ready);
  const podIP = podIPOf(task);
  const since = stamp(task?.startedAt ?? task?.createdAt, view.createdAt);
  const cond = (type: string, ok: boolean, reason?: string): PodCondition => ({
    type,
    status: ok ? 'True' : 'False',
    ...(generation !== undefined && { observedGeneration: generation }),
    lastTransitionTime: since,
    ...(!ok && reason && { reason }),
  });
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const notReady = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
  const status: PodStatus = {
    ...(generation !== undefined && { observedGeneration: generation }),
    phase,
    conditions: [
      cond('PodReadyToStartContainers', podIP !== undefined && !terminal),
      cond('Initialized', inits.length === 0 || initsDone, 'ContainersNotInitialized'),
      cond('Ready', ready, notReady),
      cond('ContainersReady', ready, notReady),
      cond('PodScheduled', true),
    ],
    hostIP: view.nodeIP,
    hostIPs: [{ ip: view.nodeIP }],
    ...(podIP && { podIP, podIPs: [{ ip: podIP }] }),
    startTime: rfc3339(new Date(view.createdAt)),
    containerStatuses,
    ...(inits.length > 0 && { initContainerStatuses }),
    ...(pod.status?.qosClass && { qosClass: pod.status.qosClass }),
  };
  if (task?.lastStatus === 'STOPPED') {
    status.message = taskOutcome(task, pod).message;
    if (task.stopCode === 'TaskFailedToStart') status.reason = 'TaskFailedToStart';
  }
  return status;
}
