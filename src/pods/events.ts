// Records core/v1 Events for pods, aggregating repeats of the same reason and message into
// one Event with a growing count (as client-go's recorder does) instead of flooding the API.
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import { MERGE_PATCH, type KubeClient } from '../kube/client.ts';
import type { CoreEvent, Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { TokenBucket } from '../util/token-bucket.ts';
import { rfc3339 } from '../version.ts';

export type EventType = 'Normal' | 'Warning';

const AGGREGATE_WINDOW_MS = 10 * 60_000;
const MAX_TRACKED = 4096;
/** Events waiting for a rate-limit token; beyond this they are dropped, as the kubelet's broadcaster does. */
const MAX_QUEUED = 1000;

export interface EventRateLimit {
  /** Event writes per second (the kubelet's --event-qps, default 50). */
  qps: number;
  /** Writes allowed in a burst (the kubelet's --event-burst, default 100). */
  burst: number;
}

export const DEFAULT_EVENT_RATE_LIMIT: EventRateLimit = { qps: 50, burst: 100 };

/** What a provider knows beyond reason and message (src/pods/provider-events.ts). */
export interface EventDetails {
  /** Occurrences this call stands for (default 1). */
  count?: number;
  /** RFC 3339; default: now. */
  firstTimestamp?: string;
  /** involvedObject.fieldPath, e.g. `spec.containers{app}`. */
  fieldPath?: string;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly log: Logger;
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; first: string; at: number }>();
  private readonly bucket: TokenBucket;
  private readonly queued: (() => Promise<void>)[] = [];
  private drainTimer: NodeJS.Timeout | undefined;
  /** Events dropped because the queue was full. */
  dropped = 0;

  constructor(client: KubeClient, nodeName: string, log: Logger, rateLimit: EventRateLimit = DEFAULT_EVENT_RATE_LIMIT) {
    this.client = client;
    this.nodeName = nodeName;
    this.log = log;
    this.bucket = new TokenBucket(rateLimit.qps, rateLimit.burst);
  }

  /** Fire and forget, rate-limited: an Event that cannot be written is logged, never fatal. */
  pod(pod: Pod, type: EventType, reason: string, message: string, details: EventDetails = {}): void {
    const send = () =>
      this.write(pod, type, reason, message, details).catch((err) => this.log.debug({ err: errorMessage(err), reason }, 'could not record event'));
    if (this.queued.length === 0 && this.bucket.tryTake()) {
      void send();
      return;
    }
    if (this.queued.length >= MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queued.push(send);
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainTimer) return;
    this.drainTimer = setTimeout(
      () => {
        this.drainTimer = undefined;
        while (this.queued.length > 0 && this.bucket.tryTake()) void this.queued.shift()!();
        if (this.queued.length > 0) this.scheduleDrain();
      },
      Math.max(1, this.bucket.waitMs()),
    );
    this.drainTimer.unref();
  }

  stop(): void {
    clearTimeout(this.drainTimer);
    this.queued.length = 0;
  }

  private async write(pod: Pod, type: EventType, reason: string, message: string, details: EventDetails): Promise<void> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const key = `${pod.metadata?.uid}/${details.fieldPath ?? ''}/${type}/${reason}/${message}`;
    const now = rfc3339();
    const count = details.count ?? 1;
    const seen = this.recent.get(key);
    if (seen && Date.now() - seen.at < AGGREGATE_WINDOW_MS) {
      seen.count += count;
      seen.at = Date.now();
      await this.client.patch(`/api/v1/namespaces/${namespace}/events/${seen.name}`, { count: seen.count, lastTimestamp: now }, MERGE_PATCH, {
        discardResponse: true,
      });
      return;
    }
    const name = `${pod.metadata?.name}.${randomBytes(8).toString('hex')}`;
    const event: CoreEvent = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: 'v1',
        kind: 'Pod',
        name: pod.metadata?.name,
        namespace,
        uid: pod.metadata?.uid,
        resourceVersion: pod.metadata?.resourceVersion,
        ...(details.fieldPath && { fieldPath: details.fieldPath }),
      },
      reason,
      message,
      type,
      source: { component: 'kubelet', host: this.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.nodeName,
      firstTimestamp: details.firstTimestamp ?? now,
      lastTimestamp: now,
      count,
    };
    if (this.recent.size >= MAX_TRACKED) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(key, { name, namespace, count, first: event.firstTimestamp!, at: Date.now() });
    await this.client.create(`/api/v1/namespaces/${namespace}/events`, event, { discardResponse: true });
  }
}
