// The pieces behind a provider's notifyPodEvents: the listeners, and the bookkeeping that turns a
// backend's event list, read again on every poll, into each occurrence reported once.
import type { Logger } from '../../log.ts';
import type { PodEvent, PodEventListener } from '../provider.ts';

export class PodEventReporter {
  private readonly listeners: PodEventListener[] = [];
  private readonly log: Logger;
  /** Events handed to listeners so far (for providers' tests and counters). */
  reported = 0;

  constructor(log: Logger) {
    this.log = log;
  }

  addListener(listener: PodEventListener): void {
    this.listeners.push(listener);
  }

  report(event: PodEvent): void {
    if (this.listeners.length === 0) return;
    this.reported++;
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.log.warn({ err, pod: `${event.namespace}/${event.name}`, reason: event.reason }, 'pod event listener threw');
      }
    }
  }
}

/**
 * What a backend's events add since the last look. A backend such as ACI's instance view keeps
 * one entry per kind of event with a count and the time of its latest occurrence; the same entry
 * read again is new only where its count grew or, when the count did not move, its last
 * timestamp did.
 */
export class NewOccurrences {
  private readonly seen = new Map<string, { count: number; last: string | undefined }>();

  /** How many occurrences of `key` were not reported yet (0: none), and remembers them as reported. */
  take(key: string, count: number, lastTimestamp?: string): number {
    const total = Math.max(1, Math.floor(count));
    const before = this.seen.get(key);
    this.seen.set(key, { count: total, last: lastTimestamp });
    if (!before) return total;
    if (total > before.count) return total - before.count;
    // The count did not grow (or the backend reset it) but the event happened again.
    return lastTimestamp !== undefined && lastTimestamp !== before.last ? 1 : 0;
  }

  /** Marks every entry as reported without reporting it (events from before a restart). */
  baseline(entries: Iterable<{ key: string; count: number; lastTimestamp?: string }>): void {
    for (const e of entries) this.take(e.key, e.count, e.lastTimestamp);
  }
}
