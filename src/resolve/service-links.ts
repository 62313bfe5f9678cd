// Service environment variables (pkg/kubelet/envvars and getServiceEnvVarMap): the
// `kubernetes` service of the default namespace always, the pod namespace's services when
// enableServiceLinks is not false.
import type { Service } from '../kube/types.ts';
import type { ObjectSource } from './types.ts';

const MASTER_SERVICES = new Set(['kubernetes']);

function envName(serviceName: string): string {
  return serviceName.replaceAll('-', '_').toUpperCase();
}

function hasClusterIP(service: Service): boolean {
  const ip = service.spec?.clusterIP;
  return ip !== undefined && ip !== '' && ip !== 'None';
}

function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The variables of one service, in the kubelet's order. */
export function serviceEnvVars(service: Service): [string, string][] {
  const ip = service.spec?.clusterIP ?? '';
  const prefix = envName(service.metadata?.name ?? '');
  const ports = service.spec?.ports ?? [];
  const vars: [string, string][] = [[`${prefix}_SERVICE_HOST`, ip]];
  const first = ports[0];
  if (first) {
    vars.push([`${prefix}_SERVICE_PORT`, String(first.port)]);
    // Only the first port may be unnamed.
    for (const port of ports) if (port.name) vars.push([`${prefix}_SERVICE_PORT_${envName(port.name)}`, String(port.port)]);
  }
  // Docker-link style variables.
  ports.forEach((port, index) => {
    const protocol = (port.protocol || 'TCP').toLowerCase();
    const url = `${protocol}://${joinHostPort(ip, port.port)}`;
    if (index === 0) vars.push([`${prefix}_PORT`, url]);
    const portPrefix = `${prefix}_PORT_${port.port}_${protocol.toUpperCase()}`;
    vars.push([portPrefix, url], [`${portPrefix}_PROTO`, protocol], [`${portPrefix}_PORT`, String(port.port)], [`${portPrefix}_ADDR`, ip]);
  });
  return vars;
}

/**
 * The service variables for pods of `namespace`, from the services of that namespace and of
 * `default`. A same-named service in the pod's namespace wins over the master service, as in
 * the kubelet. Services are taken in name order so the result is stable.
 */
export function serviceEnvFor(namespace: string, enableServiceLinks: boolean, namespaceServices: Service[], defaultServices: Service[]): Map<string, string> {
  const chosen = new Map<string, Service>();
  for (const service of defaultServices) {
    const name = service.metadata?.name ?? '';
    if (hasClusterIP(service) && MASTER_SERVICES.has(name)) chosen.set(name, service);
  }
  if (enableServiceLinks) {
    for (const service of namespaceServices) if (hasClusterIP(service)) chosen.set(service.metadata?.name ?? '', service);
  }
  const env = new Map<string, string>();
  for (const name of [...chosen.keys()].sort()) {
    for (const [key, value] of serviceEnvVars(chosen.get(name)!)) env.set(key, value);
  }
  return env;
}

/** Lists what serviceEnvFor needs: the default namespace always, the pod's only with service links on. */
export async function loadServiceEnv(source: ObjectSource, namespace: string, enableServiceLinks: boolean): Promise<Map<string, string>> {
  const ownList = enableServiceLinks && namespace !== 'default';
  const [defaultServices, own] = await Promise.all([source.listServices('default'), ownList ? source.listServices(namespace) : []]);
  const namespaceServices = !enableServiceLinks ? [] : ownList ? own : defaultServices;
  return serviceEnvFor(namespace, enableServiceLinks, namespaceServices, defaultServices);
}
