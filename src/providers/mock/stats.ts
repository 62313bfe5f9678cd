// The mock's /stats/summary figures (steady synthetic usage per container) and its own counters.
import { createHash } from 'node:crypto';
import type { Container } from '../../kube/types.ts';
import { parseQuantity, milliValue, value as quantityValue } from '../../kube/quantity.ts';
import type { ContainerStats, PodStats } from '../provider.ts';
import type { PodRecord } from './lifecycle.ts';

function quantityOr(text: string | undefined, read: (q: ReturnType<typeof parseQuantity>) => bigint): number | undefined {
  if (text === undefined) return undefined;
  try {
    return Number(read(parseQuantity(String(text))));
  } catch {
    return undefined;
  }
}

/**
 * Steady synthetic usage for one container: a rate between 2m and 200m CPU and a working set
 * between 16 and 272 MiB picked from a hash of pod UID and container name, held under 80% of
 * the container's limits (requests when no limit); CPU time is that rate times the run time.
 */
export function syntheticStats(uid: string, container: Container, runningMs: number): ContainerStats {
  const seed = createHash('sha256').update(`${uid}/${container.name}`).digest();
  let milliCores = 2 + (seed.readUInt16BE(0) % 199);
  let memory = (16 + (seed.readUInt16BE(2) % 257)) * 1024 * 1024;
  const resources = container.resources;
  const cpuCap = quantityOr(resources?.limits?.cpu ?? resources?.requests?.cpu, milliValue);
  const memCap = quantityOr(resources?.limits?.memory ?? resources?.requests?.memory, quantityValue);
  if (cpuCap !== undefined && cpuCap > 0) milliCores = Math.max(1, Math.min(milliCores, Math.floor(cpuCap * 0.8)));
  if (memCap !== undefined && memCap > 0) memory = Math.max(1024 * 1024, Math.min(memory, Math.floor(memCap * 0.8)));
  const nanoCores = milliCores * 1_000_000;
  return {
    name: container.name,
    cpuUsageNanoCores: nanoCores,
    cpuUsageCoreNanoSeconds: Math.round((nanoCores * Math.max(runningMs, 0)) / 1000),
    memoryWorkingSetBytes: memory,
    memoryUsageBytes: memory + 4 * 1024 * 1024,
  };
}

/** A running pod's figures at `now`; undefined when it is not running. */
export function podStats(rec: PodRecord, now: number): PodStats | undefined {
  if (rec.stage !== 'running') return undefined;
  const meta = rec.resolved.pod.metadata;
  const containers: ContainerStats[] = [];
  (rec.resolved.pod.spec?.containers ?? []).forEach((c, i) => {
    const startedAt = rec.containers[i]?.startedAt;
    if (startedAt !== undefined) containers.push(syntheticStats(rec.uid, c, now - startedAt));
  });
  return { namespace: meta?.namespace ?? '', name: meta?.name ?? '', uid: rec.uid, containers };
}

/** The provider's counters (MockProvider.stats()), for the e2e and scale tests. */
export interface MockProviderStats {
  pods: number;
  phases: { Pending: number; Running: number; Succeeded: number; Failed: number };
  created: number;
  replaced: number;
  updated: number;
  /** deletePod calls with reason `deleted`. */
  deleted: number;
  /** deletePod calls with reason `finished`. */
  released: number;
  createFailures: number;
  /** createPod calls whose signal aborted while they waited; their pods were taken back. */
  createsAborted: number;
  deleteFailures: number;
  notifications: number;
  /** Pods loaded from the state file at construction. */
  restored: number;
  /** Snapshots written to the state file. */
  stateWrites: number;
  podIPsInUse: number;
  /** Lifecycle timers pending; a scale test can assert this falls to 0 once pods settle. */
  timers: number;
}
