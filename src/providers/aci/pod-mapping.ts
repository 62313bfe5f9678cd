// A pod → one ACI container group. Pure: everything a pod needs is checked here before any API
// call, and whatever ACI cannot run is a PodRejectedError naming the pod's field. See
// docs/aci-provider.md for the table of what maps where.
import { createHash } from 'node:crypto';
import { PodRejectedError } from '../../errors.ts';
import type { Container, Pod, Secret } from '../../kube/types.ts';
import { parseQuantity } from '../../kube/quantity.ts';
import type { ResolvedPod } from '../provider.ts';
import type {
  AciVolume,
  ContainerGroup,
  ContainerProbe,
  ContainerProperties,
  EnvironmentVariable,
  ImageRegistryCredential,
  InitContainerProperties,
  ResourceRequests,
  SecurityContext,
  VolumeMount,
} from './arm-types.ts';
import type { AciConfig } from './config.ts';

/** ARM tags on every group (ARM tag names may not contain "/", so no Kubernetes-style prefixes). */
export const TAG = {
  namespace: 'k8s-namespace',
  name: 'k8s-pod-name',
  uid: 'k8s-pod-uid',
  node: 'virtual-kubelet-node',
  created: 'k8s-creation-timestamp',
} as const;

/** Used when a container requests nothing (upstream's defaults too). */
export const DEFAULT_CPU = 1;
export const DEFAULT_MEMORY_GB = 1.5;

const GPU_RESOURCE = 'nvidia.com/gpu';

/**
 * `<namespace>-<name>` as a valid container group name (1-63 lowercase letters, digits and single
 * hyphens, not at either end); longer or rewritten names end in a hash of namespace/name so two
 * pods never share one.
 */
export function containerGroupName(namespace: string, name: string): string {
  const plain = `${namespace}-${name}`;
  const cleaned = plain
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  if (cleaned === plain && cleaned.length <= 63) return cleaned;
  const hash = createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 8);
  return `${cleaned.slice(0, 54).replace(/-$/, '')}-${hash}`;
}

function reject(field: string, message: string, reason = 'UnsupportedByACI'): PodRejectedError {
  return new PodRejectedError(reason, `${field}: ${message}`);
}

/** CPU in cores, rounded up to ACI's 0.01-core step. */
export function aciCpu(quantity: string, field: string): number {
  return roundUp(cores(quantity, field), 100);
}

/** Memory in ACI's GB (2^30 bytes, as upstream converts) rounded up to ACI's 0.1 GB step. */
export function aciMemoryGB(quantity: string, field: string): number {
  let q;
  try {
    q = parseQuantity(quantity);
  } catch {
    throw reject(field, `not a quantity: ${quantity}`);
  }
  const bytes = Number(q.num) / Number(q.den);
  return roundUp(bytes / 2 ** 30, 10);
}

function cores(quantity: string, field: string): number {
  try {
    const q = parseQuantity(quantity);
    return Number(q.num) / Number(q.den);
  } catch {
    throw reject(field, `not a quantity: ${quantity}`);
  }
}

function roundUp(value: number, steps: number): number {
  // The epsilon keeps 0.1 * 10 from rounding up to 0.2 through float error.
  return Math.ceil(value * steps - 1e-9) / steps;
}

interface GroupTotals {
  cpu: number;
  memoryGB: number;
}

function resources(container: Container, at: string, config: AciConfig, totals: GroupTotals): ContainerProperties['resources'] {
  const requests = container.resources?.requests ?? {};
  const limits = container.resources?.limits ?? {};
  for (const key of [...Object.keys(requests), ...Object.keys(limits)]) {
    if (!['cpu', 'memory', 'ephemeral-storage', GPU_RESOURCE].includes(key))
      throw reject(`${at}.resources.${key in requests ? 'requests' : 'limits'}.${key}`, 'ACI has no such resource');
  }
  // The API server fills requests from limits; a pod that set neither gets ACI's usual minimum.
  const cpu = requests.cpu ?? limits.cpu;
  const memory = requests.memory ?? limits.memory;
  const request: ResourceRequests = {
    cpu: cpu ? aciCpu(cpu, `${at}.resources.requests.cpu`) : DEFAULT_CPU,
    memoryInGB: memory ? aciMemoryGB(memory, `${at}.resources.requests.memory`) : DEFAULT_MEMORY_GB,
  };
  if (request.cpu <= 0) throw reject(`${at}.resources.requests.cpu`, 'ACI needs a positive CPU request');
  if (request.memoryInGB <= 0) throw reject(`${at}.resources.requests.memory`, 'ACI needs a positive memory request');
  totals.cpu += request.cpu;
  totals.memoryGB += request.memoryInGB;
  if (totals.cpu > config.maxCpu + 1e-9)
    throw reject(
      `${at}.resources.requests.cpu`,
      `the pod's containers request ${round2(totals.cpu)} CPUs, more than ACI's ${config.maxCpu} per container group`,
      'InsufficientCPU',
    );
  if (totals.memoryGB > config.maxMemoryGB + 1e-9)
    throw reject(
      `${at}.resources.requests.memory`,
      `the pod's containers request ${round2(totals.memoryGB)} GB, more than ACI's ${config.maxMemoryGB} GB per container group`,
      'InsufficientMemory',
    );
  const result: ContainerProperties['resources'] = { requests: request };
  const limit: NonNullable<ContainerProperties['resources']['limits']> = {};
  if (limits.cpu) limit.cpu = aciCpu(limits.cpu, `${at}.resources.limits.cpu`);
  if (limits.memory) limit.memoryInGB = aciMemoryGB(limits.memory, `${at}.resources.limits.memory`);
  const gpus = limits[GPU_RESOURCE] ?? requests[GPU_RESOURCE];
  if (gpus) {
    const count = cores(gpus, `${at}.resources.limits.${GPU_RESOURCE}`);
    if (!Number.isInteger(count) || count < 1) throw reject(`${at}.resources.limits.${GPU_RESOURCE}`, 'must be a whole number of GPUs');
    if (!config.gpuSku) throw reject(`${at}.resources.limits.${GPU_RESOURCE}`, 'this node has no GPU SKU configured (provider config gpuSku)');
    if (config.osType === 'Windows') throw reject(`${at}.resources.limits.${GPU_RESOURCE}`, 'ACI has no GPUs for Windows container groups');
    request.gpu = { count, sku: config.gpuSku };
    limit.gpu = { count, sku: config.gpuSku };
  }
  if (Object.keys(limit).length > 0) result.limits = limit;
  return result;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** command and args stay separate argv entries: ACI's command replaces the entrypoint, so args alone cannot be kept. */
function command(container: Container, at: string): string[] | undefined {
  if (container.args?.length && !container.command?.length)
    throw reject(`${at}.args`, "ACI cannot run args with the image's own entrypoint; set command as well (the entrypoint and its arguments)");
  if (!container.command?.length) return undefined;
  return [...container.command, ...(container.args ?? [])];
}

/**
 * Every resolved value is sent as a secureValue: the core hands over env with Secret-sourced
 * values already in place, so the provider cannot tell them apart, and a secureValue is never
 * shown in the group's properties.
 */
function environment(container: Container): EnvironmentVariable[] {
  return (container.env ?? []).map((e) => ({ name: e.name, secureValue: e.value ?? '' }));
}

function volumeMounts(container: Container, at: string, known: Set<string>): VolumeMount[] | undefined {
  if (!container.volumeMounts?.length) return undefined;
  return container.volumeMounts.map((m, i) => {
    if (m.subPath || m.subPathExpr) throw reject(`${at}.volumeMounts[${i}].subPath`, 'ACI mounts whole volumes only');
    if (m.mountPropagation && m.mountPropagation !== 'None') throw reject(`${at}.volumeMounts[${i}].mountPropagation`, 'ACI has no mount propagation');
    if (!known.has(m.name)) throw reject(`${at}.volumeMounts[${i}].name`, `volume "${m.name}" is not one ACI can provide`);
    return { name: m.name, mountPath: m.mountPath, ...(m.readOnly && { readOnly: true }) };
  });
}

type Probe = NonNullable<Container['livenessProbe']>;

function probe(p: Probe | undefined, at: string, container: Container): ContainerProbe | undefined {
  if (!p) return undefined;
  const timings = {
    ...(p.initialDelaySeconds !== undefined && { initialDelaySeconds: p.initialDelaySeconds }),
    ...(p.periodSeconds !== undefined && { periodSeconds: p.periodSeconds }),
    ...(p.failureThreshold !== undefined && { failureThreshold: p.failureThreshold }),
    ...(p.successThreshold !== undefined && { successThreshold: p.successThreshold }),
    ...(p.timeoutSeconds !== undefined && { timeoutSeconds: p.timeoutSeconds }),
  };
  if (p.exec) return { exec: { command: p.exec.command ?? [] }, ...timings };
  if (p.httpGet) {
    const port = typeof p.httpGet.port === 'number' ? p.httpGet.port : container.ports?.find((cp) => cp.name === p.httpGet!.port)?.containerPort;
    if (port === undefined) throw reject(`${at}.httpGet.port`, `no container port named "${String(p.httpGet.port)}"`);
    if (p.httpGet.host) throw reject(`${at}.httpGet.host`, 'ACI probes the container itself only');
    return {
      httpGet: {
        port,
        ...(p.httpGet.path && { path: p.httpGet.path }),
        ...(p.httpGet.scheme && { scheme: p.httpGet.scheme === 'HTTPS' ? 'https' : 'http' }),
        ...(p.httpGet.httpHeaders?.length && { httpHeaders: p.httpGet.httpHeaders.map((h) => ({ name: h.name, value: h.value })) }),
      },
      ...timings,
    };
  }
  const kind = p.tcpSocket ? 'tcpSocket' : p.grpc ? 'grpc' : 'handler';
  throw reject(`${at}.${kind}`, 'ACI probes are exec or httpGet only');
}

function securityContext(container: Container, at: string): SecurityContext | undefined {
  const sc = container.securityContext;
  if (!sc) return undefined;
  if (sc.privileged) throw reject(`${at}.securityContext.privileged`, 'ACI runs no privileged containers');
  if (sc.seLinuxOptions || sc.windowsOptions?.hostProcess) throw reject(`${at}.securityContext`, 'ACI has no SELinux options or host processes');
  const out: SecurityContext = {};
  if (sc.runAsUser !== undefined) out.runAsUser = sc.runAsUser;
  if (sc.runAsGroup !== undefined) out.runAsGroup = sc.runAsGroup;
  if (sc.allowPrivilegeEscalation !== undefined) out.allowPrivilegeEscalation = sc.allowPrivilegeEscalation;
  if (sc.capabilities?.add?.length || sc.capabilities?.drop?.length)
    out.capabilities = {
      ...(sc.capabilities.add?.length && { add: sc.capabilities.add }),
      ...(sc.capabilities.drop?.length && { drop: sc.capabilities.drop }),
    };
  return Object.keys(out).length > 0 ? out : undefined;
}

function ports(container: Container, at: string): ContainerProperties['ports'] {
  if (!container.ports?.length) return undefined;
  return container.ports.map((p, i) => {
    if (p.protocol === 'SCTP') throw reject(`${at}.ports[${i}].protocol`, 'ACI has TCP and UDP ports only');
    if (p.hostPort && p.hostPort !== p.containerPort)
      throw reject(`${at}.ports[${i}].hostPort`, "ACI exposes a port on the group's IP as is; hostPort must equal containerPort");
    if (p.hostIP) throw reject(`${at}.ports[${i}].hostIP`, 'ACI has no host IP to bind to');
    return { port: p.containerPort, protocol: p.protocol === 'UDP' ? 'UDP' : 'TCP' };
  });
}

const UNRESOLVED_VOLUME_TYPES = [
  'hostPath',
  'persistentVolumeClaim',
  'nfs',
  'iscsi',
  'csi',
  'ephemeral',
  'azureFile',
  'azureDisk',
  'gitRepo',
  'awsElasticBlockStore',
  'gcePersistentDisk',
  'cephfs',
  'rbd',
  'fc',
  'flexVolume',
  'glusterfs',
  'image',
];

function volumes(resolved: ResolvedPod): { volumes: AciVolume[]; names: Set<string> } {
  const out: AciVolume[] = [];
  const names = new Set<string>();
  (resolved.pod.spec?.volumes ?? []).forEach((v, i) => {
    const at = `spec.volumes[${i}]`;
    const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    const given = resolved.volumes.get(v.name);
    if (!given) {
      const type = UNRESOLVED_VOLUME_TYPES.find((t) => t in v) ?? kind;
      throw reject(`${at}.${type}`, `volume "${v.name}": ACI supports configMap, secret, downwardAPI, projected and emptyDir volumes`);
    }
    if (given.type === 'emptyDir') {
      if (given.medium === 'Memory') throw reject(`${at}.emptyDir.medium`, 'ACI has no memory-backed emptyDir');
      out.push({ name: v.name, emptyDir: {} });
    } else {
      const secret: Record<string, string> = {};
      for (const f of given.files) {
        if (f.path.includes('/'))
          throw reject(`${at}.${kind}`, `volume "${v.name}": file ${f.path} is in a subdirectory; an ACI secret volume holds files at its top level only`);
        secret[f.path] = Buffer.from(f.content).toString('base64');
      }
      out.push({ name: v.name, secret });
    }
    names.add(v.name);
  });
  return { volumes: out, names };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>;
}

/** imagePullSecrets (kubernetes.io/dockerconfigjson or dockercfg) → imageRegistryCredentials. */
export function registryCredentials(secrets: Secret[] | undefined): ImageRegistryCredential[] {
  const out: ImageRegistryCredential[] = [];
  for (const secret of secrets ?? []) {
    const raw = secret.data?.['.dockerconfigjson'] ?? secret.data?.['.dockercfg'];
    if (!raw) continue;
    let parsed: DockerConfig & DockerConfig['auths'];
    try {
      parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as DockerConfig & DockerConfig['auths'];
    } catch {
      continue;
    }
    const auths = secret.data?.['.dockerconfigjson'] ? (parsed.auths ?? {}) : (parsed as NonNullable<DockerConfig['auths']>);
    for (const [server, entry] of Object.entries(auths)) {
      let { username, password } = entry;
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) [username, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
      }
      const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
      if (username && !out.some((c) => c.server === host)) out.push({ server: host, username, password: password ?? '' });
    }
  }
  return out;
}

function checkPodLevel(pod: Pod, config: AciConfig): void {
  const spec = pod.spec!;
  if (spec.hostNetwork) throw reject('spec.hostNetwork', 'ACI container groups have no host network');
  if (spec.hostPID) throw reject('spec.hostPID', 'ACI container groups have no host PID namespace');
  if (spec.hostIPC) throw reject('spec.hostIPC', 'ACI container groups have no host IPC namespace');
  if (spec.shareProcessNamespace) throw reject('spec.shareProcessNamespace', 'ACI containers do not share a PID namespace');
  if (spec.ephemeralContainers?.length) throw reject('spec.ephemeralContainers', 'ACI cannot add containers to a running group');
  if (spec.os?.name && spec.os.name.toLowerCase() !== config.osType.toLowerCase())
    throw reject('spec.os.name', `this node runs ${config.osType} container groups`, 'UnsupportedPlatform');
  if (spec.securityContext?.sysctls?.length) throw reject('spec.securityContext.sysctls', 'ACI sets no sysctls');
}

/** The container group for a pod, or a PodRejectedError naming the first field ACI cannot honour. */
export function podToContainerGroup(resolved: ResolvedPod, config: AciConfig, nodeName: string): ContainerGroup {
  const pod = resolved.pod;
  const namespace = pod.metadata?.namespace ?? 'default';
  const name = pod.metadata?.name ?? '';
  const spec = pod.spec;
  if (!spec?.containers?.length) throw reject('spec.containers', 'a pod needs at least one container');
  checkPodLevel(pod, config);
  const { volumes: groupVolumes, names } = volumes(resolved);
  const totals: GroupTotals = { cpu: 0, memoryGB: 0 };
  const containers = spec.containers.map((c, i) => {
    const at = `spec.containers[${i}]`;
    if (c.startupProbe) throw reject(`${at}.startupProbe`, 'ACI has liveness and readiness probes only');
    if (c.lifecycle?.postStart || c.lifecycle?.preStop) throw reject(`${at}.lifecycle`, 'ACI has no container lifecycle hooks');
    if (c.workingDir) throw reject(`${at}.workingDir`, "ACI runs the image's working directory");
    const properties: ContainerProperties = {
      image: c.image ?? '',
      resources: resources(c, at, config, totals),
    };
    const argv = command(c, at);
    if (argv) properties.command = argv;
    const p = ports(c, at);
    if (p) properties.ports = p;
    const env = environment(c);
    if (env.length) properties.environmentVariables = env;
    const mounts = volumeMounts(c, at, names);
    if (mounts) properties.volumeMounts = mounts;
    const liveness = probe(c.livenessProbe, `${at}.livenessProbe`, c);
    if (liveness) properties.livenessProbe = liveness;
    const readiness = probe(c.readinessProbe, `${at}.readinessProbe`, c);
    if (readiness) properties.readinessProbe = readiness;
    const sc = securityContext(c, at);
    if (sc) properties.securityContext = sc;
    return { name: c.name, properties };
  });
  const initContainers = (spec.initContainers ?? []).map((c, i) => {
    const at = `spec.initContainers[${i}]`;
    if (c.restartPolicy === 'Always') throw reject(`${at}.restartPolicy`, 'ACI has no sidecar init containers');
    if (c.ports?.length) throw reject(`${at}.ports`, 'ACI init containers expose no ports');
    const properties: InitContainerProperties = { image: c.image ?? '' };
    const argv = command(c, at);
    if (argv) properties.command = argv;
    const env = environment(c);
    if (env.length) properties.environmentVariables = env;
    const mounts = volumeMounts(c, at, names);
    if (mounts) properties.volumeMounts = mounts;
    const sc = securityContext(c, at);
    if (sc) properties.securityContext = sc;
    return { name: c.name, properties };
  });

  const allPorts = containers.flatMap((c) => c.properties.ports ?? []);
  const uniquePorts = allPorts.filter((p, i) => allPorts.findIndex((q) => q.port === p.port && q.protocol === p.protocol) === i);
  const group: ContainerGroup = {
    location: config.region,
    tags: {
      [TAG.namespace]: namespace,
      [TAG.name]: name,
      [TAG.uid]: pod.metadata?.uid ?? '',
      [TAG.node]: nodeName,
      ...(pod.metadata?.creationTimestamp && { [TAG.created]: pod.metadata.creationTimestamp }),
    },
    properties: {
      containers,
      osType: config.osType,
      restartPolicy: (spec.restartPolicy ?? 'Always') as 'Always' | 'OnFailure' | 'Never',
    },
  };
  const props = group.properties;
  if (initContainers.length) props.initContainers = initContainers;
  if (groupVolumes.length) props.volumes = groupVolumes;
  const credentials = registryCredentials(resolved.pullSecrets);
  if (credentials.length) props.imageRegistryCredentials = credentials;
  // A group in a subnet gets a private IP (it needs one for pod-to-pod traffic); otherwise only exposed ports get a public one.
  if (config.subnetIds.length) {
    props.subnetIds = config.subnetIds.map((id) => ({ id }));
    props.ipAddress = { type: 'Private', ports: uniquePorts };
  } else if (uniquePorts.length) {
    props.ipAddress = { type: 'Public', ports: uniquePorts };
  }
  const podDns = spec.dnsPolicy === 'None' ? spec.dnsConfig : undefined;
  if (podDns?.nameservers?.length) {
    props.dnsConfig = {
      nameServers: podDns.nameservers,
      ...(podDns.searches?.length && { searchDomains: podDns.searches.join(' ') }),
      ...(podDns.options?.length && { options: podDns.options.map((o) => (o.value ? `${o.name}:${o.value}` : o.name)).join(' ') }),
    };
  } else if (config.dnsConfig) {
    props.dnsConfig = { ...config.dnsConfig };
  }
  if (config.logAnalytics) {
    props.diagnostics = {
      logAnalytics: {
        workspaceId: config.logAnalytics.workspaceId,
        workspaceKey: config.logAnalytics.workspaceKey ?? '',
        ...(config.logAnalytics.logType && { logType: config.logAnalytics.logType }),
      },
    };
  }
  return group;
}
