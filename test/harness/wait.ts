// The one condition wait of every test: poll with a deadline, never a fixed sleep as proof.
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Stops waiting (rejecting with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/**
 * Polls `check` until it returns a value other than undefined/false, or fails after the deadline
 * naming `what` (a function is called then, so the message can show the state at the deadline)
 * and the last error `check` threw.
 */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${lastError ? `: last error: ${(lastError as Error).message}` : ''}`,
      );
    }
    // An abort fails the wait with its reason (e.g. why the process waited on exited), not a bare AbortError.
    await sleep(options.intervalMs ?? 100, undefined, options.signal ? { signal: options.signal } : undefined).catch((err: unknown) => {
      throw options.signal?.aborted ? options.signal.reason : err;
    });
  }
}
