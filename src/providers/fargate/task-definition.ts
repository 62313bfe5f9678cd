// A pod as an ECS task definition (one family per pod) and the RunTask request that starts it
// (launch type FARGATE, awsvpc). Pure: everything Fargate cannot run is rejected here, naming
// the pod field, before any AWS call is made. docs/fargate-provider.md lists the mapping.
import { createHash } from 'node:crypto';
import type { ContainerDefinition, KeyValuePair, RegisterTaskDefinitionCommandInput, RunTaskCommandInput, Secret, Tag } from '@aws-sdk/client-ecs';
import { PodRejectedError } from '../../errors.ts';
import { milliValue, parseQuantity } from '../../kube/quantity.ts';
import type { Container, Pod } from '../../kube/types.ts';
import type { ResolvedPod } from '../provider.ts';
import type { FargateConfig } from './config.ts';
import { MAX_CPU_UNITS, MAX_MEMORY_MIB, roundUpTaskSize } from './task-size.ts';

export const TAG = {
  namespace: 'virtual-kubelet.io/namespace',
  name: 'virtual-kubelet.io/name',
  uid: 'virtual-kubelet.io/uid',
  node: 'virtual-kubelet.io/node',
  restartPolicy: 'virtual-kubelet.io/restart-policy',
} as const;

/** Values of these forms become ECS secrets with `secrets: ecs` (the Secret holds the ARN, not the value). */
const SECRET_ARN = /^arn:aws[a-z-]*:(secretsmanager|ssm):/;

/** Fargate adds only this capability (Amazon ECS Developer Guide, "Linux parameters" on Fargate). */
const FARGATE_CAPABILITIES = new Set(['SYS_PTRACE']);

const RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);

/** The automatically injected service-account token volume: dropped (Fargate tasks get no files), see the docs. */
const TOKEN_VOLUME = /^kube-api-access-/;

function reject(field: string, message: string): never {
  throw new PodRejectedError('UnsupportedOnFargate', `${field}: ${message}`);
}

/** One task definition family per pod: <prefix>_<namespace>_<name> ('.' → '_'; names hold no '_', so it is unique). */
export function familyFor(prefix: string, namespace: string, name: string): string {
  const family = `${prefix}_${namespace}_${name.replaceAll('.', '_')}`;
  if (family.length <= 255) return family;
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8);
  return `${family.slice(0, 246)}_${hash}`;
}

/** CPU units (1024 per vCPU) and MiB a container asks for: requests, else limits; 0 when unset. */
function containerResources(c: Container): { cpu: number; memoryLimit?: number; memoryReservation?: number } {
  const quantity = (text: unknown) => (text === undefined ? undefined : parseQuantity(String(text)));
  const cpu = quantity(c.resources?.requests?.cpu ?? c.resources?.limits?.cpu);
  const limit = quantity(c.resources?.limits?.memory);
  const request = quantity(c.resources?.requests?.memory);
  const mib = (q: ReturnType<typeof parseQuantity>) => Number((milliValue(q) + 1048576000n - 1n) / 1048576000n);
  return {
    cpu: cpu === undefined ? 0 : Number((milliValue(cpu) * 1024n + 999n) / 1000n),
    ...(limit && { memoryLimit: mib(limit) }),
    ...(request && { memoryReservation: mib(request) }),
  };
}

function checkPod(pod: Pod): void {
  const spec = pod.spec;
  if (!spec) reject('spec', 'missing');
  if (spec.hostNetwork) reject('spec.hostNetwork', 'Fargate tasks use awsvpc networking; host networking is not available');
  if (spec.hostPID) reject('spec.hostPID', 'not available on Fargate');
  if (spec.hostIPC) reject('spec.hostIPC', 'not available on Fargate');
  if ((spec.securityContext?.sysctls ?? []).length > 0) reject('spec.securityContext.sysctls', 'not mapped to Fargate');
  if ((spec.ephemeralContainers ?? []).length > 0) reject('spec.ephemeralContainers', 'not available on Fargate');
  (spec.volumes ?? []).forEach((v, i) => {
    const at = `spec.volumes[${i}]`;
    if (v.emptyDir) {
      if (v.emptyDir.medium === 'Memory') reject(`${at}.emptyDir.medium`, 'Memory (tmpfs) is not available on Fargate');
      return;
    }
    if (v.projected && TOKEN_VOLUME.test(v.name)) return;
    const type = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    reject(`${at}.${type}`, `volume type ${type} is not supported on Fargate (only emptyDir)`);
  });
  const all = [
    ...(spec.initContainers ?? []).map((c, i) => ({ c, at: `spec.initContainers[${i}]` })),
    ...spec.containers.map((c, i) => ({ c, at: `spec.containers[${i}]` })),
  ];
  for (const { c, at } of all) {
    if (!c.image) reject(`${at}.image`, 'required');
    if (c.restartPolicy === 'Always') reject(`${at}.restartPolicy`, 'sidecar init containers are not supported on Fargate');
    const sc = c.securityContext;
    if (sc?.privileged) reject(`${at}.securityContext.privileged`, 'privileged containers are not available on Fargate');
    for (const cap of sc?.capabilities?.add ?? [])
      if (!FARGATE_CAPABILITIES.has(cap.replace(/^CAP_/, ''))) reject(`${at}.securityContext.capabilities.add`, `${cap}: Fargate only adds SYS_PTRACE`);
    for (const kind of ['limits', 'requests'] as const)
      for (const name of Object.keys(c.resources?.[kind] ?? {}))
        if (!RESOURCES.has(name)) reject(`${at}.resources.${kind}[${name}]`, 'Fargate has no GPUs or extended resources');
    (c.ports ?? []).forEach((p, j) => {
      if (p.protocol === 'SCTP') reject(`${at}.ports[${j}].protocol`, 'SCTP is not available on Fargate');
      if (p.hostPort !== undefined && p.hostPort !== 0 && p.hostPort !== p.containerPort)
        reject(`${at}.ports[${j}].hostPort`, 'with awsvpc networking the host port must equal the container port');
    });
    for (const m of c.volumeMounts ?? [])
      if (m.subPath || m.subPathExpr) reject(`${at}.volumeMounts[${m.name}].subPath`, 'not available for Fargate bind mounts');
  }
}

function containerDefinition(
  resolved: ResolvedPod,
  c: Container,
  config: FargateConfig,
  essential: boolean,
  dependsOn: string | undefined,
): ContainerDefinition {
  const pod = resolved.pod;
  const env: KeyValuePair[] = [];
  const secrets: Secret[] = [];
  for (const e of c.env ?? []) {
    const value = e.value ?? '';
    if (config.secrets === 'ecs' && SECRET_ARN.test(value)) secrets.push({ name: e.name, valueFrom: value });
    else env.push({ name: e.name, value });
  }
  const resources = containerResources(c);
  const sc = c.securityContext;
  const user = sc?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
  const group = sc?.runAsGroup ?? pod.spec?.securityContext?.runAsGroup;
  const probe = c.livenessProbe?.exec?.command;
  const clamp = (v: number | undefined, fallback: number, min: number, max: number) => Math.min(max, Math.max(min, v ?? fallback));
  const mounts = (c.volumeMounts ?? []).filter((m) => resolved.pod.spec?.volumes?.some((v) => v.name === m.name && v.emptyDir));
  return {
    name: c.name,
    image: c.image,
    essential,
    ...(c.command && { entryPoint: c.command }),
    ...(c.args && { command: c.args }),
    ...(c.workingDir && { workingDirectory: c.workingDir }),
    environment: env,
    ...(secrets.length > 0 && { secrets }),
    portMappings: (c.ports ?? []).map((p) => ({ containerPort: p.containerPort, protocol: p.protocol === 'UDP' ? 'udp' : 'tcp' })),
    ...(mounts.length > 0 && { mountPoints: mounts.map((m) => ({ sourceVolume: m.name, containerPath: m.mountPath, readOnly: m.readOnly === true })) }),
    ...(resources.cpu > 0 && { cpu: resources.cpu }),
    ...(resources.memoryLimit !== undefined && { memory: resources.memoryLimit }),
    ...(resources.memoryReservation !== undefined && { memoryReservation: Math.min(resources.memoryReservation, resources.memoryLimit ?? Infinity) }),
    ...(user !== undefined && { user: group !== undefined ? `${user}:${group}` : String(user) }),
    ...(sc?.readOnlyRootFilesystem && { readonlyRootFilesystem: true }),
    ...((sc?.capabilities?.add?.length || sc?.capabilities?.drop?.length) && {
      linuxParameters: {
        capabilities: {
          ...(sc.capabilities.add?.length && { add: sc.capabilities.add.map((x) => x.replace(/^CAP_/, '')) }),
          ...(sc.capabilities.drop?.length && { drop: sc.capabilities.drop.map((x) => x.replace(/^CAP_/, '')) }),
        },
      },
    }),
    ...(c.stdin && { interactive: true }),
    ...(c.tty && { pseudoTerminal: true }),
    ...(probe && {
      healthCheck: {
        command: ['CMD', ...probe],
        interval: clamp(c.livenessProbe?.periodSeconds, 10, 5, 300),
        timeout: clamp(c.livenessProbe?.timeoutSeconds, 1, 2, 60),
        retries: clamp(c.livenessProbe?.failureThreshold, 3, 1, 10),
        startPeriod: clamp(c.livenessProbe?.initialDelaySeconds, 0, 0, 300),
      },
    }),
    stopTimeout: Math.min(120, pod.spec?.terminationGracePeriodSeconds ?? 30),
    ...(dependsOn && { dependsOn: [{ containerName: dependsOn, condition: 'SUCCESS' }] }),
    ...(config.logs !== false && {
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': config.logs.group,
          'awslogs-region': config.region,
          'awslogs-stream-prefix': config.logs.streamPrefix,
          ...(config.logs.createGroup && { 'awslogs-create-group': 'true' }),
        },
      },
    }),
  };
}

export function podTags(pod: Pod, config: FargateConfig, nodeName: string): Tag[] {
  const meta = pod.metadata ?? {};
  return [
    ...Object.entries(config.tags).map(([key, value]) => ({ key, value })),
    { key: TAG.namespace, value: meta.namespace ?? '' },
    { key: TAG.name, value: meta.name ?? '' },
    { key: TAG.uid, value: meta.uid ?? '' },
    { key: TAG.node, value: nodeName },
    { key: TAG.restartPolicy, value: pod.spec?.restartPolicy ?? 'Always' },
  ];
}

/** RegisterTaskDefinition for the pod; throws PodRejectedError naming the field Fargate cannot run. */
export function taskDefinitionFor(resolved: ResolvedPod, config: FargateConfig, nodeName: string): RegisterTaskDefinitionCommandInput {
  const pod = resolved.pod;
  checkPod(pod);
  const spec = pod.spec!;
  const inits = spec.initContainers ?? [];
  const definitions: ContainerDefinition[] = [];
  inits.forEach((c, i) => definitions.push(containerDefinition(resolved, c, config, false, inits[i - 1]?.name)));
  for (const c of spec.containers) definitions.push(containerDefinition(resolved, c, config, true, inits.at(-1)?.name));

  // Init containers run one at a time before the others, so the task needs the larger of the two.
  const need = (list: Container[]) => {
    const total = { cpu: 0, memory: 0 };
    for (const r of list.map(containerResources)) {
      total.cpu += r.cpu;
      total.memory += Math.max(r.memoryLimit ?? 0, r.memoryReservation ?? 0);
    }
    return total;
  };
  const main = need(spec.containers);
  const init = inits
    .map((c) => need([c]))
    .reduce((max, r) => ({ cpu: Math.max(max.cpu, r.cpu), memory: Math.max(max.memory, r.memory) }), { cpu: 0, memory: 0 });
  const cpu = Math.max(main.cpu, init.cpu);
  const memory = Math.max(main.memory, init.memory);
  if (cpu > MAX_CPU_UNITS)
    reject('spec.containers[].resources.cpu', `the pod asks for ${cpu / 1024} vCPU in total; the largest Fargate task has ${MAX_CPU_UNITS / 1024}`);
  if (memory > MAX_MEMORY_MIB)
    reject('spec.containers[].resources.memory', `the pod asks for ${memory} MiB in total; the largest Fargate task has ${MAX_MEMORY_MIB} MiB`);
  const size = roundUpTaskSize(cpu, memory);
  if (!size) reject('spec.containers[].resources', `no Fargate task size holds ${cpu} CPU units and ${memory} MiB`);
  const volumes = (spec.volumes ?? []).filter((v) => v.emptyDir).map((v) => ({ name: v.name }));

  return {
    family: familyFor(config.familyPrefix, pod.metadata?.namespace ?? '', pod.metadata?.name ?? ''),
    requiresCompatibilities: ['FARGATE'],
    networkMode: 'awsvpc',
    cpu: String(size.cpu),
    memory: String(size.memory),
    containerDefinitions: definitions,
    ...(volumes.length > 0 && { volumes }),
    ...(config.executionRoleArn && { executionRoleArn: config.executionRoleArn }),
    ...(config.taskRoleArn && { taskRoleArn: config.taskRoleArn }),
    runtimePlatform: { operatingSystemFamily: 'LINUX' },
    tags: podTags(pod, config, nodeName),
  };
}

/** RunTask of a registered definition: one Fargate task, startedBy and clientToken the pod UID. */
export function runTaskFor(pod: Pod, taskDefinitionArn: string, config: FargateConfig, nodeName: string, clientToken: string): RunTaskCommandInput {
  return {
    cluster: config.cluster,
    taskDefinition: taskDefinitionArn,
    launchType: 'FARGATE',
    platformVersion: config.platformVersion,
    count: 1,
    startedBy: pod.metadata?.uid,
    clientToken,
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: config.subnets,
        ...(config.securityGroups.length > 0 && { securityGroups: config.securityGroups }),
        assignPublicIp: config.assignPublicIp ? 'ENABLED' : 'DISABLED',
      },
    },
    tags: podTags(pod, config, nodeName),
  };
}
