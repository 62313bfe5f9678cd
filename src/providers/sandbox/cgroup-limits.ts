// The kubelet's conversions of a container's resources to cgroup values: CPU request →
// cpu.shares (milliCPU·1024/1000, at least 2) or cpu.weight (runc's shares → weight mapping);
// CPU limit → CFS quota over a 100 ms period (at least 1 ms); memory limit → bytes. The same for
// the pod's cgroup from pod-level resources.
import { milliValue, parseQuantity, value } from '../../kube/quantity.ts';
import type { Container, Pod } from '../../kube/types.ts';

export interface ContainerLimits {
  memoryBytes?: number;
  /** CFS quota per period, in µs; undefined: no CPU limit. */
  cpuQuotaUs?: number;
  cpuPeriodUs: number;
  /** cpu.shares (v1); v2 writes the matching cpu.weight. */
  cpuShares: number;
}

export const CPU_PERIOD_US = 100_000;
const MIN_SHARES = 2;
const MAX_SHARES = 262_144;
const MIN_QUOTA_US = 1000;

/** The kubelet's MilliCPUToShares. */
export function milliCpuToShares(milli: number): number {
  if (milli <= 0) return MIN_SHARES;
  return Math.min(Math.max(Math.floor((milli * 1024) / 1000), MIN_SHARES), MAX_SHARES);
}

/** The kubelet's MilliCPUToQuota (undefined: no limit). */
export function milliCpuToQuota(milli: number, periodUs = CPU_PERIOD_US): number | undefined {
  if (milli <= 0) return undefined;
  return Math.max(Math.floor((milli * periodUs) / 1000), MIN_QUOTA_US);
}

/** runc's cpu.shares → cpu.weight (cgroup v2). */
export function sharesToWeight(shares: number): number {
  if (shares <= 0) return 100;
  return Math.min(Math.max(1 + Math.floor(((shares - 2) * 9999) / 262_142), 1), 10_000);
}

function quantity(text: unknown, milli: boolean): number | undefined {
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  try {
    const q = parseQuantity(String(text));
    return Number(milli ? milliValue(q) : value(q));
  } catch {
    return undefined;
  }
}

/** The limits the kubelet would give this container's cgroup. */
export function containerLimits(container: Container | undefined): ContainerLimits {
  return limitsOf(container?.resources);
}

/**
 * The limits of the pod's cgroup from pod-level resources (`spec.resources`, the PodLevelResources
 * feature, beta and on by default since 1.34), as the kubelet sets them; undefined without them.
 * (The kubelet also caps the pod cgroup at the sum of its containers' limits when every container
 * has one; each container's own cgroup already holds it to its limit here, so that is not done.)
 */
export function podLimits(pod: Pod): ContainerLimits | undefined {
  const resources = pod.spec?.resources;
  if (!resources?.limits && !resources?.requests) return undefined;
  return limitsOf(resources);
}

function limitsOf(resources: Container['resources']): ContainerLimits {
  const limits = (resources?.limits ?? {}) as Record<string, unknown>;
  const requests = (resources?.requests ?? {}) as Record<string, unknown>;
  const memory = quantity(limits.memory, false);
  const cpuLimit = quantity(limits.cpu, true);
  // The API server defaults a missing request to the limit; do the same for pods that skipped it.
  const cpuRequest = quantity(requests.cpu, true) ?? cpuLimit ?? 0;
  const quota = cpuLimit !== undefined ? milliCpuToQuota(cpuLimit) : undefined;
  return {
    ...(memory !== undefined && memory > 0 && { memoryBytes: memory }),
    ...(quota !== undefined && { cpuQuotaUs: quota }),
    cpuPeriodUs: CPU_PERIOD_US,
    cpuShares: milliCpuToShares(cpuRequest),
  };
}
