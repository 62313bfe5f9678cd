// What an ECS task's description says happened, as pod Events: the image pull (pullStartedAt,
// pullStoppedAt), each container's failure reason (CannotPullContainerError, ...) and the task's
// stop (stopCode, stoppedReason) when the pod did not simply complete. Each has a key unique to
// the task, so the provider reports it once however often it describes the task.
import type { Task } from '@aws-sdk/client-ecs';
import type { Pod } from '../../kube/types.ts';
import type { PodEvent } from '../provider.ts';
import { taskId, taskOutcome } from './status.ts';

/** A pod Event without the pod's name and UID, and the key that makes it once per task. */
export interface TaskEvent {
  key: string;
  event: Omit<PodEvent, 'namespace' | 'name' | 'uid'>;
}

const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;
/** Stops we asked for ourselves (StopTask reasons of fargate-provider.ts): no Warning for them. */
const OUR_STOP = /^virtual-kubelet:/;
/** Stop codes that are an interruption even when every container exited 0. */
const INTERRUPTIONS = new Set(['TaskFailedToStart', 'SpotInterruption', 'TerminationNotice', 'ServiceSchedulerInitiated']);

export function taskEvents(task: Task, pod: Pod): TaskEvent[] {
  const id = taskId(task);
  const arn = task.taskArn ?? id;
  const out: TaskEvent[] = [];
  const images = [...new Set((task.containers ?? []).map((c) => c.image).filter(Boolean))].join(', ');
  if (task.pullStartedAt)
    out.push({
      key: `${arn}/Pulling`,
      event: { type: 'Normal', reason: 'Pulling', message: `Pulling images for task ${id}: ${images}`, firstTimestamp: task.pullStartedAt },
    });
  if (task.pullStartedAt && task.pullStoppedAt) {
    const seconds = Math.max(0, (task.pullStoppedAt.getTime() - task.pullStartedAt.getTime()) / 1000);
    out.push({
      key: `${arn}/Pulled`,
      event: { type: 'Normal', reason: 'Pulled', message: `Pulled images for task ${id} in ${seconds.toFixed(1)}s`, firstTimestamp: task.pullStoppedAt },
    });
  }
  if (task.lastStatus !== 'STOPPED') return out;
  const stoppedAt = task.stoppedAt ?? task.executionStoppedAt ?? task.stoppingAt;
  const containerReasons = new Set<string>();
  for (const c of task.containers ?? []) {
    if (!c.reason || !c.name) continue;
    containerReasons.add(c.reason);
    out.push({
      key: `${arn}/container/${c.name}`,
      event: { type: 'Warning', reason: 'Failed', message: c.reason, container: c.name, ...(stoppedAt && { firstTimestamp: stoppedAt }) },
    });
  }
  const why = task.stoppedReason ?? '';
  const interrupted = INTERRUPTIONS.has(task.stopCode ?? '');
  if (OUR_STOP.test(why) || (!interrupted && taskOutcome(task, pod).phase === 'Succeeded') || containerReasons.has(why)) return out;
  const reason = task.stopCode && CAMEL_CASE.test(task.stopCode) ? task.stopCode : 'TaskStopped';
  out.push({
    key: `${arn}/stopped`,
    event: { type: 'Warning', reason, message: `task ${id} stopped: ${why || 'no reason given'}`, ...(stoppedAt && { firstTimestamp: stoppedAt }) },
  });
  return out;
}
