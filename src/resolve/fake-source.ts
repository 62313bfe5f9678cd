// An in-memory ObjectSource for the resolve tests.
import type { ConfigMap, Pod, Secret, Service } from '../kube/types.ts';
import type { ObjectSource, ResolveContext, TokenRequest } from './types.ts';

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export interface FakeSource extends ObjectSource {
  configMaps: Map<string, ConfigMap>;
  secrets: Map<string, Secret>;
  services: Map<string, Service[]>;
  tokenRequests: { namespace: string; serviceAccount: string; request: TokenRequest }[];
  calls: string[];
}

export function fakeSource(init: { configMaps?: ConfigMap[]; secrets?: Secret[]; services?: Service[] } = {}): FakeSource {
  const key = (o: { metadata?: { namespace?: string; name?: string } }) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
  const source: FakeSource = {
    configMaps: new Map((init.configMaps ?? []).map((o) => [key(o), o])),
    secrets: new Map((init.secrets ?? []).map((o) => [key(o), o])),
    services: new Map(),
    tokenRequests: [],
    calls: [],
    async getConfigMap(namespace, name) {
      source.calls.push(`configmap ${namespace}/${name}`);
      return source.configMaps.get(`${namespace}/${name}`);
    },
    async getSecret(namespace, name) {
      source.calls.push(`secret ${namespace}/${name}`);
      return source.secrets.get(`${namespace}/${name}`);
    },
    async listServices(namespace) {
      source.calls.push(`services ${namespace}`);
      return source.services.get(namespace) ?? [];
    },
    async createServiceAccountToken(namespace, serviceAccount, request) {
      source.tokenRequests.push({ namespace, serviceAccount, request });
      return { token: `token-for-${serviceAccount}`, expirationTimestamp: '2030-01-01T01:00:00Z' };
    },
  };
  for (const service of init.services ?? []) {
    const ns = service.metadata?.namespace ?? 'default';
    source.services.set(ns, [...(source.services.get(ns) ?? []), service]);
  }
  return source;
}

export function configMap(name: string, data: Record<string, string>, binaryData?: Record<string, string>, namespace = 'ns'): ConfigMap {
  return { metadata: { name, namespace }, data, ...(binaryData ? { binaryData } : {}) };
}

/** A Secret whose data is given in clear text and stored base64-encoded, as on the wire. */
export function secret(name: string, data: Record<string, string>, namespace = 'ns'): Secret {
  return { metadata: { name, namespace }, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

export function service(name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[], namespace = 'ns'): Service {
  return { metadata: { name, namespace }, spec: { clusterIP, ports } };
}

export const context: ResolveContext = {
  nodeName: 'vk-node',
  hostIP: '10.0.0.1',
  podIP: '10.244.0.5',
  podIPs: ['10.244.0.5', 'fd00::5'],
  nodeAllocatable: { cpu: '8', memory: '16Gi', 'ephemeral-storage': '100Gi', pods: '110' },
};

export function pod(spec: Partial<NonNullable<Pod['spec']>> = {}, metadata: Pod['metadata'] = {}): Pod {
  return {
    metadata: { name: 'web', namespace: 'ns', uid: 'uid-1', labels: { app: 'web' }, ...metadata },
    spec: { nodeName: 'vk-node', serviceAccountName: 'sa', containers: [{ name: 'main', image: 'nginx' }], ...spec },
  };
}
