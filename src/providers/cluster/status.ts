// The target pod seen from the source cluster: its status as the source pod reports it, and the
// pod as getPod returns it (source namespace, name and UID; the updatable fields as the source
// wrote them, so the core sees no spec drift).
import type { Pod, PodStatus, Toleration } from '../../kube/types.ts';
import { ANNOTATION_TOLERATIONS, CONDITION_TARGET_POD, withoutOurs, type SourceRef } from './names.ts';

/**
 * Phase, conditions, podIP(s), container statuses (restart counts, exit codes, reasons) and QoS
 * class as the target reports them; hostIP is the virtual node's, as the pod runs "on" it.
 */
export function mirrorStatus(target: Pod, hostIP: string): PodStatus {
  // A shallow copy: the nested parts are shared with the target pod, which nobody modifies.
  const status: PodStatus = { ...target.status, hostIP, hostIPs: [{ ip: hostIP }] };
  // The target's nominatedNodeName and resize bookkeeping mean nothing at the source.
  delete status.nominatedNodeName;
  status.phase ??= 'Pending';
  // Written to the source pod with its first status: a durable record that a target pod existed,
  // so a restart that finds none knows it was deleted behind our back (see ranInTarget).
  if (!status.conditions?.some((c) => c.type === CONDITION_TARGET_POD)) {
    const meta = target.metadata ?? {};
    status.conditions = [
      ...(status.conditions ?? []),
      {
        type: CONDITION_TARGET_POD,
        status: 'True',
        reason: 'Created',
        message: `runs as pod ${meta.namespace}/${meta.name} (uid ${meta.uid}) in the target cluster`,
        ...(meta.creationTimestamp && { lastTransitionTime: meta.creationTimestamp }),
      },
    ];
  }
  return status;
}

/** Whether the source pod's status records that a target pod ran it (the condition mirrorStatus adds). */
export function ranInTarget(source: Pod): boolean {
  return source.status?.conditions?.some((c) => c.type === CONDITION_TARGET_POD && c.status === 'True') ?? false;
}

export function isFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

/**
 * The pod as the provider runs it, in the source's terms, with the source pod's tolerations (the
 * target pod has the configured ones). Pods made by older versions carry them in an annotation.
 */
export function sourcePod(target: Pod, source: SourceRef, nodeName: string, hostIP: string, tolerations?: Toleration[]): Pod {
  const meta = target.metadata ?? {};
  const legacy = meta.annotations?.[ANNOTATION_TOLERATIONS];
  // Shallow, as mirrorStatus: shared with the target pod, which nobody modifies.
  const spec = { ...(target.spec ?? { containers: [] }), nodeName };
  const sourceTolerations = tolerations ?? (legacy ? (JSON.parse(legacy) as Toleration[]) : undefined);
  if (sourceTolerations?.length) spec.tolerations = sourceTolerations;
  else delete spec.tolerations;
  const labels = withoutOurs(meta.labels);
  const annotations = withoutOurs(meta.annotations);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      namespace: source.namespace,
      name: source.name,
      uid: source.uid,
      ...(labels && { labels }),
      ...(annotations && { annotations }),
      ...(meta.creationTimestamp && { creationTimestamp: meta.creationTimestamp }),
    },
    spec,
    status: mirrorStatus(target, hostIP),
  };
}

/** What a source pod reports once its target pod was deleted or evicted behind our back. */
export function lostStatus(last: Pod | undefined, reason: string, message: string, hostIP: string): PodStatus {
  const now = new Date().toISOString();
  const previous = last ? mirrorStatus(last, hostIP) : { hostIP };
  const terminated = (statuses: PodStatus['containerStatuses']) =>
    statuses?.map((c) => ({
      ...c,
      ready: false,
      started: false,
      state: {
        terminated: c.state?.terminated ?? {
          exitCode: 137,
          reason: 'ContainerStatusUnknown',
          message: 'The container could not be located when the pod was terminated',
          startedAt: c.state?.running?.startedAt,
          finishedAt: now,
        },
      },
    }));
  return {
    ...previous,
    phase: 'Failed',
    reason,
    message,
    conditions: (previous.conditions ?? []).map((c) =>
      c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False', lastTransitionTime: now } : c,
    ),
    ...(previous.containerStatuses && { containerStatuses: terminated(previous.containerStatuses) }),
  };
}
