// What resolution reads from the cluster and the node.
import type { ConfigMap, Secret, Service } from '../kube/types.ts';

export interface TokenRequest {
  /** Absent: the API server's default audiences. */
  audience?: string;
  expirationSeconds: number;
  podName: string;
  podUid: string;
}

export interface ObjectSource {
  /** undefined when the ConfigMap does not exist; other failures throw. */
  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined>;
  /** undefined when the Secret does not exist; other failures throw. */
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  listServices(namespace: string): Promise<Service[]>;
  createServiceAccountToken(namespace: string, serviceAccount: string, request: TokenRequest): Promise<{ token: string; expirationTimestamp: string }>;
}

export interface ResolveContext {
  nodeName: string;
  hostIP: string;
  /** All host IPs, primary first; defaults to [hostIP]. */
  hostIPs?: string[];
  podIP?: string;
  podIPs?: string[];
  /** Node allocatable, e.g. { cpu: '20', memory: '100Gi' }: the downward API's default for unset limits. */
  nodeAllocatable: Record<string, string>;
  /**
   * Volume types (keys of the pod's volume source, e.g. 'hostPath') the provider handles
   * itself: they are left out of ResolvedPod.volumes instead of failing the pod.
   */
  providerVolumeTypes?: readonly string[];
}

/** Something the kubelet reports as a Warning event but does not stop the pod for. */
export interface ResolveWarning {
  reason: string;
  message: string;
}
