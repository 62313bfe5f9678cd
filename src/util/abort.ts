// Waiting on work that may not honour an AbortSignal itself.

/**
 * `work`, or a rejection as soon as `signal` aborts: with the signal's reason, or what `onAbort`
 * makes of it. Without a signal, `work` itself.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined, onAbort: (reason: unknown) => unknown = (reason) => reason): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {}); // settles unobserved
    return Promise.reject(onAbort(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(onAbort(signal.reason));
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(err);
      },
    );
  });
}

/**
 * Races calls against one signal: when it aborts, every call still pending rejects with its
 * reason at once. One listener on the signal for all calls (EventTarget listeners per call
 * cost more than the calls' own bookkeeping on a busy controller).
 */
export class AbortRace {
  private readonly signal: AbortSignal;
  private readonly pending = new Set<(reason: unknown) => void>();

  constructor(signal: AbortSignal) {
    this.signal = signal;
    signal.addEventListener(
      'abort',
      () => {
        for (const reject of this.pending) reject(signal.reason);
        this.pending.clear();
      },
      { once: true },
    );
  }

  /** The call's result, or a rejection with the signal's reason as soon as it aborts. */
  run<T>(call: Promise<T>): Promise<T> {
    if (this.signal.aborted) {
      call.catch(() => {}); // settles unobserved
      return Promise.reject(this.signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.add(reject);
      call.then(
        (value) => {
          this.pending.delete(reject);
          resolve(value);
        },
        (err: unknown) => {
          this.pending.delete(reject);
          reject(err);
        },
      );
    });
  }
}
