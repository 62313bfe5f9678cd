// The batching behind a provider's notifyPods: changed pods are collected and delivered in one
// batch on the next turn of the event loop, so a listener never runs inside createPod, and a pod
// that changed several times in one turn is reported once, with its latest state.
import type { Pod } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { PodListener } from '../provider.ts';

export class PodNotifier<T> {
  private readonly listeners: PodListener[] = [];
  private dirty = new Set<T>();
  private flushScheduled = false;
  private readonly render: (item: T) => Pod | undefined;
  private readonly log: Logger;
  /** Listener calls made so far (for providers' own counters). */
  delivered = 0;

  /** `render` gives the pod to report for an item at flush time, or undefined to skip it (gone meanwhile). */
  constructor(render: (item: T) => Pod | undefined, log: Logger) {
    this.render = render;
    this.log = log;
  }

  addListener(listener: PodListener): void {
    this.listeners.push(listener);
  }

  get hasListeners(): boolean {
    return this.listeners.length > 0;
  }

  /** Reports the item's pod on the next turn (once, however often it is marked before then). */
  markDirty(item: T): void {
    if (this.listeners.length === 0) return;
    this.dirty.add(item);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const batch = this.dirty;
    this.dirty = new Set();
    for (const item of batch) {
      const pod = this.render(item);
      if (!pod) continue;
      for (const listener of this.listeners) {
        this.delivered++;
        try {
          listener(pod);
        } catch (err) {
          this.log.warn({ err, pod: `${pod.metadata?.namespace}/${pod.metadata?.name}` }, 'pod listener threw');
        }
      }
    }
  };
}
