// Records core/v1 Events for pods, aggregating repeats of the same reason and message into
// one Event with a growing count (as client-go's recorder does) instead of flooding the API.
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../errors.ts';
import { MERGE_PATCH, type KubeClient } from '../kube/client.ts';
import type { CoreEvent, Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { rfc3339 } from '../version.ts';

export type EventType = 'Normal' | 'Warning';

const AGGREGATE_WINDOW_MS = 10 * 60_000;
const MAX_TRACKED = 4096;

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly log: Logger;
  private readonly recent = new Map<string, { name: string; namespace: string; count: number; first: string; at: number }>();

  constructor(client: KubeClient, nodeName: string, log: Logger) {
    this.client = client;
    this.nodeName = nodeName;
    this.log = log;
  }

  /** Fire and forget: an Event that cannot be written is logged, never fatal. */
  pod(pod: Pod, type: EventType, reason: string, message: string): void {
    void this.write(pod, type, reason, message).catch((err) => this.log.debug({ err: errorMessage(err), reason }, 'could not record event'));
  }

  private async write(pod: Pod, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = pod.metadata?.namespace ?? 'default';
    const key = `${pod.metadata?.uid}/${type}/${reason}/${message}`;
    const now = rfc3339();
    const seen = this.recent.get(key);
    if (seen && Date.now() - seen.at < AGGREGATE_WINDOW_MS) {
      seen.count++;
      seen.at = Date.now();
      await this.client.patch(`/api/v1/namespaces/${namespace}/events/${seen.name}`, { count: seen.count, lastTimestamp: now }, MERGE_PATCH);
      return;
    }
    const name = `${pod.metadata?.name}.${randomBytes(8).toString('hex')}`;
    const event: CoreEvent = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name, namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name, namespace, uid: pod.metadata?.uid, resourceVersion: pod.metadata?.resourceVersion },
      reason,
      message,
      type,
      source: { component: 'kubelet', host: this.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    if (this.recent.size >= MAX_TRACKED) this.recent.delete(this.recent.keys().next().value!);
    this.recent.set(key, { name, namespace, count: 1, first: now, at: Date.now() });
    await this.client.create(`/api/v1/namespaces/${namespace}/events`, event);
  }
}
