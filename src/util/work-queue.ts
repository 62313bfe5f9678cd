// A keyed work queue with client-go's semantics: a key is queued at most once, a key being
// processed is never handed to a second worker (re-adds are deferred until it is done), and
// failed keys come back after a per-key exponential backoff. Keys added as urgent are handed out
// before the others: a pod whose backend status changed is a quick status write, and must not
// wait behind a burst of new pods each holding a worker for a backend create (as the kubelet's
// status manager does not wait for its pod workers).

import { backoffDelayMs, type BackoffPolicy } from './backoff.ts';

export interface WorkQueueOptions {
  /** First retry delay; doubles per consecutive failure of the same key. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/** A FIFO of keys with an amortized O(1) shift. */
class Lane {
  private readonly keys: string[] = [];
  private head = 0;

  push(key: string): void {
    this.keys.push(key);
  }

  shift(): string | undefined {
    if (this.head === this.keys.length) return undefined;
    const key = this.keys[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.keys.length) {
      this.keys.splice(0, this.head);
      this.head = 0;
    }
    return key;
  }
}

export class WorkQueue {
  private readonly urgent = new Lane();
  private readonly normal = new Lane();
  /** Queued keys and their lane (a key promoted to urgent leaves a stale entry in the normal lane). */
  private readonly queued = new Map<string, 'urgent' | 'normal'>();
  private readonly processing = new Set<string>();
  /** Keys re-added while processing, and whether any of those adds was urgent. */
  private readonly dirty = new Map<string, boolean>();
  private readonly failures = new Map<string, number>();
  /** Pending delayed adds per key (a retry soon, a token refresh much later). */
  private readonly timers = new Map<string, { dueMs: number; timer: NodeJS.Timeout }[]>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  /** Told when a key is queued and when the queue shuts down (runWorkers starts workers on it). */
  private readyListener: (() => void) | undefined;
  private readonly backoff: BackoffPolicy;
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.backoff = { baseMs: options.baseDelayMs ?? 5, maxMs: options.maxDelayMs ?? 300_000, jitter: 'none' };
  }

  get length(): number {
    return this.queued.size;
  }

  /** Queues the key (once); an urgent add goes ahead of every non-urgent key, and promotes one already queued. */
  add(key: string, urgent = false): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.set(key, urgent || (this.dirty.get(key) ?? false));
      return;
    }
    const lane = this.queued.get(key);
    if (lane === 'urgent' || (lane === 'normal' && !urgent)) return;
    if (lane === undefined) {
      const waiter = this.waiters.shift();
      if (waiter) {
        this.processing.add(key);
        waiter(key);
        return;
      }
    }
    this.queued.set(key, urgent ? 'urgent' : 'normal');
    (urgent ? this.urgent : this.normal).push(key);
    this.readyListener?.();
  }

  /**
   * Adds the key after `delayMs`, unless a pending delayed add of it comes no later. A pending one
   * due later stays too: it must not swallow a sooner retry (a failed sync behind a token refresh
   * an hour away was retried only then: chaos --seed 2).
   */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const dueMs = Date.now() + delayMs;
    const pending = this.timers.get(key) ?? [];
    if (pending.some((p) => p.dueMs <= dueMs)) return;
    const entry = {
      dueMs,
      timer: setTimeout(() => {
        const left = (this.timers.get(key) ?? []).filter((p) => p !== entry);
        if (left.length > 0) this.timers.set(key, left);
        else this.timers.delete(key);
        this.add(key);
      }, delayMs),
    };
    entry.timer.unref();
    this.timers.set(key, [...pending, entry]);
  }

  /** Re-adds a failed key after its backoff; returns the delay used. */
  addRateLimited(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const delay = backoffDelayMs(this.backoff, failures);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.take();
    if (key === undefined) return new Promise((resolve) => this.waiters.push(resolve));
    return Promise.resolve(key);
  }

  /** The next key, marked as processing, if one is queued now (undefined too once shut down). */
  take(): string | undefined {
    if (this.shuttingDown) return undefined;
    const key = this.next();
    if (key === undefined) return undefined;
    this.queued.delete(key);
    this.processing.add(key);
    return key;
  }

  get isShutDown(): boolean {
    return this.shuttingDown;
  }

  /** `listener` is called when a key is queued and when the queue shuts down (one listener). */
  onReady(listener: () => void): void {
    this.readyListener = listener;
  }

  private next(): string | undefined {
    const urgent = this.urgent.shift();
    if (urgent !== undefined) return urgent;
    for (let key = this.normal.shift(); key !== undefined; key = this.normal.shift()) if (this.queued.get(key) === 'normal') return key;
    return undefined;
  }

  /** Marks the key processed; if it was re-added meanwhile, it is queued again (urgent if any re-add was). */
  done(key: string): void {
    this.processing.delete(key);
    const urgent = this.dirty.get(key);
    if (urgent === undefined) return;
    this.dirty.delete(key);
    this.add(key, urgent);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const pending of this.timers.values()) for (const p of pending) clearTimeout(p.timer);
    this.timers.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    this.readyListener?.();
  }
}

/**
 * Hands the queue's keys to `handle`, at most `workers` at once, until the queue shuts down; the
 * promise settles when it has and the last handle is done. Workers start as keys come and end when
 * the queue is empty, so an idle queue holds none (1,000 nodes x 50 idle workers were 38 MiB).
 */
export function runWorkers(queue: WorkQueue, workers: number, handle: (key: string) => Promise<void>): Promise<void> {
  let active = 0;
  let finished!: () => void;
  let failed!: (err: unknown) => void;
  const done = new Promise<void>((resolve, reject) => ((finished = resolve), (failed = reject)));
  const settleIfIdle = () => {
    if (queue.isShutDown && active === 0) finished();
  };
  const work = async (first: string) => {
    // A microtask later: a handle never runs inside the caller of add().
    await undefined;
    for (let key: string | undefined = first; key !== undefined; key = queue.take()) {
      try {
        await handle(key);
      } finally {
        queue.done(key);
      }
    }
  };
  const start = () => {
    while (active < workers) {
      const key = queue.take();
      if (key === undefined) break;
      active++;
      // When a worker ends, keys added since its last take() find no free worker: start() again.
      work(key).then(
        () => (active--, start()),
        (err: unknown) => (active--, failed(err), start()),
      );
    }
    settleIfIdle();
  };
  queue.onReady(start);
  start();
  return done;
}
