// What a pod is charged: the resources it is billed for (its effective requests, as the scheduler
// counts them, or the Fargate task size they round up to) times the table's per-second prices over
// its running time, at least the table's minimum, plus the per-start price.
import type { Container, Pod } from '../kube/types.ts';
import { milliValue, parseQuantity, value } from '../kube/quantity.ts';
import { roundUpTaskSize } from '../providers/fargate/task-size.ts';
import type { PriceTable } from './prices.ts';

export interface BilledResources {
  vcpu: number;
  gib: number;
  gpu: number;
}

const GPU_RESOURCES = ['nvidia.com/gpu', 'amd.com/gpu'];

function quantity(text: string | undefined, milli: boolean): number {
  if (!text) return 0;
  try {
    const q = parseQuantity(text);
    return milli ? Number(milliValue(q)) / 1000 : Number(value(q));
  } catch {
    return 0;
  }
}

function containerRequests(c: Container): BilledResources {
  // The API server copies limits into missing requests; a container with neither requests nothing.
  const requests = { ...c.resources?.limits, ...c.resources?.requests };
  return {
    vcpu: quantity(requests.cpu, true),
    gib: quantity(requests.memory, false) / 2 ** 30,
    gpu: GPU_RESOURCES.reduce((n, name) => n + quantity(requests[name], false), 0),
  };
}

/** The pod's effective requests: max(sum of containers, largest init container) plus overhead, per resource. */
export function podRequests(pod: Pod): BilledResources {
  const spec = pod.spec;
  const sum: BilledResources = { vcpu: 0, gib: 0, gpu: 0 };
  for (const c of spec?.containers ?? []) {
    const r = containerRequests(c);
    sum.vcpu += r.vcpu;
    sum.gib += r.gib;
    sum.gpu += r.gpu;
  }
  for (const c of spec?.initContainers ?? []) {
    const r = containerRequests(c);
    sum.vcpu = Math.max(sum.vcpu, r.vcpu);
    sum.gib = Math.max(sum.gib, r.gib);
    sum.gpu = Math.max(sum.gpu, r.gpu);
  }
  const overhead = (spec as { overhead?: Record<string, string> } | undefined)?.overhead;
  sum.vcpu += quantity(overhead?.cpu, true);
  sum.gib += quantity(overhead?.memory, false) / 2 ** 30;
  return sum;
}

/** What the table bills for these requests. */
export function billedResources(requests: BilledResources, prices: PriceTable): BilledResources {
  if (prices.allocation === 'requests') return requests;
  const size = roundUpTaskSize(Math.ceil(requests.vcpu * 1024), Math.ceil(requests.gib * 1024));
  // Larger than any Fargate task: Fargate would refuse it; bill the requests.
  return size ? { vcpu: size.cpu / 1024, gib: size.memory / 1024, gpu: requests.gpu } : requests;
}

/** Currency per second of running. */
export function ratePerSecond(resources: BilledResources, prices: PriceTable): number {
  return resources.vcpu * prices.vcpuSecond + resources.gib * prices.gibSecond + resources.gpu * prices.gpuSecond;
}

/** The charge for a pod that has run `seconds` (so far, or in all). */
export function charge(resources: BilledResources, prices: PriceTable, seconds: number): number {
  return prices.podStart + ratePerSecond(resources, prices) * Math.max(seconds, prices.minimumSeconds);
}
