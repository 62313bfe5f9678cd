// A container's environment, as the kubelet's makeEnvironmentVariables builds it:
//  - envFrom sources in order (keys sorted within a source, prefix applied), then `env` in
//    written order; a later definition of a name replaces the value but keeps the position
//    where the name first appeared;
//  - `value` is $(VAR)-expanded against what is defined so far, then the service variables;
//    valueFrom results are never expanded;
//  - a missing optional object or key leaves the variable undefined (an earlier envFrom
//    value survives);
//  - service variables not overridden by the container come last.
// Command, args and subPathExpr are then expanded against the result, as at container start.
import { posix } from 'node:path';
import type { Container, EnvVar, Pod } from '../kube/types.ts';
import { MissingReferenceError, PodConfigError, UnsupportedPodSpecError } from './errors.ts';
import { expand, mappingFor } from './expansion.ts';
import { fieldValue, resourceValue } from './fieldref.ts';
import { secretText } from './objects.ts';
import type { ObjectCache } from './objects.ts';
import type { ResolveContext, ResolveWarning } from './types.ts';

/** The parts of a container (regular, init or ephemeral) that env resolution touches. */
export type EnvContainer = Pick<Container, 'name' | 'env' | 'envFrom' | 'command' | 'args' | 'volumeMounts' | 'resources'>;

export interface ResolvedEnv {
  env: { name: string; value: string }[];
  warnings: ResolveWarning[];
}

/**
 * Kubernetes' relaxed env var name rule (IsRelaxedEnvVarName, the default since 1.32):
 * printable ASCII except '='. Keys failing it are skipped with a warning, as the kubelet did.
 */
export function isValidEnvName(name: string): boolean {
  return /^[\x20-\x3c\x3e-\x7e]+$/.test(name);
}

function notFound(kind: 'configmap' | 'secret', name: string): string {
  return `${kind} "${name}" not found`;
}

export async function resolveContainerEnv(
  pod: Pod,
  container: EnvContainer,
  objects: ObjectCache,
  serviceEnv: ReadonlyMap<string, string>,
  context: ResolveContext,
): Promise<ResolvedEnv> {
  const namespace = pod.metadata?.namespace ?? '';
  const containerName = container.name;
  const defined = new Map<string, string>();
  const warnings: ResolveWarning[] = [];

  for (const source of container.envFrom ?? []) {
    const prefix = source.prefix ?? '';
    let entries: [string, string][];
    let described: string;
    if (source.configMapRef) {
      const name = source.configMapRef.name ?? '';
      const configMap = await objects.configMap(name);
      if (!configMap) {
        if (source.configMapRef.optional) continue;
        throw new MissingReferenceError(notFound('configmap', name), { kind: 'ConfigMap', objectName: name, containerName });
      }
      // Like the kubelet, envFrom reads `data` only; binaryData is for volumes.
      entries = Object.entries(configMap.data ?? {});
      described = `configMap ${namespace}/${name}`;
    } else if (source.secretRef) {
      const name = source.secretRef.name ?? '';
      const secret = await objects.secret(name);
      if (!secret) {
        if (source.secretRef.optional) continue;
        throw new MissingReferenceError(notFound('secret', name), { kind: 'Secret', objectName: name, containerName });
      }
      entries = Object.keys(secret.data ?? {}).map((key) => [key, secretText(secret, key)!]);
      described = `secret ${namespace}/${name}`;
    } else {
      continue;
    }
    const invalid: string[] = [];
    for (const [key, value] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const name = prefix + key;
      if (!isValidEnvName(name)) {
        invalid.push(name);
        continue;
      }
      defined.set(name, value);
    }
    if (invalid.length > 0) {
      warnings.push({
        reason: 'InvalidEnvironmentVariableNames',
        message: `Keys [${invalid.join(', ')}] from the EnvFrom ${described} were skipped since they are considered invalid environment variable names.`,
      });
    }
  }

  const mapping = mappingFor(defined, serviceEnv);
  for (const envVar of container.env ?? []) {
    const value = await envValue(pod, container, envVar, objects, mapping, context);
    if (value !== undefined) defined.set(envVar.name, value);
  }

  const env = [...defined].map(([name, value]) => ({ name, value }));
  for (const [name, value] of serviceEnv) if (!defined.has(name)) env.push({ name, value });
  return { env, warnings };
}

/** One `env` entry's value; undefined when an optional reference is missing. */
async function envValue(
  pod: Pod,
  container: EnvContainer,
  envVar: EnvVar,
  objects: ObjectCache,
  mapping: (name: string) => string | undefined,
  context: ResolveContext,
): Promise<string | undefined> {
  const namespace = pod.metadata?.namespace ?? '';
  const containerName = container.name;
  if (envVar.value) return expand(envVar.value, mapping);
  const from = envVar.valueFrom;
  if (!from) return '';
  if (from.fieldRef) return fieldValue(pod, from.fieldRef, context, 'env', { containerName });
  if (from.resourceFieldRef) return resourceValue(pod, from.resourceFieldRef, container, context.nodeAllocatable, { containerName });
  if (from.configMapKeyRef) {
    const { name = '', key, optional } = from.configMapKeyRef;
    const configMap = await objects.configMap(name);
    if (!configMap) {
      if (optional) return undefined;
      throw new MissingReferenceError(notFound('configmap', name), { kind: 'ConfigMap', objectName: name, containerName });
    }
    const value = configMap.data?.[key];
    if (value === undefined) {
      if (optional) return undefined;
      throw new MissingReferenceError(`couldn't find key ${key} in ConfigMap ${namespace}/${name}`, {
        kind: 'ConfigMap',
        objectName: name,
        key,
        containerName,
      });
    }
    return value;
  }
  if (from.secretKeyRef) {
    const { name = '', key, optional } = from.secretKeyRef;
    const secret = await objects.secret(name);
    if (!secret) {
      if (optional) return undefined;
      throw new MissingReferenceError(notFound('secret', name), { kind: 'Secret', objectName: name, containerName });
    }
    const value = secretText(secret, key);
    if (value === undefined) {
      if (optional) return undefined;
      throw new MissingReferenceError(`couldn't find key ${key} in Secret ${namespace}/${name}`, { kind: 'Secret', objectName: name, key, containerName });
    }
    return value;
  }
  if (from.fileKeyRef) {
    // The file lives in a volume on the provider's side; the core cannot read it.
    throw new UnsupportedPodSpecError('UnsupportedField', `env ${envVar.name}: valueFrom.fileKeyRef is not supported by this virtual kubelet`, {
      containerName,
    });
  }
  return '';
}

/** `container`'s command and args (those it has) with $(VAR) expanded against `env`. */
export function expandedCommand(container: Pick<Container, 'command' | 'args'>, env: { name: string; value: string }[]): Pick<Container, 'command' | 'args'> {
  const mapping = mappingFor(new Map(env.map(({ name, value }) => [name, value])));
  return {
    ...(container.command && { command: container.command.map((part) => expand(part, mapping)) }),
    ...(container.args && { args: container.args.map((part) => expand(part, mapping)) }),
  };
}

/**
 * Writes the resolved env into `container` (envFrom removed) and expands $(VAR) in its
 * command, args and volumeMounts[].subPathExpr, as the kubelet does when starting it.
 */
export function applyEnv(container: EnvContainer, env: { name: string; value: string }[]): void {
  Object.assign(container, expandedCommand(container, env));
  container.env = env;
  delete container.envFrom;
  const mapping = mappingFor(new Map(env.map(({ name, value }) => [name, value])));
  for (const mount of container.volumeMounts ?? []) {
    if (!mount.subPathExpr) continue;
    const missing = new Set<string>();
    const subPath = expand(mount.subPathExpr, (name) => {
      const value = mapping(name);
      if (!value) missing.add(name);
      return value ?? '';
    });
    if (missing.size > 0) {
      throw new PodConfigError(`missing value for ${[...missing].sort().join(', ')}`, { reason: 'CreateContainerConfigError', containerName: container.name });
    }
    if (posix.isAbsolute(subPath)) {
      throw new PodConfigError(`error SubPath \`${subPath}\` must not be an absolute path`, {
        reason: 'CreateContainerConfigError',
        containerName: container.name,
      });
    }
    if (subPath.split('/').includes('..')) {
      throw new PodConfigError(`unable to provision SubPath \`${subPath}\`: must not contain '..'`, {
        reason: 'CreateContainerConfigError',
        containerName: container.name,
      });
    }
    mount.subPath = subPath;
    delete mount.subPathExpr;
  }
}
