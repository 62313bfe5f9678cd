// The mock provider's container logs: a deterministic function of the container instance, so any
// slice (since, tail) is computed without generating what comes before it.
//   line 0, at the instance's start:  "mock <pod>/<container>: started (image <image>, restart <n>)"
//   then, at the start too:            each line of the pod's mock.vk.io/log-lines annotation
//   then, every intervalMs after it:   "mock <pod>/<container>: tick <k>"  (k = 1, 2, ...)
// A running instance's log grows with the clock; a finished one's stops at its finish time.
// logTarget picks the instance a request means (kubelet-like errors when there is none) and
// logLines streams its lines, following a running one until it ends.
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerStateError, NotFoundError } from '../../errors.ts';
import type { Container } from '../../kube/types.ts';
import type { LogOptions } from '../provider.ts';
import type { PodRecord } from './lifecycle.ts';

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

export interface LogTarget {
  kind: 'container' | 'init';
  /** Index in spec.containers (-1 for init containers). */
  index: number;
  model: LogModel;
}

/** The container instance whose log is asked for, with kubelet-like errors when there is none. */
export function logTarget(rec: PodRecord, container: string, previous: boolean, extraLines: string[], intervalMs: number): LogTarget {
  const pod = rec.resolved.pod;
  const podName = pod.metadata?.name ?? '';
  const model = (c: Container, instance: LogInstance) => new LogModel(podName, c.name, c.image ?? '', instance, extraLines, intervalMs);
  const index = (pod.spec?.containers ?? []).findIndex((c) => c.name === container);
  const spec = pod.spec?.containers?.[index];
  const run = rec.containers[index];
  if (spec && run) {
    const last = run.last;
    // The instance before the current one; while none runs (back-off), the last one is "current".
    const lastInstance = last && {
      startedAt: last.startedAt ?? last.finishedAt,
      finishedAt: last.finishedAt,
      restartCount: run.startedAt === undefined ? run.restartCount : run.restartCount - 1,
    };
    if (previous) {
      if (!lastInstance) throw ContainerStateError.noPrevious(podName, container);
      return { kind: 'container', index, model: model(spec, lastInstance) };
    }
    if (rec.stage === 'creating') throw ContainerStateError.waiting(podName, container, 'ContainerCreating');
    if (run.startedAt !== undefined) {
      return {
        kind: 'container',
        index,
        model: model(spec, { startedAt: run.startedAt, finishedAt: rec.stage === 'terminated' ? rec.stageAt : undefined, restartCount: run.restartCount }),
      };
    }
    if (lastInstance) return { kind: 'container', index, model: model(spec, lastInstance) };
    throw ContainerStateError.waiting(podName, container, rec.stage === 'backoff' ? 'CrashLoopBackOff' : 'ContainerCreating');
  }
  const init = (pod.spec?.initContainers ?? []).find((c) => c.name === container);
  if (!init) throw new NotFoundError(`container "${container}" not found in pod "${podName}"`);
  if (previous) throw ContainerStateError.noPrevious(podName, container);
  if (rec.sandboxAt === undefined) throw ContainerStateError.waiting(podName, container, 'PodInitializing');
  const sidecar = init.restartPolicy === 'Always';
  const finishedAt = !sidecar ? rec.sandboxAt : rec.stage === 'terminated' ? rec.stageAt : undefined;
  return { kind: 'init', index: -1, model: model(init, { startedAt: rec.sandboxAt, finishedAt, restartCount: 0 }) };
}

/** When the instance a log follows has ended: its finish time; undefined while it runs. */
export function instanceEnd(rec: PodRecord, target: LogTarget, now: number): number | undefined {
  const startedAt = target.model.instance.startedAt;
  if (rec.gone) return now;
  if (target.kind === 'init') return rec.stage === 'terminated' ? rec.stageAt : undefined;
  const run = rec.containers[target.index];
  if (!run) return now;
  if (rec.stage === 'running' && run.startedAt === startedAt) return undefined;
  if (run.last && (run.last.startedAt ?? run.last.finishedAt) === startedAt) return run.last.finishedAt;
  if (rec.stage === 'terminated') return rec.stageAt;
  return now;
}

/** The provider's side of a followed log: its clock, and bringing the record up to it. */
export interface LogClock {
  nowMs(): number;
  refresh(rec: PodRecord): void;
}

/** The log's lines per the options, in batches; a follower waits for new ones until the instance ends. */
export async function* logLines(rec: PodRecord, target: LogTarget, options: LogOptions, clock: LogClock): AsyncGenerator<string | Buffer> {
  const { model } = target;
  let total = model.count(clock.nowMs());
  let i = options.sinceTime ? model.indexAt(options.sinceTime.getTime()) : 0;
  if (options.tailLines !== undefined) i = Math.max(i, total - options.tailLines);
  let budget = options.limitBytes ?? Infinity;
  while (true) {
    while (i < total) {
      let batch = '';
      for (let n = 0; n < 512 && i < total; n++, i++) {
        const line = model.line(i);
        batch += options.timestamps ? `${logTimestamp(line.at)} ${line.text}\n` : `${line.text}\n`;
      }
      const bytes = Buffer.byteLength(batch);
      if (bytes >= budget) {
        yield Buffer.from(batch).subarray(0, budget);
        return;
      }
      budget -= bytes;
      yield batch;
    }
    if (!options.follow || model.instance.finishedAt !== undefined || options.signal.aborted) return;
    // Sleep until the next line is due, looking at least once a second whether the instance ended.
    const wait = Math.min(Math.max(model.timeOf(total) - clock.nowMs(), 0), 1000);
    try {
      await sleep(wait, undefined, { signal: options.signal });
    } catch {
      return;
    }
    if (!rec.gone) clock.refresh(rec);
    const end = instanceEnd(rec, target, clock.nowMs());
    if (end !== undefined) model.instance.finishedAt = end;
    total = model.count(clock.nowMs());
  }
}
