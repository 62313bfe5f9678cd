// The ConfigMaps and Secrets a pod reads, so the core watches only those.
import type { Pod } from '../kube/types.ts';

export interface ReferencedObjects {
  configMaps: Set<string>;
  secrets: Set<string>;
}

/**
 * Names (in the pod's namespace) referenced by env, envFrom, volumes, projected sources and
 * imagePullSecrets, optional references included: their appearance changes the outcome too.
 */
export function referencedObjects(pod: Pod): ReferencedObjects {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  const addConfigMap = (name: string | undefined) => name && configMaps.add(name);
  const addSecret = (name: string | undefined) => name && secrets.add(name);
  const spec = pod.spec;
  const containers = [...(spec?.initContainers ?? []), ...(spec?.containers ?? []), ...(spec?.ephemeralContainers ?? [])];
  for (const container of containers) {
    for (const source of container.envFrom ?? []) {
      addConfigMap(source.configMapRef?.name);
      addSecret(source.secretRef?.name);
    }
    for (const envVar of container.env ?? []) {
      addConfigMap(envVar.valueFrom?.configMapKeyRef?.name);
      addSecret(envVar.valueFrom?.secretKeyRef?.name);
    }
  }
  for (const volume of spec?.volumes ?? []) {
    addConfigMap(volume.configMap?.name);
    addSecret(volume.secret?.secretName);
    for (const source of volume.projected?.sources ?? []) {
      addConfigMap(source.configMap?.name);
      addSecret(source.secret?.name);
    }
  }
  for (const ref of spec?.imagePullSecrets ?? []) addSecret(ref.name);
  return { configMaps, secrets };
}
