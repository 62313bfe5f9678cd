// `vk cost`'s tables: the cost series read from one or more /metrics pages, cut to a time window,
// summed by namespace and by workload.

export interface PodCostSeries {
  namespace: string;
  pod: string;
  node: string;
  workload: string;
  currency: string;
  total: number;
  /** Per second of running. */
  rate?: number;
  /** Seconds since the epoch. */
  start?: number;
  end?: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** The vk_pod_cost_* series of a Prometheus text page, one entry per pod. */
export function parseCostMetrics(text: string): PodCostSeries[] {
  const pods = new Map<string, PodCostSeries>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('vk_pod_cost_')) continue;
    const match = SAMPLE.exec(line.trim());
    if (!match) continue;
    const [, name, labelText = '', valueText] = match as unknown as [string, string, string | undefined, string];
    const labels: Record<string, string> = {};
    for (const [, key, value] of labelText.matchAll(LABEL)) labels[key!] = unescape(value!);
    const key = [labels.node, labels.namespace, labels.pod].join('/');
    const entry = pods.get(key) ?? {
      namespace: labels.namespace ?? '',
      pod: labels.pod ?? '',
      node: labels.node ?? '',
      workload: labels.workload ?? `Pod/${labels.pod ?? ''}`,
      currency: labels.currency ?? '',
      total: 0,
    };
    pods.set(key, entry);
    const value = Number(valueText);
    if (name === 'vk_pod_cost_total') entry.total = value;
    else if (name === 'vk_pod_cost_rate') entry.rate = value;
    else if (name === 'vk_pod_cost_start_time_seconds') entry.start = value;
    else if (name === 'vk_pod_cost_end_time_seconds') entry.end = value;
  }
  return [...pods.values()];
}

/**
 * What the pod was charged within the last `windowSeconds` before `now` (seconds since the epoch):
 * all of it when it started inside the window (its start price and minimum charge included),
 * nothing when it ended before, else its rate over the part of its run inside the window.
 */
export function costInWindow(pod: PodCostSeries, now: number, windowSeconds: number | undefined): number {
  if (windowSeconds === undefined || pod.start === undefined || pod.rate === undefined) return pod.total;
  const from = now - windowSeconds;
  if (pod.start >= from) return pod.total;
  const until = Math.min(pod.end ?? now, now);
  if (until <= from) return 0;
  return Math.min(pod.total, pod.rate * (until - from));
}

export interface CostRow {
  namespace: string;
  /** Set in the by-workload table. */
  workload?: string;
  currency: string;
  pods: number;
  cost: number;
}

export function costTables(pods: PodCostSeries[], now: number, windowSeconds?: number): { byNamespace: CostRow[]; byWorkload: CostRow[] } {
  const byNamespace = new Map<string, CostRow>();
  const byWorkload = new Map<string, CostRow>();
  for (const pod of pods) {
    const cost = costInWindow(pod, now, windowSeconds);
    if (windowSeconds !== undefined && cost === 0 && pod.end !== undefined && pod.end <= now - windowSeconds) continue;
    const add = (map: Map<string, CostRow>, key: string, row: Omit<CostRow, 'pods' | 'cost'>) => {
      const current = map.get(key) ?? { ...row, pods: 0, cost: 0 };
      current.pods++;
      current.cost += cost;
      map.set(key, current);
    };
    add(byNamespace, `${pod.namespace}\0${pod.currency}`, { namespace: pod.namespace, currency: pod.currency });
    add(byWorkload, `${pod.namespace}\0${pod.workload}\0${pod.currency}`, { namespace: pod.namespace, workload: pod.workload, currency: pod.currency });
  }
  const order = (a: CostRow, b: CostRow) => b.cost - a.cost || a.namespace.localeCompare(b.namespace) || (a.workload ?? '').localeCompare(b.workload ?? '');
  return { byNamespace: [...byNamespace.values()].sort(order), byWorkload: [...byWorkload.values()].sort(order) };
}

/** Costs with six decimals: a pod-minute is a fraction of a cent. */
export function formatCost(cost: number): string {
  return cost.toFixed(6);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= cells.length - 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function renderCostTables(tables: { byNamespace: CostRow[]; byWorkload: CostRow[] }, title: string): string {
  const totals = new Map<string, number>();
  for (const row of tables.byNamespace) totals.set(row.currency, (totals.get(row.currency) ?? 0) + row.cost);
  const namespaceRows = tables.byNamespace.map((r) => [r.namespace, r.currency, String(r.pods), formatCost(r.cost)]);
  for (const [currency, cost] of totals) namespaceRows.push(['TOTAL', currency, '', formatCost(cost)]);
  return [
    title,
    '',
    table(['NAMESPACE', 'CURRENCY', 'PODS', 'COST'], namespaceRows),
    '',
    table(
      ['NAMESPACE', 'WORKLOAD', 'CURRENCY', 'PODS', 'COST'],
      tables.byWorkload.map((r) => [r.namespace, r.workload ?? '', r.currency, String(r.pods), formatCost(r.cost)]),
    ),
    '',
  ].join('\n');
}
