// A source pod as the target cluster runs it. What was meant for the source cluster (its node,
// node selectors, affinity, tolerations of the virtual node, its ServiceAccount) is stripped or
// replaced by config; what the pod needs travels as objects of its own: each resolved volume
// becomes a ConfigMap (configMap, downwardAPI) or a Secret (secret, projected: that is where the
// source ServiceAccount token lives), resolved env that may hold a Secret's data goes into a
// Secret read through secretKeyRef (so it is never in the pod spec in clear), and pull secrets
// are copied. The objects carry the pod's ownership labels and, once the pod exists, an
// ownerReference to it, so the target's garbage collector removes them with the pod.
import { PodRejectedError } from '../../errors.ts';
import type { ConfigMap, Container, Pod, PodSpec, Secret, Volume } from '../../kube/types.ts';
import type { ResolvedPod, ResolvedVolume } from '../provider.ts';
import type { ClusterConfig } from './config.ts';
import { dependentName, ownership, type SourceRef, type TargetRef } from './names.ts';
import { cloneJson } from '../../util/clone-json.ts';
import { addressUse } from './pod-ip.ts';

export interface TargetObjects {
  pod: Pod;
  configMaps: ConfigMap[];
  secrets: Secret[];
}

/** Volume types the target runs as they are (no source-cluster object behind them). */
const PASS_THROUGH_VOLUMES = ['emptyDir'] as const;

export function sourceRef(pod: Pod): SourceRef {
  return { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' };
}

/**
 * The target pod and the objects it needs; the objects get their ownerReference after the pod
 * exists. `implicitEnv`: what the target's kubelet sets in every container by itself (target-env.ts);
 * a resolved variable equal to it is left out of the spec.
 */
export function translatePod(
  resolved: ResolvedPod,
  target: TargetRef,
  nodeName: string,
  config: ClusterConfig,
  implicitEnv: ReadonlyMap<string, string> = new Map(),
): TargetObjects {
  const source = resolved.pod;
  const ref = sourceRef(source);
  const owned = ownership(nodeName, ref);
  const labels = { ...source.metadata?.labels, ...owned.labels };
  const configMaps: ConfigMap[] = [];
  const secrets: Secret[] = [];
  const meta = (name: string) => ({ name, namespace: target.namespace, labels: owned.labels, annotations: owned.annotations });

  const spec = cloneJson(source.spec ?? { containers: [] }) as PodSpec;
  stripScheduling(spec, config.scheduling);
  spec.volumes = (spec.volumes ?? []).map((volume) => {
    const content = resolved.volumes.get(volume.name);
    if (content?.type === 'files') {
      const name = dependentName(target.name, `vol-${volume.name}`);
      const { volumeSource, data } = fileVolume(content, name);
      if (content.source === 'configMap' || content.source === 'downwardAPI') configMaps.push({ metadata: meta(name), binaryData: data });
      else secrets.push({ metadata: meta(name), type: 'Opaque', data });
      return { name: volume.name, ...volumeSource };
    }
    if (PASS_THROUGH_VOLUMES.some((kind) => volume[kind])) return volume;
    const kind = Object.keys(volume).find((k) => k !== 'name') ?? 'unknown';
    throw new PodRejectedError('UnsupportedVolume', `volume "${volume.name}" (${kind}) cannot be carried to the target cluster`);
  });

  const envData: Record<string, string> = {};
  const envSecret = dependentName(target.name, 'env');
  const mapEnv = (prefix: string, originals: Container[] | undefined) => (container: Container, index: number) => {
    delete container.envFrom; // the core resolved envFrom into env
    const secret = secretDerived(resolved.original ? (originals?.[index] ?? {}) : undefined);
    const env = container.env?.filter((variable) => variable.valueFrom !== undefined || implicitEnv.get(variable.name) !== (variable.value ?? ''));
    // What uses the pod's address (empty when resolved): the target's kubelet computes it (pod-ip.ts).
    const template = resolved.podIPTemplates?.find((t) => t.containerName === container.name);
    const address = addressUse(originals?.[index], template, container, env?.map((v) => v.name) ?? [], implicitEnv);
    if (address.command) container.command = address.command;
    if (address.args) container.args = address.args;
    if (!env?.length) {
      delete container.env;
      return;
    }
    container.env = env.map((variable, i) => {
      const fromTarget = address.env.get(variable.name);
      if (fromTarget) return fromTarget;
      if (!secret(variable.name)) return { name: variable.name, value: variable.value ?? '' };
      const key = `${prefix}${index}.${i}`;
      envData[key] = Buffer.from(variable.value ?? '').toString('base64');
      return { name: variable.name, valueFrom: { secretKeyRef: { name: envSecret, key } } };
    });
  };
  spec.containers.forEach(mapEnv('c', resolved.original?.spec?.containers));
  spec.initContainers?.forEach(mapEnv('i', resolved.original?.spec?.initContainers));
  if (Object.keys(envData).length > 0) secrets.push({ metadata: meta(envSecret), type: 'Opaque', data: envData });

  const pullSecrets = resolved.pullSecrets ?? [];
  spec.imagePullSecrets = pullSecrets.map((secret, i) => {
    const name = dependentName(target.name, `pull${i}`);
    secrets.push({ metadata: meta(name), type: secret.type ?? 'Opaque', data: secret.data ?? {} });
    return { name };
  });
  if (spec.imagePullSecrets.length === 0) delete spec.imagePullSecrets;

  const annotations: Record<string, string> = { ...source.metadata?.annotations, ...owned.annotations };
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: target.name, namespace: target.namespace, labels, annotations }, spec };
  return { pod, configMaps, secrets };
}

/**
 * Which of a container's resolved variables may hold a Secret's data, from its spec before
 * resolution (undefined: unknown, so all): secretKeyRef values; with an envFrom secretRef, every
 * name its env list does not set from elsewhere; and literal values that expand $(VAR) references.
 * The rest (literals, ConfigMap values, field refs, service variables) may go in clear.
 */
export function secretDerived(original: Partial<Container> | undefined): (name: string) => boolean {
  if (!original) return () => true;
  const fromSecretEnvFrom = (original.envFrom ?? []).some((source) => source.secretRef);
  const declared = new Map((original.env ?? []).map((e) => [e.name, e]));
  return (name) => {
    const entry = declared.get(name);
    if (!entry) return fromSecretEnvFrom;
    if (entry.valueFrom) return entry.valueFrom.secretKeyRef !== undefined;
    return (entry.value ?? '').includes('$(');
  };
}

/** Resolved files as a ConfigMap/Secret volume: keys f0..fn, each mapped to its path and mode. */
function fileVolume(content: Extract<ResolvedVolume, { type: 'files' }>, objectName: string): { volumeSource: Partial<Volume>; data: Record<string, string> } {
  const data: Record<string, string> = {};
  const items = content.files.map((file, i) => {
    const key = `f${i}`;
    data[key] = Buffer.from(file.content).toString('base64');
    return { key, path: file.path, mode: file.mode };
  });
  const volumeSource: Partial<Volume> =
    content.source === 'configMap' || content.source === 'downwardAPI'
      ? { configMap: { name: objectName, items } }
      : { secret: { secretName: objectName, items } };
  return { volumeSource, data };
}

function mapped(setting: 'keep' | 'drop' | Record<string, string>, value: string | undefined): string | undefined {
  if (value === undefined || setting === 'drop') return undefined;
  if (setting === 'keep') return value;
  return setting[value];
}

function stripScheduling(spec: PodSpec, config: ClusterConfig['scheduling']): void {
  delete spec.nodeName;
  if (config.nodeName) spec.nodeName = config.nodeName;
  delete spec.schedulerName;
  delete spec.ephemeralContainers;
  // The source's ServiceAccount does not exist there, and the target's token must not be mounted:
  // the pod sees the source token, from the projected volume carried as a Secret.
  delete spec.serviceAccountName;
  delete spec.serviceAccount;
  spec.automountServiceAccountToken = false;
  // Service-link env was resolved from the source's Services; the target's would add its own.
  spec.enableServiceLinks = false;
  if (Object.keys(config.nodeSelector).length > 0) spec.nodeSelector = { ...config.nodeSelector };
  else delete spec.nodeSelector;
  if (config.tolerations.length > 0) spec.tolerations = cloneJson(config.tolerations);
  else delete spec.tolerations;
  if (!config.keepAffinity) delete spec.affinity;
  if (!config.keepTopologySpread) delete spec.topologySpreadConstraints;
  // Admission derives these from the class names; stale values would be rejected.
  delete spec.priority;
  delete spec.preemptionPolicy;
  delete spec.overhead;
  const priorityClassName = mapped(config.priorityClassName, spec.priorityClassName);
  if (priorityClassName) spec.priorityClassName = priorityClassName;
  else delete spec.priorityClassName;
  const runtimeClassName = mapped(config.runtimeClassName, spec.runtimeClassName);
  if (runtimeClassName) spec.runtimeClassName = runtimeClassName;
  else delete spec.runtimeClassName;
}
