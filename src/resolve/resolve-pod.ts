// Entry point of env and volume resolution: turns an API pod into the ResolvedPod a
// provider receives. Volumes are resolved first (the kubelet mounts before it starts any
// container), then each init, regular and ephemeral container's environment.
import type { Pod, Secret } from '../kube/types.ts';
import type { PodIPTemplate, ResolvedPod } from '../providers/provider.ts';
import { applyEnv, resolveContainerEnv } from './env.ts';
import type { EnvContainer } from './env.ts';
import { ObjectCache } from './objects.ts';
import { needsPodIPTemplate, podIPTemplate } from './pod-ip.ts';
import { loadServiceEnv } from './service-links.ts';
import type { ObjectSource, ResolveContext, ResolveWarning } from './types.ts';
import { resolveVolumes } from './volumes.ts';
import { cloneJson } from '../util/clone-json.ts';

export type { ObjectSource, ResolveContext, ResolveWarning, TokenRequest } from './types.ts';
export { MissingReferenceError, PodConfigError, UnsupportedPodSpecError } from './errors.ts';
export { referencedObjects } from './references.ts';
export type { ReferencedObjects } from './references.ts';

export interface ResolveResult extends ResolvedPod {
  /** Kubelet-style Warning events to record on the pod (e.g. InvalidEnvironmentVariableNames). */
  warnings: ResolveWarning[];
  /** Set when the pod has service account tokens: resolve again before this time to refresh them. */
  refreshAt?: Date;
}

/**
 * Resolves `pod` (left untouched) into a deep copy whose containers carry plain `{name, value}`
 * env lists, plus the contents of its volumes. Throws PodConfigError subclasses for
 * missing references (MissingReferenceError) and unsupported specs (UnsupportedPodSpecError);
 * ObjectSource failures propagate unchanged.
 */
export async function resolvePod(pod: Pod, source: ObjectSource, context: ResolveContext): Promise<ResolveResult> {
  const copy = cloneJson(pod);
  const namespace = pod.metadata?.namespace ?? '';
  const objects = new ObjectCache(source, namespace);
  const { volumes, refreshAt } = await resolveVolumes(pod, objects, source, context);

  const serviceEnv = await loadServiceEnv(source, namespace, pod.spec?.enableServiceLinks !== false);
  const warnings: ResolveWarning[] = [];
  const containers: EnvContainer[] = [...(copy.spec?.initContainers ?? []), ...(copy.spec?.containers ?? []), ...(copy.spec?.ephemeralContainers ?? [])];
  const podIPTemplates: PodIPTemplate[] = [];
  for (const container of containers) {
    // Reads go to the original pod: applyEnv rewrites the copy as we go.
    if (needsPodIPTemplate(container, context)) podIPTemplates.push(await podIPTemplate(pod, container, objects, serviceEnv, context));
    const resolved = await resolveContainerEnv(pod, container, objects, serviceEnv, context);
    applyEnv(container, resolved.env);
    for (const warning of resolved.warnings) {
      if (!warnings.some((w) => w.reason === warning.reason && w.message === warning.message)) warnings.push(warning);
    }
  }
  // As the kubelet: a missing pull secret is a warning, and the pull goes on without it.
  const pullSecrets: Secret[] = [];
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    if (!ref.name) continue;
    const secret = await objects.secret(ref.name);
    if (secret) pullSecrets.push(secret);
    else
      warnings.push({
        reason: 'FailedToRetrieveImagePullSecret',
        message: `Unable to retrieve some image pull secrets (${ref.name}); attempting to pull the image may not succeed.`,
      });
  }
  return {
    pod: copy,
    original: pod,
    volumes,
    warnings,
    pullSecrets,
    ...(podIPTemplates.length > 0 && { podIPTemplates }),
    ...(refreshAt ? { refreshAt } : {}),
  };
}
