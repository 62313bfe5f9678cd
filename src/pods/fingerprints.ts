// What the pod controller compares to decide whether the provider needs an update: the spec
// fields a running pod may change, and the contents it was handed besides the spec.
import { createHash } from 'node:crypto';
import type { Pod } from '../kube/types.ts';
import type { ResolvedPod } from '../providers/provider.ts';

/** The pod fields whose change is passed to the provider as an update. */
export function updatableFingerprint(pod: Pod): string {
  const spec = pod.spec;
  return JSON.stringify([
    spec?.containers.map((c) => c.image),
    spec?.initContainers?.map((c) => c.image),
    spec?.activeDeadlineSeconds,
    spec?.tolerations,
    pod.metadata?.labels,
    pod.metadata?.annotations,
  ]);
}

/** A digest of what the provider gets besides the spec: volume names, kinds, file paths, modes and contents, pull secrets. */
export function deliveryDigest(resolved: Pick<ResolvedPod, 'volumes' | 'pullSecrets'>): string {
  const hash = createHash('sha256');
  for (const secret of resolved.pullSecrets ?? []) hash.update(`${secret.metadata?.name}\0${JSON.stringify(secret.data ?? {})}\0`);
  for (const [name, volume] of [...resolved.volumes].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`${name}\0${volume.type}\0`);
    if (volume.type !== 'files') continue;
    for (const file of volume.files) hash.update(`${file.path}\0${file.mode}\0${file.content.length}\0`).update(file.content);
  }
  return hash.digest('base64');
}

export const EMPTY_DIGEST = deliveryDigest({ volumes: new Map() });
