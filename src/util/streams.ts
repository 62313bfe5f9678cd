import type { Writable } from 'node:stream';

/** Resolves once `stream` drains, closes or fails, or `signal` aborts: the wait after a write() that returned false. */
export function waitForDrain(stream: Writable, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done).off('close', done).off('error', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.on('drain', done).on('close', done).on('error', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
