// The mock's waits (createDelayMs and an injected failure's delay): each ends after its time,
// at an abort of the caller's signal (AbortedError, the signal's reason as cause), or when the
// provider closes (cancelAll). Timers exist only while a create is in flight.
import { AbortedError } from '../../errors.ts';
import { MAX_TIMER_MS } from './lifecycle.ts';

export class Delays {
  private readonly pending = new Set<(err: Error) => void>();

  /** Resolves after `ms`; rejects when `signal` aborts (naming `what`) or cancelAll is called. */
  wait(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new AbortedError(`${what}: aborted`, { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      const settle = (err?: Error) => {
        clearTimeout(timer);
        this.pending.delete(settle);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onAbort = () => settle(new AbortedError(`${what}: aborted`, { cause: signal?.reason }));
      const timer = setTimeout(settle, Math.min(ms, MAX_TIMER_MS));
      this.pending.add(settle);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Rejects every pending wait with `err`. */
  cancelAll(err: Error): void {
    for (const settle of [...this.pending]) settle(err);
  }
}
