// The node's view of the cluster's Services and their endpoints: what kube-proxy and cluster DNS
// need, and nothing else. The catalog (service-catalog.ts) fills it from Service and EndpointSlice
// watches; the packet rules (service-rules.ts) and the DNS server (dns/) read it.

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface ServicePortInfo {
  /** '' for the one unnamed port. */
  name: string;
  protocol: ServiceProtocol;
  port: number;
}

export interface ServiceEndpoint {
  /** IPv4 address. */
  ip: string;
  /** EndpointSlice condition `ready` (absent counts as ready, as in the API). */
  ready: boolean;
  /** `serving`: ready or not, still answering (used when no endpoint is ready: terminating ones). */
  serving: boolean;
  terminating: boolean;
  /** The endpoint's hostname (a pod's spec.hostname with a matching subdomain) for headless DNS. */
  hostname?: string;
  nodeName?: string;
  /** Target pod's name, when the endpoint is a pod. */
  podName?: string;
  /** The slice's ports, by service port name: the resolved target port (named targetPorts resolved per pod). */
  ports: Record<string, { port: number; protocol: ServiceProtocol }>;
}

export interface ServiceInfo {
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** IPv4 cluster IPs; empty for headless (clusterIP: None) and ExternalName Services. */
  clusterIPs: string[];
  headless: boolean;
  /** spec.externalName for ExternalName Services. */
  externalName?: string;
  ports: ServicePortInfo[];
  /** spec.publishNotReadyAddresses: DNS publishes endpoints that are not ready. */
  publishNotReadyAddresses: boolean;
  /** From every EndpointSlice of the Service (IPv4 only), in a stable order. */
  endpoints: ServiceEndpoint[];
}

/** What the rules and DNS read: a consistent snapshot and a change signal. */
export interface ServiceView {
  /** Every Service, keyed `namespace/name`. The same object until something changes. */
  snapshot(): ReadonlyMap<string, ServiceInfo>;
  /** Called (coalesced) after the snapshot changed; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}
