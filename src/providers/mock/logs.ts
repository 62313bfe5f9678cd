// The mock provider's container logs: a deterministic function of the container instance, so any
// slice (since, tail) is computed without generating what comes before it.
//   line 0, at the instance's start:  "mock <pod>/<container>: started (image <image>, restart <n>)"
//   then, at the start too:            each line of the pod's mock.vk.io/log-lines annotation
//   then, every intervalMs after it:   "mock <pod>/<container>: tick <k>"  (k = 1, 2, ...)
// A running instance's log grows with the clock; a finished one's stops at its finish time.

export interface LogInstance {
  startedAt: number;
  /** Undefined while the instance runs. */
  finishedAt?: number;
  restartCount: number;
}

export interface LogLine {
  at: number;
  text: string;
}

export class LogModel {
  readonly instance: LogInstance;
  private readonly prefix: string;
  private readonly image: string;
  private readonly extra: string[];
  private readonly intervalMs: number;

  constructor(podName: string, container: string, image: string, instance: LogInstance, extraLines: string[], intervalMs: number) {
    this.instance = instance;
    this.prefix = `mock ${podName}/${container}`;
    this.image = image;
    this.extra = extraLines;
    this.intervalMs = intervalMs;
  }

  /** How many lines exist at time `t` (bounded by the finish time). */
  count(t: number): number {
    const { startedAt, finishedAt } = this.instance;
    const end = finishedAt === undefined ? t : Math.min(t, finishedAt);
    if (end < startedAt) return 0;
    const ticks = this.intervalMs > 0 ? Math.floor((end - startedAt) / this.intervalMs) : 0;
    return 1 + this.extra.length + ticks;
  }

  /** Index of the first line at or after `t`. */
  indexAt(t: number): number {
    const { startedAt } = this.instance;
    if (t <= startedAt) return 0;
    if (this.intervalMs <= 0) return 1 + this.extra.length; // nothing after the start
    return this.extra.length + Math.ceil((t - startedAt) / this.intervalMs);
  }

  line(index: number): LogLine {
    const { startedAt, restartCount } = this.instance;
    if (index === 0) return { at: startedAt, text: `${this.prefix}: started (image ${this.image}, restart ${restartCount})` };
    if (index <= this.extra.length) return { at: startedAt, text: this.extra[index - 1]! };
    const tick = index - this.extra.length;
    return { at: startedAt + tick * this.intervalMs, text: `${this.prefix}: tick ${tick}` };
  }

  /** When line `index` appears (for a follower waiting for it). */
  timeOf(index: number): number {
    return this.line(index).at;
  }
}

/** RFC 3339 with nanoseconds, trailing zeros dropped: how the kubelet stamps log lines. */
export function logTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2025-01-01T12:00:01.500Z
  const fraction = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

/** The annotation's text as log lines (a trailing newline adds no empty line). */
export function annotationLines(text: string | undefined): string[] {
  if (!text) return [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}
