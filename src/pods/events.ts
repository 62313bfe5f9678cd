// Records core/v1 Events for pods, aggregating repeats of the same reason and message into
// one Event with a growing count (as client-go's recorder does) instead of flooding the API.
// Writes go through the process's EventBudget (rate limit, bounded queue, status writes first).
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import { MERGE_PATCH, type KubeClient } from '../kube/client.ts';
import type { CoreEvent, Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { rfc3339 } from '../version.ts';
import type { EventBudget } from './event-budget.ts';

export type EventType = 'Normal' | 'Warning';

const AGGREGATE_WINDOW_MS = 10 * 60_000;
const MAX_TRACKED = 4096;
/** An Event write holds one of the budget's few in-flight places: one that gets no answer gives it back. */
const EVENT_WRITE_TIMEOUT_MS = 30_000;

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
  private readonly budget: EventBudget;

  constructor(client: KubeClient, nodeName: string, log: Logger, budget: EventBudget) {
    this.client = client;
    this.nodeName = nodeName;
    this.log = log;
    this.budget = budget;
  }

  /** Fire and forget, within the budget: an Event that cannot be written is logged, never fatal. */
  pod(pod: Pod, type: EventType, reason: string, message: string, details: EventDetails = {}): void {
    this.budget.submit(this, () =>
      this.write(pod, type, reason, message, details).catch((err) => this.log.debug({ err: errorMessage(err), reason }, 'could not record event')),
    );
  }

  /** Forgets this node's Events still queued. */
  stop(): void {
    this.budget.cancel(this);
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
        timeoutMs: EVENT_WRITE_TIMEOUT_MS,
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
    await this.client.create(`/api/v1/namespaces/${namespace}/events`, event, { discardResponse: true, timeoutMs: EVENT_WRITE_TIMEOUT_MS });
  }
}
