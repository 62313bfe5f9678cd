// Charges each pod bound to one node from the API's view of it (the informer the pod controller
// already runs): billed from status.startTime (when the node accepted it, as Fargate and ACI bill
// from the image pull) until its containers finished, or until it was deleted. Figures are worked
// out when /metrics is scraped, so a running pod's cost is current to the second; a finished pod
// gets its final cost as an annotation.
import type { KubeClient } from '../kube/client.ts';
import type { Pod } from '../kube/types.ts';
import type { InformerHandlers } from '../kube/informer.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { billedResources, charge, podRequests, ratePerSecond, type BilledResources } from './charge.ts';
import type { CostMetrics } from './metrics.ts';
import type { PriceTable } from './prices.ts';
import { workloadOf } from './workload.ts';

/** The annotation a finished pod gets: its final cost, e.g. "0.000823 USD". */
export const COST_ANNOTATION = 'virtual-kubelet.io/cost';
/** How long a deleted pod's series stay on /metrics (so `vk cost --window` up to a day sees it). */
export const FORGET_AFTER_MS = 24 * 3600_000;

export interface PodCharge {
  namespace: string;
  pod: string;
  uid: string;
  workload: string;
  resources: BilledResources;
  startMs: number;
  endMs?: number;
  /** When the API object went away (the record is forgotten FORGET_AFTER_MS later). */
  deletedMs?: number;
  annotated: boolean;
}

export interface PodCostSample {
  charge: PodCharge;
  cost: number;
  /** Currency per second of running (also once it has finished: `vk cost --window` needs it). */
  rate: number;
}

function finishedAt(pod: Pod): number | undefined {
  const phase = pod.status?.phase;
  if (phase !== 'Succeeded' && phase !== 'Failed') return undefined;
  const ends = (pod.status?.containerStatuses ?? []).map((c) => Date.parse(c.state?.terminated?.finishedAt ?? '')).filter((t) => t > 0);
  return ends.length ? Math.max(...ends) : Date.now();
}

export class CostMeter {
  readonly nodeName: string;
  readonly prices: PriceTable;
  private readonly pods = new Map<string, PodCharge>();
  private readonly client: KubeClient | undefined;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private readonly metrics: CostMetrics | undefined;

  constructor(options: { nodeName: string; prices: PriceTable; client?: KubeClient; log?: Logger; now?: () => number; metrics?: CostMetrics }) {
    this.nodeName = options.nodeName;
    this.prices = options.prices;
    this.client = options.client;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.metrics = options.metrics;
    this.metrics?.add(this);
  }

  readonly handlers: InformerHandlers<Pod> = {
    onAdd: (pod) => this.observe(pod),
    onUpdate: (_old, pod) => this.observe(pod),
    onDelete: (pod) => this.deleted(pod),
  };

  /** Records the pod's start, size and end as the API shows them. */
  observe(pod: Pod): void {
    const uid = pod.metadata?.uid;
    const started = Date.parse(pod.status?.startTime ?? '');
    if (!uid || !(started > 0)) return;
    let record = this.pods.get(uid);
    if (!record) {
      record = {
        namespace: pod.metadata?.namespace ?? '',
        pod: pod.metadata?.name ?? '',
        uid,
        workload: workloadOf(pod),
        resources: billedResources(podRequests(pod), this.prices),
        startMs: started,
        annotated: pod.metadata?.annotations?.[COST_ANNOTATION] !== undefined,
      };
      this.pods.set(uid, record);
    }
    if (record.endMs === undefined) {
      const end = finishedAt(pod);
      if (end !== undefined) {
        record.endMs = Math.max(end, record.startMs);
        void this.annotate(record);
      }
    }
  }

  private deleted(pod: Pod): void {
    const record = this.pods.get(pod.metadata?.uid ?? '');
    if (!record) return;
    const now = this.now();
    record.endMs ??= Math.max(finishedAt(pod) ?? now, record.startMs);
    record.deletedMs = now;
  }

  private async annotate(record: PodCharge): Promise<void> {
    if (record.annotated || !this.client) return;
    record.annotated = true;
    const cost = this.costOf(record);
    const path = `/api/v1/namespaces/${encodeURIComponent(record.namespace)}/pods/${encodeURIComponent(record.pod)}`;
    try {
      await this.client.patch(path, { metadata: { uid: record.uid, annotations: { [COST_ANNOTATION]: `${cost.toFixed(6)} ${this.prices.currency}` } } });
    } catch (err) {
      // Gone already, or another incarnation (the uid precondition): the metrics still count it.
      this.log?.debug({ pod: `${record.namespace}/${record.pod}`, err: errorMessage(err) }, 'cost: could not annotate the finished pod');
    }
  }

  costOf(record: PodCharge): number {
    const end = record.endMs ?? this.now();
    return charge(record.resources, this.prices, (end - record.startMs) / 1000);
  }

  /** Every pod's cost so far; forgets pods deleted more than FORGET_AFTER_MS ago (after returning them a last time). */
  sample(): PodCostSample[] {
    const now = this.now();
    const out: PodCostSample[] = [];
    for (const [uid, record] of this.pods) {
      out.push({ charge: record, cost: this.costOf(record), rate: ratePerSecond(record.resources, this.prices) });
      if (record.deletedMs !== undefined && now - record.deletedMs > FORGET_AFTER_MS) this.pods.delete(uid);
    }
    return out;
  }

  close(): void {
    this.metrics?.remove(this);
  }
}
