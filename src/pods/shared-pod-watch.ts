// One pod watch for all the virtual nodes of a process: an informer on every bound pod
// (`spec.nodeName!=`), split by spec.nodeName into one PodSource per node. A thousand nodes
// then cost one LIST and one watch stream instead of a thousand (kwok watches so too); the
// price is that pods bound to nodes of other processes are cached as well. A pod's nodeName
// never changes once set, so a pod belongs to one node for its whole life.
import { VkError } from '../errors.ts';
import { Informer, objectKey, stripManagedFields, type InformerHandlers } from '../kube/informer.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { PodSource } from './pod-source.ts';

/** What the shared watch reads (an Informer, or a fake in unit tests). */
export type PodCache = Pick<Informer<Pod>, 'addHandlers' | 'start' | 'stop' | 'waitForSync' | 'hasSynced'>;

export class SharedPodWatch {
  private readonly newInformer: () => PodCache;
  /** The informer while any view runs; a new one (a fresh LIST) when views start again after all stopped. */
  private informer: PodCache | undefined;
  /** Cached pods by node, then by `namespace/name`. */
  private readonly byNode = new Map<string, Map<string, Pod>>();
  /** The started views of each node (normally one; two briefly while a node's controller is replaced). */
  private readonly views = new Map<string, Set<NodeView>>();
  private stopping: Promise<void> = Promise.resolve();

  constructor(newInformer: () => PodCache) {
    this.newInformer = newInformer;
  }

  /** The production wiring: one informer on all bound pods, without managedFields. */
  static create(client: KubeClient, log: Logger): SharedPodWatch {
    const own = log.child({ component: 'shared-pod-watch' });
    return new SharedPodWatch(
      () => new Informer<Pod>({ client, path: '/api/v1/pods', fieldSelector: 'spec.nodeName!=', log: own, transform: stripManagedFields }),
    );
  }

  /** The pods bound to `nodeName`, as a PodSource for that node's pod controller. */
  forNode(nodeName: string): PodSource {
    return new NodeView(this, nodeName);
  }

  private change(pod: Pod, call: (handlers: InformerHandlers<Pod>) => void, present: boolean): void {
    const node = pod.spec?.nodeName;
    if (!node) return;
    const key = objectKey(pod);
    let pods = this.byNode.get(node);
    if (present) {
      if (!pods) this.byNode.set(node, (pods = new Map()));
      pods.set(key, pod);
    } else if (pods) {
      pods.delete(key);
      if (pods.size === 0) this.byNode.delete(node);
    }
    for (const view of this.views.get(node) ?? []) view.dispatch(call);
  }

  /** @internal NodeView */
  pods(nodeName: string): Map<string, Pod> | undefined {
    return this.byNode.get(nodeName);
  }

  /** @internal NodeView: the first view to start starts an informer. */
  attach(view: NodeView): void {
    let views = this.views.get(view.nodeName);
    if (!views) this.views.set(view.nodeName, (views = new Set()));
    views.add(view);
    if (this.informer) return;
    const informer = this.newInformer();
    this.informer = informer;
    // A stopping informer's last events must not reach the next one's cache.
    const current = () => this.informer === informer;
    informer.addHandlers({
      onAdd: (pod) => current() && this.change(pod, (h) => h.onAdd?.(pod), true),
      onUpdate: (old, pod) => current() && this.change(pod, (h) => h.onUpdate?.(old, pod), true),
      onDelete: (pod) => current() && this.change(pod, (h) => h.onDelete?.(pod), false),
    });
    informer.start();
  }

  /** @internal NodeView: the informer runs while any view does and stops with the last. */
  async detach(view: NodeView): Promise<void> {
    const views = this.views.get(view.nodeName);
    if (!views?.delete(view)) return;
    if (views.size === 0) this.views.delete(view.nodeName);
    if (this.views.size === 0 && this.informer) {
      const informer = this.informer;
      this.informer = undefined;
      this.byNode.clear();
      this.stopping = informer.stop();
    }
    await this.stopping;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (!this.informer) return Promise.reject(new VkError('VK_KUBE_API', 'the shared pod watch is not running (no node view started)'));
    return this.informer.waitForSync(signal);
  }

  hasSynced(): boolean {
    return this.informer?.hasSynced() ?? false;
  }
}

/** One node's pods of a SharedPodWatch. */
class NodeView implements PodSource {
  readonly nodeName: string;
  private readonly shared: SharedPodWatch;
  private readonly handlers: InformerHandlers<Pod>[] = [];
  private attached = false;

  constructor(shared: SharedPodWatch, nodeName: string) {
    this.shared = shared;
    this.nodeName = nodeName;
  }

  dispatch(call: (handlers: InformerHandlers<Pod>) => void): void {
    for (const handlers of this.handlers) call(handlers);
  }

  /** Handlers added after pods are cached first get onAdd for each of them, as an Informer's do. */
  addHandlers(handlers: InformerHandlers<Pod>): void {
    this.handlers.push(handlers);
    if (this.attached) for (const pod of this.list()) handlers.onAdd?.(pod);
  }

  start(): void {
    if (this.attached) return;
    this.attached = true;
    this.shared.attach(this);
    // Pods cached before this node's view started (the watch runs for the process's other nodes).
    for (const pod of this.list()) this.dispatch((h) => h.onAdd?.(pod));
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    return this.shared.waitForSync(signal);
  }

  hasSynced(): boolean {
    return this.shared.hasSynced();
  }

  get(key: string): Pod | undefined {
    return this.shared.pods(this.nodeName)?.get(key);
  }

  list(): Pod[] {
    return [...(this.shared.pods(this.nodeName)?.values() ?? [])];
  }

  async stop(): Promise<void> {
    if (!this.attached) return;
    this.attached = false;
    await this.shared.detach(this);
  }
}
