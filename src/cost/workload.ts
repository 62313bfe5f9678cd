// The workload a pod belongs to, as `Kind/name`: its controller, and for a ReplicaSet made by a
// Deployment (its name is the Deployment's plus the pod-template-hash) the Deployment; for a Job
// made by a CronJob, the CronJob (its name is the CronJob's plus the scheduled minute, 8+ digits). Bare pods are
// their own workload.
import type { Pod } from '../kube/types.ts';

export function workloadOf(pod: Pod): string {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller) ?? pod.metadata?.ownerReferences?.[0];
  if (!owner) return `Pod/${pod.metadata?.name ?? ''}`;
  const hash = pod.metadata?.labels?.['pod-template-hash'];
  if (owner.kind === 'ReplicaSet' && hash && owner.name.endsWith(`-${hash}`)) return `Deployment/${owner.name.slice(0, -hash.length - 1)}`;
  const cronJob = owner.kind === 'Job' ? /^(.+)-\d{8,}$/.exec(owner.name) : null;
  if (cronJob) return `CronJob/${cronJob[1]}`;
  return `${owner.kind}/${owner.name}`;
}
