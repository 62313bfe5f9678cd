// The process's one budget for Event writes, shared by every virtual node it runs: one token
// bucket (the kubelet's --event-qps/--event-burst) and one bounded queue, as one kubelet has.
// Pod status writes go first: while any is in flight, Events keep to a lane of a sixteenth of
// as many writes (at least EVENT_LANE_IN_FLIGHT, at most MAX_EVENTS_IN_FLIGHT), and widen to
// MAX_EVENTS_IN_FLIGHT when status writes pause. The lane keeps Events flowing at many nodes,
// where some node's status write is always in flight, at a small bounded cost to status writes.
// A full queue drops (and counts) new Events, as the kubelet's broadcaster does.
import type { StatusClient } from './status-writer.ts';
import { TokenBucket } from '../util/token-bucket.ts';

export interface EventRateLimit {
  /** Event writes per second (the kubelet's --event-qps, default 50). */
  qps: number;
  /** Writes allowed in a burst (the kubelet's --event-burst, default 100). */
  burst: number;
}

export const DEFAULT_EVENT_RATE_LIMIT: EventRateLimit = { qps: 50, burst: 100 };

/** Events waiting for their turn; beyond this they are dropped (the kubelet's broadcaster queue is 1000). */
export const MAX_QUEUED_EVENTS = 1000;
/** Event writes in flight at once while no status write is: when status writes resume, at most this many Events are ahead of them. */
const MAX_EVENTS_IN_FLIGHT = 4;
/** Event writes in flight at once while status writes are: the lane Events always have... */
export const EVENT_LANE_IN_FLIGHT = 1;
/** ...widened to this share of the status writes in flight (up to MAX_EVENTS_IN_FLIGHT). */
export const EVENT_LANE_SHARE = 1 / 16;

interface QueuedEvent {
  owner: object;
  write: () => Promise<void>;
  queuedAt: number;
}

export interface EventBudgetOptions {
  rateLimit?: EventRateLimit;
  maxQueued?: number;
  maxInFlight?: number;
  laneInFlight?: number;
  laneShare?: number;
}

export class EventBudget {
  /** Events sent to the API (whatever the answer). */
  written = 0;
  /** Events dropped because the queue was full. */
  dropped = 0;
  private readonly bucket: TokenBucket;
  private readonly maxQueued: number;
  private readonly maxInFlight: number;
  private readonly laneInFlight: number;
  private readonly laneShare: number;
  private readonly queue: QueuedEvent[] = [];
  private eventsInFlight = 0;
  private statusInFlight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: EventBudgetOptions = {}) {
    const rate = options.rateLimit ?? DEFAULT_EVENT_RATE_LIMIT;
    this.bucket = new TokenBucket(rate.qps, rate.burst);
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_EVENTS;
    this.maxInFlight = options.maxInFlight ?? MAX_EVENTS_IN_FLIGHT;
    this.laneInFlight = Math.min(options.laneInFlight ?? EVENT_LANE_IN_FLIGHT, this.maxInFlight);
    this.laneShare = options.laneShare ?? EVENT_LANE_SHARE;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Sends `write` when the budget allows; false when the queue was full and it was dropped. `owner` lets cancel() find it. */
  submit(owner: object, write: () => Promise<void>): boolean {
    if (this.queue.length >= this.maxQueued) {
      this.dropped++;
      return false;
    }
    this.queue.push({ owner, write, queuedAt: performance.now() });
    this.drain();
    return true;
  }

  /** Forgets the Events `owner` still has queued (a node that stops). */
  cancel(owner: object): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.owner === owner) this.queue.splice(i, 1);
  }

  /** A status client whose writes go before every Event. */
  prioritized(client: StatusClient): StatusClient {
    return {
      patch: (...args) => this.statusWrite(() => client.patch(...args)),
      delete: (...args) => this.statusWrite(() => client.delete(...args)),
    } as StatusClient;
  }

  /** Runs a status write; while any is in flight, Events keep to their lane. */
  async statusWrite<T>(write: () => Promise<T>): Promise<T> {
    this.statusInFlight++;
    try {
      return await write();
    } finally {
      if (--this.statusInFlight === 0) this.drain();
    }
  }

  /** Whether one more Event may be in flight now: all of maxInFlight while no status write is, the lane while any is. */
  private mayGo(): boolean {
    if (this.statusInFlight === 0) return this.eventsInFlight < this.maxInFlight;
    const lane = Math.min(this.maxInFlight, Math.max(this.laneInFlight, Math.floor(this.statusInFlight * this.laneShare)));
    return this.eventsInFlight < lane;
  }

  private drain(): void {
    while (this.queue.length > 0 && this.mayGo()) {
      if (!this.bucket.tryTake()) {
        this.wakeAfter(this.bucket.waitMs());
        return;
      }
      const { write } = this.queue.shift()!;
      this.written++;
      this.eventsInFlight++;
      // The write reports its own failure; the budget only needs to know it is done.
      void write()
        .catch(() => {})
        .finally(() => {
          this.eventsInFlight--;
          this.drain();
        });
    }
  }

  private wakeAfter(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.drain();
      },
      Math.max(1, Math.ceil(ms)),
    );
    this.timer.unref();
  }

  /** Drops everything queued and the pending wake-up (the process is stopping). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}
