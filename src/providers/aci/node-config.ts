// The virtual node an ACI provider registers: Linux or Windows (labels both kubernetes.io/os and
// the beta label older manifests select on, nodeInfo), capacity from the config over ACI's
// quota (when read), and the optional extra taint such as azure.com/aci:NoSchedule.
import type { NodeConfig } from '../provider.ts';
import type { Usage } from './arm-types.ts';
import { ACI_DEFAULT_CAPACITY, type AciConfig } from './config.ts';

/** Capacity ACI's usage API reports (limit − what others already use), by Kubernetes resource. */
export function capacityFromUsages(usages: Usage[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const u of usages) {
    if (u.limit === undefined) continue;
    const free = String(Math.max(0, u.limit - (u.currentValue ?? 0)));
    if (u.name?.value === 'ContainerGroups') out.pods = free;
    if (u.name?.value === 'StandardCores') out.cpu = free;
  }
  return out;
}

export function aciNodeConfig(config: AciConfig, quota: Record<string, string>): NodeConfig {
  const os = config.osType === 'Windows' ? 'windows' : 'linux';
  return {
    capacity: { ...ACI_DEFAULT_CAPACITY, ...quota, ...config.capacity },
    labels: { 'kubernetes.io/os': os, 'beta.kubernetes.io/os': os, 'kubernetes.azure.com/region': config.region, ...config.labels },
    ...(config.taint && { taints: [{ ...config.taint }] }),
    operatingSystem: os,
    architecture: 'amd64',
    nodeInfo: { osImage: config.osType === 'Windows' ? 'Windows Server (Azure Container Instances)' : 'Linux (Azure Container Instances)' },
  };
}
