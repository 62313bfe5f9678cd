// API object types as they travel on the wire. client-node's model classes declare
// timestamps as Date, but we parse responses with plain JSON.parse (its ObjectSerializer
// costs too much per object at scale), so timestamps are strings here.
import type * as k8s from '@kubernetes/client-node';

export type Wire<T> = T extends Date ? string : T extends (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

export type Pod = Wire<k8s.V1Pod>;
export type PodSpec = Wire<k8s.V1PodSpec>;
export type PodStatus = Wire<k8s.V1PodStatus>;
export type PodCondition = Wire<k8s.V1PodCondition>;
export type Container = Wire<k8s.V1Container>;
export type ContainerStatus = Wire<k8s.V1ContainerStatus>;
export type EnvVar = Wire<k8s.V1EnvVar>;
export type Volume = Wire<k8s.V1Volume>;
export type Node = Wire<k8s.V1Node>;
export type NodeStatus = Wire<k8s.V1NodeStatus>;
export type NodeCondition = Wire<k8s.V1NodeCondition>;
export type Taint = Wire<k8s.V1Taint>;
export type Toleration = Wire<k8s.V1Toleration>;
export type Lease = Wire<k8s.V1Lease>;
export type ConfigMap = Wire<k8s.V1ConfigMap>;
export type Secret = Wire<k8s.V1Secret>;
export type Service = Wire<k8s.V1Service>;
export type Namespace = Wire<k8s.V1Namespace>;
export type CoreEvent = Wire<k8s.CoreV1Event>;
export type ObjectMeta = Wire<k8s.V1ObjectMeta>;

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface Status {
  kind?: 'Status';
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}
export type NodeAddress = Wire<k8s.V1NodeAddress>;
export type NodeSystemInfo = Wire<k8s.V1NodeSystemInfo>;
export type KeyToPath = Wire<k8s.V1KeyToPath>;
export type Sysctl = Wire<k8s.V1Sysctl>;
