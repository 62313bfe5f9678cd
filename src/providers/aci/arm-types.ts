// The ACI resources as the ARM REST API (Microsoft.ContainerInstance 2023-05-01) carries them:
// the subset of containerInstance.json's definitions this provider writes and reads. Names and
// shapes follow the published document; test/contract/aci validates every request against it.

export const ACI_API_VERSION = '2023-05-01';

export interface ContainerState {
  state?: string;
  startTime?: string;
  exitCode?: number;
  finishTime?: string;
  detailStatus?: string;
}

export interface AciEvent {
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  name?: string;
  message?: string;
  type?: string;
}

export interface ContainerInstanceView {
  restartCount?: number;
  currentState?: ContainerState;
  previousState?: ContainerState;
  events?: AciEvent[];
}

export interface EnvironmentVariable {
  name: string;
  value?: string;
  secureValue?: string;
}

export interface GpuResource {
  count: number;
  sku: 'K80' | 'P100' | 'V100';
}

export interface ResourceRequests {
  cpu: number;
  memoryInGB: number;
  gpu?: GpuResource;
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
}

export interface ContainerProbe {
  exec?: { command?: string[] };
  httpGet?: { path?: string; port: number; scheme?: 'http' | 'https'; httpHeaders?: { name?: string; value?: string }[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
  timeoutSeconds?: number;
}

export interface SecurityContext {
  privileged?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  runAsGroup?: number;
  runAsUser?: number;
}

export interface ContainerProperties {
  image: string;
  command?: string[];
  ports?: { port: number; protocol?: 'TCP' | 'UDP' }[];
  environmentVariables?: EnvironmentVariable[];
  resources: { requests: ResourceRequests; limits?: Partial<ResourceRequests> };
  volumeMounts?: VolumeMount[];
  livenessProbe?: ContainerProbe;
  readinessProbe?: ContainerProbe;
  securityContext?: SecurityContext;
  instanceView?: ContainerInstanceView;
}

export interface InitContainerProperties {
  image?: string;
  command?: string[];
  environmentVariables?: EnvironmentVariable[];
  volumeMounts?: VolumeMount[];
  securityContext?: SecurityContext;
  instanceView?: ContainerInstanceView;
}

export interface AciVolume {
  name: string;
  emptyDir?: Record<string, never>;
  /** File name → base64 content. */
  secret?: Record<string, string>;
  azureFile?: unknown;
  gitRepo?: unknown;
}

export interface ImageRegistryCredential {
  server: string;
  username?: string;
  password?: string;
}

export interface ContainerGroupProperties {
  provisioningState?: string;
  containers: { name: string; properties: ContainerProperties }[];
  initContainers?: { name: string; properties: InitContainerProperties }[];
  imageRegistryCredentials?: ImageRegistryCredential[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  ipAddress?: { ports: { port: number; protocol?: 'TCP' | 'UDP' }[]; type: 'Public' | 'Private'; ip?: string; dnsNameLabel?: string; fqdn?: string };
  osType: 'Windows' | 'Linux';
  volumes?: AciVolume[];
  instanceView?: { events?: AciEvent[]; state?: string };
  diagnostics?: { logAnalytics?: { workspaceId: string; workspaceKey: string; logType?: 'ContainerInsights' | 'ContainerInstanceLogs' } };
  subnetIds?: { id: string; name?: string }[];
  dnsConfig?: { nameServers: string[]; searchDomains?: string; options?: string };
}

export interface ContainerGroup {
  id?: string;
  name?: string;
  type?: string;
  location?: string;
  tags?: Record<string, string>;
  properties: ContainerGroupProperties;
}

export interface ContainerGroupList {
  value?: ContainerGroup[];
  nextLink?: string;
}

export interface Usage {
  unit?: string;
  currentValue?: number;
  limit?: number;
  name?: { value?: string; localizedValue?: string };
}

export interface ExecResponse {
  webSocketUri?: string;
  password?: string;
}

export interface CloudError {
  error?: { code?: string; message?: string; target?: string };
}
