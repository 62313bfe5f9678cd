// Watches every Service and EndpointSlice of the cluster (what kube-proxy and cluster DNS watch)
// and keeps only what the packet rules and DNS read: the informers' transforms cut each object
// down to a few fields before it is cached, so a cluster with thousands of Services costs little.
// Changes are coalesced: the snapshot is rebuilt for the Services that changed, at most once per
// `coalesceMs`, and listeners run after each rebuild.
import type { KubeClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import type { KubeObject, Service } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { ServiceEndpoint, ServiceInfo, ServicePortInfo, ServiceProtocol, ServiceView } from './services.ts';
import type * as k8s from '@kubernetes/client-node';
import type { Wire } from '../kube/types.ts';

export type EndpointSlice = Wire<k8s.V1EndpointSlice>;

const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const DEFAULT_COALESCE_MS = 20;

/** Keeps only the fields ServiceInfo is built from (the informer caches what is left). */
export function trimService(obj: KubeObject): void {
  const svc = obj as Service;
  const spec = svc.spec ?? {};
  svc.metadata = { name: svc.metadata?.name, namespace: svc.metadata?.namespace, resourceVersion: svc.metadata?.resourceVersion };
  svc.spec = {
    type: spec.type,
    clusterIP: spec.clusterIP,
    clusterIPs: spec.clusterIPs,
    externalName: spec.externalName,
    publishNotReadyAddresses: spec.publishNotReadyAddresses,
    ports: spec.ports?.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port })),
  };
  delete svc.status;
}

export function trimEndpointSlice(obj: KubeObject): void {
  const slice = obj as EndpointSlice;
  const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  slice.metadata = {
    name: slice.metadata?.name,
    namespace: slice.metadata?.namespace,
    resourceVersion: slice.metadata?.resourceVersion,
    labels: serviceName ? { [SERVICE_NAME_LABEL]: serviceName } : {},
  };
  // The node's rules and DNS are IPv4: other address families' endpoints are not kept.
  slice.endpoints = (slice.addressType === 'IPv4' ? (slice.endpoints ?? []) : []).map((e) => ({
    addresses: e.addresses,
    conditions: e.conditions,
    hostname: e.hostname,
    nodeName: e.nodeName,
    targetRef: e.targetRef?.kind === 'Pod' ? { kind: 'Pod', name: e.targetRef.name } : undefined,
  }));
  slice.ports = slice.ports?.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port }));
}

function protocolOf(value: string | undefined): ServiceProtocol {
  return value === 'UDP' || value === 'SCTP' ? value : 'TCP';
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** One ServiceInfo from a Service and its EndpointSlices (pure; endpoints ordered by address). */
export function buildServiceInfo(service: Service, slices: readonly EndpointSlice[]): ServiceInfo {
  const spec = service.spec ?? {};
  const type = (spec.type ?? 'ClusterIP') as ServiceInfo['type'];
  const headless = spec.clusterIP === 'None';
  const clusterIPs = type === 'ExternalName' || headless ? [] : (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : [])).filter((ip) => IPV4.test(ip));
  const ports: ServicePortInfo[] = (spec.ports ?? []).map((p) => ({ name: p.name ?? '', protocol: protocolOf(p.protocol), port: p.port }));
  const byAddress = new Map<string, ServiceEndpoint>();
  for (const slice of slices) {
    const slicePorts: ServiceEndpoint['ports'] = {};
    for (const p of slice.ports ?? []) if (p.port !== undefined) slicePorts[p.name ?? ''] = { port: p.port, protocol: protocolOf(p.protocol) };
    for (const e of slice.endpoints ?? []) {
      const conditions = e.conditions ?? {};
      for (const ip of e.addresses) {
        if (!IPV4.test(ip)) continue;
        const existing = byAddress.get(ip);
        const endpoint: ServiceEndpoint = existing ?? {
          ip,
          // The API: a nil `ready` means ready; `serving` defaults to `ready`.
          ready: conditions.ready ?? true,
          serving: conditions.serving ?? conditions.ready ?? true,
          terminating: conditions.terminating ?? false,
          hostname: e.hostname,
          nodeName: e.nodeName,
          podName: e.targetRef?.name,
          ports: {},
        };
        Object.assign(endpoint.ports, slicePorts);
        byAddress.set(ip, endpoint);
      }
    }
  }
  const endpoints = [...byAddress.values()].sort((a, b) => compareIPv4(a.ip, b.ip));
  return {
    namespace: service.metadata?.namespace ?? '',
    name: service.metadata?.name ?? '',
    type,
    clusterIPs,
    headless,
    externalName: type === 'ExternalName' ? spec.externalName : undefined,
    ports,
    publishNotReadyAddresses: spec.publishNotReadyAddresses ?? false,
    endpoints,
  };
}

function compareIPv4(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

export interface ServiceCatalogOptions {
  client: KubeClient;
  log: Logger;
  coalesceMs?: number;
}

export class ServiceCatalog implements ServiceView {
  private readonly services: Informer<Service>;
  private readonly slices: Informer<EndpointSlice>;
  /** Service key → keys of its slices. */
  private readonly slicesByService = new Map<string, Set<string>>();
  private current = new Map<string, ServiceInfo>();
  private readonly dirty = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly coalesceMs: number;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(options: ServiceCatalogOptions) {
    this.log = options.log.child({ component: 'service-catalog' });
    this.coalesceMs = options.coalesceMs ?? DEFAULT_COALESCE_MS;
    this.services = new Informer<Service>({ client: options.client, path: '/api/v1/services', log: this.log, transform: trimService });
    this.slices = new Informer<EndpointSlice>({
      client: options.client,
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      labelSelector: SERVICE_NAME_LABEL,
      log: this.log,
      transform: trimEndpointSlice,
    });
    this.services.addHandlers({
      onAdd: (svc) => this.markDirty(keyOf(svc)),
      onUpdate: (_old, svc) => this.markDirty(keyOf(svc)),
      onDelete: (svc) => this.markDirty(keyOf(svc)),
    });
    this.slices.addHandlers({
      onAdd: (slice) => this.sliceChanged(slice, true),
      onUpdate: (old, slice) => {
        this.sliceChanged(old, false);
        this.sliceChanged(slice, true);
      },
      onDelete: (slice) => this.sliceChanged(slice, false),
    });
  }

  /** Starts both watches and resolves once both listed (the first snapshot is complete). */
  async start(signal?: AbortSignal): Promise<void> {
    this.services.start();
    this.slices.start();
    await Promise.all([this.services.waitForSync(signal), this.slices.waitForSync(signal)]);
    this.flush();
  }

  async stop(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.listeners.clear();
    await Promise.all([this.services.stop(), this.slices.stop()]);
  }

  snapshot(): ReadonlyMap<string, ServiceInfo> {
    return this.current;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private sliceChanged(slice: EndpointSlice, present: boolean): void {
    const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!serviceName) return;
    const serviceKey = `${slice.metadata?.namespace}/${serviceName}`;
    const sliceKey = keyOf(slice);
    let keys = this.slicesByService.get(serviceKey);
    if (present) {
      if (!keys) this.slicesByService.set(serviceKey, (keys = new Set()));
      keys.add(sliceKey);
    } else if (keys) {
      keys.delete(sliceKey);
      if (keys.size === 0) this.slicesByService.delete(serviceKey);
    }
    this.markDirty(serviceKey);
  }

  private markDirty(serviceKey: string): void {
    this.dirty.add(serviceKey);
    if (!this.services.hasSynced() || !this.slices.hasSynced() || this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, this.coalesceMs);
  }

  private flush(): void {
    if (this.dirty.size === 0) return;
    const next = new Map(this.current);
    for (const key of this.dirty) {
      const service = this.services.get(key);
      if (!service) {
        next.delete(key);
        continue;
      }
      const slices = [...(this.slicesByService.get(key) ?? [])].map((k) => this.slices.get(k)).filter((s) => s !== undefined);
      next.set(key, buildServiceInfo(service, slices));
    }
    this.dirty.clear();
    this.current = next;
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (err) {
        this.log.error({ err }, 'service change listener failed');
      }
    }
  }
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace}/${obj.metadata?.name}`;
}
