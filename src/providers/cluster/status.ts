// The target pod seen from the source cluster: its status as the source pod reports it, and the
// pod as getPod returns it (source namespace, name and UID; the updatable fields as the source
// wrote them, so the core sees no spec drift).
import type { Pod, PodStatus } from '../../kube/types.ts';
import { ANNOTATION_TOLERATIONS, CONDITION_TARGET_POD, withoutOurs, type SourceRef } from './names.ts';

/**
 * Phase, conditions, podIP(s), container statuses (restart counts, exit codes, reasons) and QoS
 * class as the target reports them; hostIP is the virtual node's, as the pod runs "on" it.
 */
export function mirrorStatus(target: Pod, hostIP: string): PodStatus {
  const status = structuredClone(target.status ?? {});
  status.hostIP = hostIP;
  status.hostIPs = [{ ip: hostIP }];
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

/** The pod as the provider runs it, in the source's terms. */
export function sourcePod(target: Pod, source: SourceRef, nodeName: string, hostIP: string): Pod {
  const meta = target.metadata ?? {};
  const tolerations = meta.annotations?.[ANNOTATION_TOLERATIONS];
  const spec = structuredClone(target.spec ?? { containers: [] });
  spec.nodeName = nodeName;
  if (tolerations) spec.tolerations = JSON.parse(tolerations) as NonNullable<typeof spec.tolerations>;
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
