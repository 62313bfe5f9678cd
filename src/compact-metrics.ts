// A histogram and a counter that registries print exactly as they print prom-client's (the same
// get() and getForPromString() values), stored compactly: a histogram series is an array of
// counts. prom-client's Histogram keeps a frozen object keyed by bucket bound per metric and a
// copy of it per series (~1.2 KB per metric, ~1 KB per series), its Counter ~0.5 KB per metric;
// a process with 1,000 nodes, each with its own series, pays that a thousand times.
import type { Registry } from 'prom-client';

type LabelValues = Record<string, string | number>;

/** prom-client's series key: label values in sorted label-name order. */
function seriesKey(labels: LabelValues): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}:${labels[k]}`)
    .join(',');
}

function validate(metric: string, labelNames: readonly string[], labels: LabelValues): void {
  for (const name of Object.keys(labels)) {
    if (!labelNames.includes(name)) throw new Error(`${metric}: label "${name}" is not one of ${labelNames.join(', ') || '(none)'}`);
  }
}

/** labels('a', 'b') in labelNames order, or labels({...}). */
function labelsOf(metric: string, labelNames: readonly string[], values: (string | number)[] | [LabelValues]): LabelValues {
  const first = values[0];
  if (typeof first === 'object') {
    validate(metric, labelNames, first);
    return first;
  }
  if (values.length !== labelNames.length)
    throw new Error(`${metric}: ${values.length} label values for label names (${labelNames.length}): ${labelNames.join(', ')}`);
  const labels: LabelValues = {};
  labelNames.forEach((name, i) => (labels[name] = values[i] as string | number));
  return labels;
}

/** prom-client's Registry accepts any object with its metric shape. */
function register(metric: object, registries: Registry[]): void {
  for (const registry of registries) registry.registerMetric(metric as Parameters<Registry['registerMetric']>[0]);
}

export interface CounterChild {
  inc(value?: number): void;
}

export interface CompactCounterConfig {
  name: string;
  help: string;
  labelNames?: readonly string[];
  registers: Registry[];
}

export class CompactCounter {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly labelNames: readonly string[];
  /** By label key, the same objects prom-client's get() reports. */
  private series: Map<string, { value: number; labels: LabelValues }> | undefined;

  constructor(config: CompactCounterConfig) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    this.reset();
    register(this, config.registers);
  }

  /** inc(), inc(value), inc(labels), inc(labels, value). */
  inc(labelsOrValue?: LabelValues | number, value?: number): void {
    if (typeof labelsOrValue === 'object') {
      validate(this.name, this.labelNames, labelsOrValue);
      this.add(labelsOrValue, value);
    } else this.add({}, labelsOrValue);
  }

  labels(...values: (string | number)[] | [LabelValues]): CounterChild {
    const labels = labelsOf(this.name, this.labelNames, values);
    // The series is looked up (and created) on the first inc, as prom-client does, and again after a reset.
    let series: { value: number; labels: LabelValues } | undefined;
    let of: Map<string, { value: number; labels: LabelValues }> | undefined;
    return {
      inc: (v = 1) => {
        if (!series || of !== this.series) {
          this.add(labels, v);
          of = this.series;
          series = of?.get(seriesKey(labels));
          return;
        }
        this.check(v);
        series.value += v;
      },
    };
  }

  /** As prom-client's: without labels, the one series (zero) stays. */
  reset(): void {
    this.series = undefined;
    if (this.labelNames.length === 0) this.add({}, 0);
  }

  get(): Promise<{ name: string; help: string; type: 'counter'; values: { value: number; labels: LabelValues }[]; aggregator: 'sum' }> {
    return Promise.resolve({ help: this.help, name: this.name, type: this.type, values: [...(this.series?.values() ?? [])], aggregator: this.aggregator });
  }

  private check(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: value is not a valid number: ${value}`);
    if (value < 0) throw new Error(`${this.name}: it is not possible to decrease a counter`);
  }

  private add(labels: LabelValues, value = 1): void {
    this.check(value);
    const key = seriesKey(labels);
    this.series ??= new Map();
    const series = this.series.get(key);
    if (series) series.value += value;
    else this.series.set(key, { value, labels });
  }
}

interface Series {
  labels: LabelValues;
  /** Observations per bucket (not cumulative), one entry per bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** One sample as prom-client's Histogram reports it. */
interface Sample {
  labels: LabelValues;
  sharedLabels?: LabelValues;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

export interface HistogramChild {
  observe(value: number): void;
}

export interface CompactHistogramConfig {
  name: string;
  help: string;
  labelNames?: readonly string[];
  buckets: readonly number[];
  registers: Registry[];
}

export class CompactHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly labelNames: readonly string[];
  private readonly buckets: readonly number[];
  /** By label key; created on the first observation (a series-less metric is the common case). */
  private series: Map<string, Series> | undefined;

  constructor(config: CompactHistogramConfig) {
    this.name = config.name;
    this.help = config.help;
    this.labelNames = config.labelNames ?? [];
    this.buckets = config.buckets;
    // As prom-client's: without labels, the one series exists (all zero) before any observation.
    if (this.labelNames.length === 0) this.seriesFor({});
    register(this, config.registers);
  }

  /** observe(value) without labels, observe(labels, value) with them. */
  observe(labelsOrValue: LabelValues | number, value?: number): void {
    if (typeof labelsOrValue === 'number') this.record(this.seriesFor({}), labelsOrValue);
    else this.record(this.seriesFor(labelsOrValue), value ?? Number.NaN);
  }

  /** The series with these label values (in labelNames order) or labels. */
  labels(...values: (string | number)[] | [LabelValues]): HistogramChild {
    const labels = labelsOf(this.name, this.labelNames, values);
    // The series is looked up (and created) on the first observation, as prom-client does, and again after a reset.
    let series: Series | undefined;
    let of: Map<string, Series> | undefined;
    return {
      observe: (v) => {
        if (!series || of !== this.series) {
          series = this.seriesFor(labels);
          of = this.series;
        }
        this.record(series, v);
      },
    };
  }

  reset(): void {
    this.series = undefined;
  }

  /** What prom-client's Histogram.getForPromString() returns, which Registry.metrics() prints. */
  getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const name = `${this.name}_bucket`;
    const values: Sample[] = [];
    for (const s of this.series?.values() ?? []) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] ?? 0;
        values.push({ labels: { le }, sharedLabels: s.labels, value: cumulative, metricName: name, exemplar: null });
      });
      values.push(
        { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: name, exemplar: null },
        { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count`, exemplar: undefined },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** What prom-client's Histogram.get() returns: each sample's series labels merged into its own. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Omit<Sample, 'sharedLabels'>[]; aggregator: 'sum' }> {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, labels, ...rest }) => {
        for (const [k, v] of Object.entries(sharedLabels ?? {})) labels[k] = v;
        return { ...rest, labels };
      }),
    };
  }

  private seriesFor(labels: LabelValues): Series {
    validate(this.name, this.labelNames, labels);
    const key = seriesKey(labels);
    this.series ??= new Map();
    let series = this.series.get(key);
    if (!series) {
      series = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    return series;
  }

  private record(series: Series, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: value is not a valid number: ${value}`);
    series.sum += value;
    series.count += 1;
    const bucket = this.buckets.findIndex((le) => value <= le);
    if (bucket >= 0) series.counts[bucket] = (series.counts[bucket] ?? 0) + 1;
  }
}
