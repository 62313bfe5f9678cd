// The cost series on /metrics, one set per registry (several nodes in one process share it):
// vk_pod_cost_total and vk_namespace_cost_total count what pods have been charged, in the table's
// currency; vk_pod_cost_rate and the start/end gauges let `vk cost --window` cut a time window.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { CostMeter } from './meter.ts';

const POD_LABELS = ['namespace', 'pod', 'node', 'workload', 'currency'] as const;

const byRegistry = new WeakMap<Registry, CostMetrics>();

export class CostMetrics {
  private readonly meters = new Set<CostMeter>();
  /** What each pod's and namespace's counter has been given, by series key. */
  private readonly counted = new Map<string, number>();

  /** The registry's one CostMetrics, registered on first use. */
  static for(registry: Registry): CostMetrics {
    let metrics = byRegistry.get(registry);
    if (!metrics) {
      metrics = new CostMetrics(registry);
      byRegistry.set(registry, metrics);
    }
    return metrics;
  }

  private constructor(registry: Registry) {
    const update = (): void => this.update(podCost, namespaceCost, rate, start, end);
    const podCost: Counter = new Counter({
      name: 'vk_pod_cost_total',
      help: "What the pod has been charged so far at its node's price table, in the table's currency",
      labelNames: POD_LABELS,
      registers: [registry],
      collect: update,
    });
    const namespaceCost = new Counter({
      name: 'vk_namespace_cost_total',
      help: "What the namespace's pods on this node have been charged, deleted pods included, in the table's currency",
      labelNames: ['namespace', 'node', 'currency'],
      registers: [registry],
    });
    const rate = new Gauge({
      name: 'vk_pod_cost_rate',
      help: "What the pod is charged per second of running (vk_pod_cost_end_time_seconds says when it stopped), in the table's currency",
      labelNames: POD_LABELS,
      registers: [registry],
    });
    const start = new Gauge({
      name: 'vk_pod_cost_start_time_seconds',
      help: 'When the pod started to be charged (its status.startTime), seconds since the epoch',
      labelNames: POD_LABELS,
      registers: [registry],
    });
    const end = new Gauge({
      name: 'vk_pod_cost_end_time_seconds',
      help: 'When the pod stopped being charged (its containers finished or it was deleted), seconds since the epoch',
      labelNames: POD_LABELS,
      registers: [registry],
    });
  }

  add(meter: CostMeter): void {
    this.meters.add(meter);
  }

  remove(meter: CostMeter): void {
    this.meters.delete(meter);
  }

  private update(podCost: Counter, namespaceCost: Counter, rate: Gauge, start: Gauge, end: Gauge): void {
    // A pod's series are rebuilt on every scrape: pods forgotten (deleted a day ago) or of a stopped node go.
    for (const metric of [podCost, rate, start, end]) metric.reset();
    const seen = new Set<string>();
    for (const meter of this.meters) {
      const currency = meter.prices.currency;
      for (const sample of meter.sample()) {
        const { namespace, pod, workload, uid, startMs, endMs } = sample.charge;
        const labels = { namespace, pod, node: meter.nodeName, workload, currency };
        seen.add(uid);
        podCost.inc(labels, sample.cost);
        // The namespace's counter only ever grows, by what each pod added since the last scrape.
        const before = this.counted.get(uid) ?? 0;
        namespaceCost.inc({ namespace, node: meter.nodeName, currency }, Math.max(sample.cost - before, 0));
        this.counted.set(uid, Math.max(sample.cost, before));
        rate.set(labels, sample.rate);
        start.set(labels, startMs / 1000);
        if (endMs !== undefined) end.set(labels, endMs / 1000);
      }
    }
    for (const uid of [...this.counted.keys()]) if (!seen.has(uid)) this.counted.delete(uid);
  }
}
