// /stats/summary (the kubelet's Summary API, stats/v1alpha1) and /metrics/resource (the
// kubelet's resource metrics, what metrics-server scrapes), both from provider.getStats() and
// the provider's pods (for start times). The node's figures are the sum of its pods' plus, where
// given, the node's own overhead (this process, as a kubelet's node figures include the kubelet
// and the runtime: it also keeps an empty node in metrics-server, which drops a node reporting
// zero); its CPU counter also keeps the CPU time of pods that are gone, so it never goes backwards.
import type { ContainerStatus, Pod } from '../kube/types.ts';
import type { PodStats, Provider } from '../providers/provider.ts';
import { parseQuantity, value } from '../kube/quantity.ts';
import { rfc3339 } from '../version.ts';

export interface CpuStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}

export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
}

export interface ContainerSummary {
  name: string;
  startTime: string;
  cpu?: CpuStats;
  memory?: MemoryStats;
}

export interface PodSummary {
  podRef: { name: string; namespace: string; uid: string };
  startTime?: string;
  containers: ContainerSummary[];
  cpu?: CpuStats;
  memory?: MemoryStats;
}

export interface Summary {
  node: { nodeName: string; startTime: string; cpu?: CpuStats; memory?: MemoryStats };
  pods: PodSummary[];
}

function startedAt(status: ContainerStatus | undefined): string | undefined {
  return status?.state?.running?.startedAt ?? undefined;
}

function sum(values: (number | undefined)[]): number | undefined {
  const present = values.filter((v): v is number => v !== undefined);
  return present.length ? present.reduce((a, b) => a + b, 0) : undefined;
}

function memoryBytes(quantity: string | undefined): number | undefined {
  if (!quantity) return undefined;
  try {
    return Number(value(parseQuantity(quantity)));
  } catch {
    return undefined;
  }
}

/** What the node itself uses besides its pods. */
export interface SystemUsage {
  cpuCoreNanoSeconds: number;
  workingSetBytes: number;
}

/** This process's own CPU time and resident set. */
export function processUsage(): SystemUsage {
  const { user, system } = process.cpuUsage();
  return { cpuCoreNanoSeconds: (user + system) * 1000, workingSetBytes: process.memoryUsage.rss() };
}

export class StatsSource {
  private readonly provider: Provider;
  private readonly nodeName: string;
  private readonly startTime: Date;
  private readonly now: () => Date;
  /** Last CPU time seen per pod UID, and the total of pods no longer reported. */
  private readonly lastPodCpu = new Map<string, number>();
  private retiredCpu = 0;
  private readonly system: (() => SystemUsage) | undefined;
  private lastSystem: { at: number; cpu: number } | undefined;

  constructor(provider: Provider, nodeName: string, options: { startTime?: Date; now?: () => Date; system?: () => SystemUsage } = {}) {
    this.provider = provider;
    this.nodeName = nodeName;
    this.startTime = options.startTime ?? new Date();
    this.now = options.now ?? (() => new Date());
    this.system = options.system;
  }

  /** The node's own usage and its rate since the last summary (since start the first time). */
  private systemSample(now: Date): { cores: number; cpuTime: number; workingSet: number } {
    if (!this.system) return { cores: 0, cpuTime: 0, workingSet: 0 };
    const usage = this.system();
    const previous = this.lastSystem ?? { at: this.startTime.getTime(), cpu: 0 };
    const elapsedNs = (now.getTime() - previous.at) * 1e6;
    const cores = elapsedNs > 0 ? Math.max(0, Math.round(((usage.cpuCoreNanoSeconds - previous.cpu) / elapsedNs) * 1e9)) : 0;
    this.lastSystem = { at: now.getTime(), cpu: usage.cpuCoreNanoSeconds };
    return { cores, cpuTime: usage.cpuCoreNanoSeconds, workingSet: usage.workingSetBytes };
  }

  get supported(): boolean {
    return typeof this.provider.getStats === 'function';
  }

  async summary(signal: AbortSignal): Promise<Summary> {
    const now = this.now();
    const time = rfc3339(now);
    const [pods, stats] = await Promise.all([
      this.provider.listPods({ signal }),
      this.provider.getStats ? this.provider.getStats() : Promise.resolve(undefined),
    ]);
    const byUid = new Map<string, PodStats>();
    for (const s of stats ?? []) byUid.set(s.uid, s);
    const out: PodSummary[] = [];
    const seen = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata?.uid ?? '';
      const podStats = byUid.get(uid);
      if (pod.status?.phase !== 'Running' && !podStats) continue;
      seen.add(uid);
      out.push(this.podSummary(pod, podStats, time));
    }
    // Pods the provider reports stats for but no longer lists (going away): still counted.
    for (const s of stats ?? []) {
      if (seen.has(s.uid)) continue;
      seen.add(s.uid);
      out.push(this.podSummary({ metadata: { name: s.name, namespace: s.namespace, uid: s.uid } }, s, time));
    }
    // Keep the node's CPU counter monotonic across pods that disappear.
    for (const [uid, cpu] of this.lastPodCpu) {
      if (!seen.has(uid)) {
        this.retiredCpu += cpu;
        this.lastPodCpu.delete(uid);
      }
    }
    for (const p of out) if (p.cpu?.usageCoreNanoSeconds !== undefined) this.lastPodCpu.set(p.podRef.uid, p.cpu.usageCoreNanoSeconds);

    const node: Summary['node'] = { nodeName: this.nodeName, startTime: rfc3339(this.startTime) };
    if (stats) {
      const system = this.systemSample(now);
      const cores = (sum(out.map((p) => p.cpu?.usageNanoCores)) ?? 0) + system.cores;
      const cpuTime = (sum(out.map((p) => p.cpu?.usageCoreNanoSeconds)) ?? 0) + this.retiredCpu + system.cpuTime;
      node.cpu = { time, usageNanoCores: cores, usageCoreNanoSeconds: cpuTime };
      const podsWorkingSet = sum(out.map((p) => p.memory?.workingSetBytes)) ?? 0;
      const workingSet = podsWorkingSet + system.workingSet;
      const usage = (sum(out.map((p) => p.memory?.usageBytes)) ?? podsWorkingSet) + system.workingSet;
      const config = this.provider.nodeConfig?.();
      const allocatable = memoryBytes(config?.allocatable?.memory ?? config?.capacity.memory);
      node.memory = {
        time,
        workingSetBytes: workingSet,
        usageBytes: usage,
        ...(allocatable !== undefined && { availableBytes: Math.max(allocatable - workingSet, 0) }),
      };
    }
    return { node, pods: out };
  }

  private podSummary(pod: Pod, stats: PodStats | undefined, time: string): PodSummary {
    const meta = pod.metadata;
    const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
    const containers: ContainerSummary[] = [];
    const names = new Set([...(stats?.containers.map((c) => c.name) ?? []), ...[...statuses.values()].filter((s) => startedAt(s)).map((s) => s.name)]);
    for (const name of names) {
      const c = stats?.containers.find((x) => x.name === name);
      const summary: ContainerSummary = { name, startTime: startedAt(statuses.get(name)) ?? pod.status?.startTime ?? time };
      if (c?.cpuUsageNanoCores !== undefined || c?.cpuUsageCoreNanoSeconds !== undefined) {
        summary.cpu = { time, usageNanoCores: c.cpuUsageNanoCores, usageCoreNanoSeconds: c.cpuUsageCoreNanoSeconds };
      }
      if (c?.memoryWorkingSetBytes !== undefined || c?.memoryUsageBytes !== undefined) {
        summary.memory = { time, workingSetBytes: c.memoryWorkingSetBytes, usageBytes: c.memoryUsageBytes ?? c.memoryWorkingSetBytes };
      }
      containers.push(summary);
    }
    containers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const out: PodSummary = {
      podRef: { name: meta?.name ?? '', namespace: meta?.namespace ?? '', uid: meta?.uid ?? '' },
      ...(pod.status?.startTime && { startTime: pod.status.startTime }),
      containers,
    };
    if (stats) {
      out.cpu = {
        time,
        usageNanoCores: sum(containers.map((c) => c.cpu?.usageNanoCores)),
        usageCoreNanoSeconds: sum(containers.map((c) => c.cpu?.usageCoreNanoSeconds)),
      };
      out.memory = {
        time,
        workingSetBytes: sum(containers.map((c) => c.memory?.workingSetBytes)),
        usageBytes: sum(containers.map((c) => c.memory?.usageBytes)),
      };
    }
    return out;
  }
}

// --- /metrics/resource in the Prometheus text format, names and help as the kubelet's
// (pkg/kubelet/metrics/collectors/resource_metrics.go). scrape_error was deprecated in 1.29
// and is hidden since; resource_scrape_error is the stable name.

const FAMILIES: Record<string, { help: string; type: 'counter' | 'gauge' }> = {
  container_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the container in core-seconds', type: 'counter' },
  container_memory_working_set_bytes: { help: '[STABLE] Current working set of the container in bytes', type: 'gauge' },
  container_start_time_seconds: { help: '[STABLE] Start time of the container since unix epoch in seconds', type: 'gauge' },
  node_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the node in core-seconds', type: 'counter' },
  node_memory_working_set_bytes: { help: '[STABLE] Current working set of the node in bytes', type: 'gauge' },
  pod_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the pod in core-seconds', type: 'counter' },
  pod_memory_working_set_bytes: { help: '[STABLE] Current working set of the pod in bytes', type: 'gauge' },
  resource_scrape_error: { help: '[STABLE] 1 if there was an error while getting container metrics, 0 otherwise', type: 'gauge' },
};

export const RESOURCE_METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  return String(v);
}

/** The /metrics/resource body for a summary, or for a failed scrape (summary undefined). */
export function resourceMetricsText(summary: Summary | undefined): string {
  const samples = new Map<string, string[]>(Object.keys(FAMILIES).map((k) => [k, []]));
  const add = (name: string, labels: Record<string, string>, v: number, time?: string) => {
    const keys = Object.keys(labels).sort();
    const labelText = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(',')}}` : '';
    const stamp = time ? ` ${Date.parse(time)}` : '';
    samples.get(name)!.push(`${name}${labelText} ${formatNumber(v)}${stamp}`);
  };
  if (summary) {
    const { node } = summary;
    if (node.cpu?.usageCoreNanoSeconds !== undefined) add('node_cpu_usage_seconds_total', {}, node.cpu.usageCoreNanoSeconds / 1e9, node.cpu.time);
    if (node.memory?.workingSetBytes !== undefined) add('node_memory_working_set_bytes', {}, node.memory.workingSetBytes, node.memory.time);
    for (const pod of summary.pods) {
      const { name: podName, namespace } = pod.podRef;
      for (const c of pod.containers) {
        const labels = { container: c.name, pod: podName, namespace };
        const start = Date.parse(c.startTime);
        if (start > 0) add('container_start_time_seconds', labels, start / 1000);
        if (c.cpu?.usageCoreNanoSeconds !== undefined) add('container_cpu_usage_seconds_total', labels, c.cpu.usageCoreNanoSeconds / 1e9, c.cpu.time);
        if (c.memory?.workingSetBytes !== undefined) add('container_memory_working_set_bytes', labels, c.memory.workingSetBytes, c.memory.time);
      }
      if (pod.cpu?.usageCoreNanoSeconds !== undefined)
        add('pod_cpu_usage_seconds_total', { pod: podName, namespace }, pod.cpu.usageCoreNanoSeconds / 1e9, pod.cpu.time);
      if (pod.memory?.workingSetBytes !== undefined)
        add('pod_memory_working_set_bytes', { pod: podName, namespace }, pod.memory.workingSetBytes, pod.memory.time);
    }
  }
  add('resource_scrape_error', {}, summary ? 0 : 1);
  const lines: string[] = [];
  for (const [name, family] of Object.entries(FAMILIES)) {
    const rows = samples.get(name)!;
    if (rows.length === 0) continue;
    lines.push(`# HELP ${name} ${family.help}`, `# TYPE ${name} ${family.type}`, ...rows.sort());
  }
  return `${lines.join('\n')}\n`;
}
