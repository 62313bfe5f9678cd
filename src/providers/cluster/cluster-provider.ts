// The cluster provider: every pod bound to the virtual node runs as a pod in a target Kubernetes
// cluster. One watch on the target (our pods, by label) mirrors their status back (push mode)
// and is the provider's whole view of what runs there, so a restart adopts by label and never
// guesses. Translation, names, status, streams and capacity live in their own files.
import type { Duplex, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError, PodRejectedError, ProviderUnavailableError, TryLaterError, errorMessage, throwIfAborted } from '../../errors.ts';
import type { KubeClient } from '../../kube/client.ts';
import { Informer, stripManagedFields } from '../../kube/informer.ts';
import type { NodeCondition, Pod, PodStatus, Toleration } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type {
  CallOptions,
  DeleteOptions,
  ExecStreams,
  LogOptions,
  NodeConfig,
  PodEventListener,
  PodListener,
  PodStats,
  Provider,
  ResolvedPod,
} from '../provider.ts';
import type { ProviderContext } from '../registry.ts';
import { PodNotifier } from '../support/notifier.ts';
import { targetCapacity } from './capacity.ts';
import { targetClient } from './credentials.ts';
import { FirstStatusDelay } from './first-status.ts';
import { parseClusterConfig, type ClusterConfig } from './config.ts';
import { dependents, ownDependents, removeDependents, writeDependents } from './dependents.ts';
import { InFlightLimit } from './in-flight.ts';
import { LABEL_MANAGED, LABEL_NODE, NameMapping, sourceOf, type SourceRef, type TargetRef } from './names.ts';
import { isFinished, lostStatus, ranInTarget, sourcePod } from './status.ts';
import { TargetStats } from './stats.ts';
import { TargetStreams } from './streams.ts';
import { classify, isConnectFailure, isStatus } from './target-errors.ts';
import { targetImplicitEnv } from './target-env.ts';
import { sourceRef, translatePod } from './translate.ts';
import { cloneJson } from '../../util/clone-json.ts';

/** Capacity until the target's has been read (or when it cannot be). */
const FALLBACK_CAPACITY: Record<string, string> = { cpu: '0', memory: '0', pods: '0' };
/** How long listPods waits for the first sync of the target watch before answering from what it has. */
const LIST_SYNC_WAIT_MS = 10_000;
/** After a delete, how long past the grace period we wait for the target to report the pod gone. */
const DELETE_SETTLE_MS = 15_000;
export const CONDITION_TYPE = 'TargetClusterReachable';

interface Tombstone {
  uid: string;
  pod: Pod;
}

export class ClusterProvider implements Provider {
  readonly name = 'cluster';
  private readonly config: ClusterConfig;
  private readonly client: KubeClient;
  private readonly source: KubeClient | undefined;
  private readonly nodeName: string;
  private readonly hostIP: string;
  private readonly log: Logger;
  private readonly mapping: NameMapping;
  private readonly informer: Informer<Pod>;
  private readonly streams: TargetStreams;
  private readonly stats: TargetStats;
  private readonly notifier: PodNotifier<string>;
  private readonly firstStatus: FirstStatusDelay;
  private readonly inFlight: InFlightLimit;
  private readonly eventListeners: PodEventListener[] = [];
  /** Source pod UIDs whose lost target pod has been reported with an Event (once per process). */
  private readonly reportedLost = new Set<string>();
  /** Target pods by source key (namespace/name), from the watch and our own writes. */
  private readonly bySource = new Map<string, Pod>();
  /** Source pods whose target pod went away behind our back and that are not re-created: what they report. */
  private readonly tombstones = new Map<string, Tombstone>();
  /**
   * Each target pod version as the source sees it, rendered once: the notifier, and the core's
   * getPod on every sync of the pod, ask for it several times per version (a clone each, before).
   */
  private readonly rendered = new WeakMap<Pod, Pod>();
  /**
   * The source pods' tolerations by source UID (the target pods have the configured ones), so the
   * core sees no drift. Kept here, not on the target pod: an annotation there made every version
   * of every target pod ~20% larger. After a restart the core hands them back through updatePod.
   */
  private readonly tolerations = new Map<string, Toleration[] | undefined>();
  /** Target pod UIDs we are deleting ourselves, with who waits for them to be gone. */
  private readonly deleting = new Map<string, PromiseWithResolvers<void>>();
  private readonly stopping = new AbortController();
  private capacity: Record<string, string>;
  /** What the target's kubelet sets in every container by itself (target-env.ts). */
  private implicitEnv: ReadonlyMap<string, string> = new Map();
  private condition: NodeCondition;
  private capacityTimer: NodeJS.Timeout | undefined;
  /** listPods answered before the watch synced: the orphan sweep is ours to do once it has. */
  private sweepOnSync = false;

  private constructor(config: ClusterConfig, client: KubeClient, context: ProviderContext) {
    this.config = config;
    this.client = client;
    this.source = context.kube;
    this.nodeName = context.nodeName;
    this.hostIP = context.nodeIP;
    this.log = context.log.child({ provider: 'cluster', target: client.server.origin });
    this.mapping = new NameMapping(config.namespaces);
    this.streams = new TargetStreams(client, config.requestTimeoutMs, config.streams.protocol, this.log);
    this.stats = new TargetStats(client, context.nodeName, config.requestTimeoutMs, this.log);
    this.notifier = new PodNotifier((key) => this.render(key), this.log);
    this.firstStatus = new FirstStatusDelay((key) => this.notifier.markDirty(key));
    this.inFlight = new InFlightLimit(config.maxRequestsInFlight);
    this.capacity = { ...FALLBACK_CAPACITY, ...config.capacity };
    this.condition = condition('Unknown', 'NotYetChecked', 'the target cluster has not been reached yet');
    this.informer = new Informer<Pod>({
      client,
      path: '/api/v1/pods',
      labelSelector: `${LABEL_NODE}=${context.nodeName}`,
      log: this.log,
      transform: stripManagedFields,
    });
    this.informer.addHandlers({
      onAdd: (pod) => this.seen(pod),
      onUpdate: (_old, pod) => this.seen(pod),
      onDelete: (pod) => this.gone(pod),
    });
  }

  /** Reads the config and the target's credentials; an unreachable target is not fatal (the node reports it). */
  static async open(input: unknown, context: ProviderContext): Promise<ClusterProvider> {
    const config = parseClusterConfig(input);
    const client = await targetClient(config);
    const provider = new ClusterProvider(config, client, context);
    provider.informer.start();
    await provider
      .ping(AbortSignal.timeout(config.requestTimeoutMs))
      .catch((err: unknown) => provider.log.warn({ err: errorMessage(err) }, 'target cluster not reachable at start-up; pods wait for it'));
    await provider.refreshCapacity();
    provider.capacityTimer = setInterval(() => void provider.refreshCapacity(), config.capacityRefreshMs);
    provider.capacityTimer.unref();
    void provider.informer
      .waitForSync(provider.stopping.signal)
      .then(() => (provider.sweepOnSync ? provider.sweepOrphans() : undefined))
      .catch(() => {});
    return provider;
  }

  // ---- the watch on the target ----

  private seen(pod: Pod): void {
    const source = sourceOf(pod.metadata, this.nodeName);
    if (!source) return;
    const key = `${source.namespace}/${source.name}`;
    const current = this.bySource.get(key);
    // An older incarnation's late event must not replace the current one.
    if (current && sourceOf(current.metadata, this.nodeName)?.uid !== source.uid && this.deleting.has(pod.metadata?.uid ?? '')) return;
    this.bySource.set(key, pod);
    this.tombstones.delete(key);
    this.firstStatus.changed(key, pod);
  }

  private gone(pod: Pod): void {
    const source = sourceOf(pod.metadata, this.nodeName);
    if (!source) return;
    const key = `${source.namespace}/${source.name}`;
    const targetUid = pod.metadata?.uid ?? '';
    if (this.bySource.get(key)?.metadata?.uid === targetUid) this.bySource.delete(key);
    const waiter = this.deleting.get(targetUid);
    if (waiter) {
      this.deleting.delete(targetUid);
      this.tolerations.delete(source.uid);
      waiter.resolve();
      return;
    }
    // Deleted or evicted behind our back. A pod that may restart its containers is created again
    // by the core (its restart semantics); one that may not ends Failed, as the kubelet would report it.
    const policy = pod.spec?.restartPolicy ?? 'Always';
    const finished = isFinished(pod);
    this.log.warn({ pod: key, target: `${pod.metadata?.namespace}/${pod.metadata?.name}`, policy }, 'target pod deleted behind our back');
    // A finished pod removed by the target's own garbage collection keeps its final status; no alarm.
    if (!finished) this.reportLost(source, `${pod.metadata?.namespace}/${pod.metadata?.name}`, policy);
    if (finished || policy === 'Never') {
      const last = sourcePod(pod, source, this.nodeName, this.hostIP, this.tolerations.get(source.uid));
      const status: PodStatus = finished
        ? (last.status ?? {})
        : lostStatus(
            pod,
            'TargetPodDeleted',
            `the pod ${pod.metadata?.namespace}/${pod.metadata?.name} was deleted in the target cluster ${this.client.server.origin}`,
            this.hostIP,
          );
      this.tombstones.set(key, { uid: source.uid, pod: { ...last, status } });
    }
    this.notifier.markDirty(key);
  }

  /**
   * A target pod as one of our writes returned it. The watch may have delivered a newer version
   * already (the target kubelet can report Running before our create's answer is read): the
   * newer one stays, or the pod would be stuck on the stale status until its next change.
   */
  private remember(key: string, pod: Pod): void {
    const current = this.bySource.get(key);
    if (current && current.metadata?.uid === pod.metadata?.uid && !isOlder(current, pod)) return;
    this.bySource.set(key, pod);
    this.firstStatus.changed(key, pod);
  }

  private render(key: string): Pod | undefined {
    const tombstone = this.tombstones.get(key);
    if (tombstone) return tombstone.pod;
    const target = this.bySource.get(key);
    if (target) return this.asSource(target);
    // Gone without a tombstone: a pod with only a name tells the core to look again (and create it anew).
    const slash = key.indexOf('/');
    return { metadata: { namespace: key.slice(0, slash), name: key.slice(slash + 1) } };
  }

  private requireSynced(what: string): void {
    if (!this.informer.hasSynced())
      throw new ProviderUnavailableError(
        `${what}: the watch on the target cluster ${this.client.server.origin} has not synced yet (${this.condition.message})`,
      );
  }

  // ---- lifecycle ----

  async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    const source = sourceRef(resolved.pod);
    const key = `${source.namespace}/${source.name}`;
    throwIfAborted(options.signal, `create ${key}`);
    if (!this.mapping.allows(source.namespace))
      throw new PodRejectedError('NamespaceNotAllowed', `namespace ${source.namespace} may not burst into the target cluster (namespaces.allow)`);
    this.requireSynced(`create ${key}`);
    this.tolerations.set(source.uid, resolved.pod.spec?.tolerations);
    const target = this.mapping.target(source.namespace, source.name);
    const objects = translatePod(resolved, target, this.nodeName, this.config, this.implicitEnv);
    const existing = this.bySource.get(key);
    if (existing) {
      if (sourceOf(existing.metadata, this.nodeName)?.uid === source.uid) {
        // Ours already (created before a crash): make sure its objects are whole.
        await this.write(() => writeDependents(this.client, existing, dependents(objects), options.signal), `update objects of ${key}`);
        return;
      }
      await this.deleteTarget(existing, 0, options.signal);
      throw new TryLaterError(`an older incarnation of ${key} is still terminating in the target cluster`, 1000);
    }
    if (ranInTarget(resolved.pod)) {
      // Its status says a target pod ran it, and there is none: it was deleted behind our back,
      // perhaps while we were down (the in-memory tombstone is lost with a restart; the status is not).
      const policy = resolved.pod.spec?.restartPolicy ?? 'Always';
      this.reportLost(source, `${target.namespace}/${target.name}`, policy);
      if (policy === 'Never') {
        const message = `the pod ${target.namespace}/${target.name} was deleted in the target cluster ${this.client.server.origin}`;
        const status = lostStatus(resolved.pod, 'TargetPodDeleted', message, this.hostIP);
        this.tombstones.set(key, { uid: source.uid, pod: { ...cloneJson(resolved.pod), status } });
        this.notifier.markDirty(key);
        return;
      }
    }
    this.tombstones.delete(key);
    // The objects first: a target kubelet that saw the pod before its env Secret would fail it and back off.
    const items = dependents(objects);
    await this.inNamespace(target.namespace, options.signal, () =>
      this.write(() => writeDependents(this.client, undefined, items, options.signal), `create objects of ${key}`),
    );
    let created: Pod;
    try {
      created = await this.createTargetPod(objects.pod, target, source, options.signal);
    } catch (err) {
      await removeDependents(this.client, items);
      throw err;
    }
    this.remember(key, created);
    await this.write(() => ownDependents(this.client, created, items, options.signal), `own objects of ${key}`);
  }

  /** Runs a write into `namespace`; when the namespace is missing, creates it (if allowed) and runs it once more. */
  private async inNamespace<T>(namespace: string, signal: AbortSignal, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (!isStatus(err, 404) || !/namespaces? .*not found/i.test(err.message)) throw err;
      if (!this.config.namespaces.create)
        throw new PodRejectedError('TargetNamespaceMissing', `namespace ${namespace} does not exist in the target cluster and namespaces.create is off`);
      await this.createNamespace(namespace, signal);
      return await call();
    }
  }

  private async createTargetPod(pod: Pod, target: TargetRef, source: SourceRef, signal: AbortSignal): Promise<Pod> {
    try {
      return await this.inNamespace(target.namespace, signal, () =>
        this.inFlight.run(() =>
          this.client.create<Pod>(`/api/v1/namespaces/${target.namespace}/pods`, pod, { signal, timeoutMs: this.config.requestTimeoutMs }),
        ),
      );
    } catch (err) {
      if (isStatus(err, 409)) return await this.claimExisting(target, source, signal);
      throw classify(err, this.client.server.origin, `create pod ${target.namespace}/${target.name}`);
    }
  }

  /** A pod of our name exists: ours from before a crash (adopt), or someone else's (never touched). */
  private async claimExisting(target: TargetRef, source: SourceRef, signal: AbortSignal): Promise<Pod> {
    const path = `/api/v1/namespaces/${target.namespace}/pods/${target.name}`;
    const existing = await this.client.get<Pod>(path, { signal }).catch((err: unknown) => {
      throw classify(err, this.client.server.origin, `get pod ${target.namespace}/${target.name}`);
    });
    const owner = sourceOf(existing.metadata, this.nodeName);
    if (owner?.uid === source.uid) return existing;
    if (owner) throw new TryLaterError(`an older incarnation of ${source.namespace}/${source.name} still exists in the target cluster`, 1000);
    throw new PodRejectedError(
      'NameCollision',
      `a pod ${target.namespace}/${target.name} that this virtual node did not create already exists in the target cluster ${this.client.server.origin}; it is left alone`,
    );
  }

  private async createNamespace(namespace: string, signal: AbortSignal): Promise<void> {
    try {
      await this.client.create('/api/v1/namespaces', { metadata: { name: namespace, labels: { [LABEL_MANAGED]: 'true' } } }, { signal, discardResponse: true });
      this.log.info({ namespace }, 'created target namespace');
    } catch (err) {
      if (isStatus(err, 409)) return;
      if (isStatus(err, 403))
        throw new PodRejectedError(
          'TargetForbidden',
          `namespace ${namespace} is missing in the target cluster and we may not create it: ${(err as Error).message}`,
        );
      throw classify(err, this.client.server.origin, `create namespace ${namespace}`);
    }
  }

  private async write(call: () => Promise<void>, what: string): Promise<void> {
    try {
      await this.inFlight.run(call);
    } catch (err) {
      throw classify(err, this.client.server.origin, what);
    }
  }

  async updatePod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    const source = sourceRef(resolved.pod);
    const key = `${source.namespace}/${source.name}`;
    this.requireSynced(`update ${key}`);
    const current = this.bySource.get(key);
    if (!current || sourceOf(current.metadata, this.nodeName)?.uid !== source.uid)
      throw new NotFoundError(`pod ${key} (uid ${source.uid}) does not run in the target cluster`);
    const target: TargetRef = { namespace: current.metadata!.namespace!, name: current.metadata!.name! };
    const objects = translatePod(resolved, target, this.nodeName, this.config, this.implicitEnv);
    await this.write(() => writeDependents(this.client, current, dependents(objects), options.signal), `update objects of ${key}`);
    this.tolerations.set(source.uid, resolved.pod.spec?.tolerations);
    // The source view of this version had the tolerations we knew before.
    this.rendered.delete(current);
    // Labels, annotations and images as the source now has them (a merge patch: removed keys as null).
    const nulls = (before: Record<string, string> | undefined, after: Record<string, string> | undefined) => {
      const out: Record<string, string | null> = { ...after };
      for (const k of Object.keys(before ?? {})) if (!(k in out)) out[k] = null;
      return out;
    };
    const wanted = objects.pod;
    const sameMap = (a: Record<string, string> | undefined, b: Record<string, string> | undefined) => {
      const [x, y] = [Object.entries(a ?? {}), b ?? {}];
      return x.length === Object.keys(y).length && x.every(([k, v]) => y[k] === v);
    };
    const imagesChanged =
      wanted.spec!.containers.some((c, i) => current.spec?.containers[i]?.image !== c.image) ||
      (wanted.spec!.initContainers ?? []).some((c, i) => current.spec?.initContainers?.[i]?.image !== c.image);
    if (
      !imagesChanged &&
      wanted.spec?.activeDeadlineSeconds === current.spec?.activeDeadlineSeconds &&
      sameMap(current.metadata?.labels, wanted.metadata?.labels) &&
      sameMap(current.metadata?.annotations, wanted.metadata?.annotations)
    )
      return; // only what the source view renders changed (tolerations; all of it after a restart)
    const patch = {
      metadata: {
        labels: nulls(current.metadata?.labels, wanted.metadata?.labels),
        annotations: nulls(current.metadata?.annotations, wanted.metadata?.annotations),
      },
      ...((imagesChanged || wanted.spec?.activeDeadlineSeconds !== current.spec?.activeDeadlineSeconds) && {
        spec: {
          ...(imagesChanged && { containers: wanted.spec!.containers.map((c) => ({ name: c.name, image: c.image })) }),
          ...(wanted.spec?.activeDeadlineSeconds !== undefined && { activeDeadlineSeconds: wanted.spec.activeDeadlineSeconds }),
        },
      }),
    };
    const updated = await this.client
      .patch<Pod>(`/api/v1/namespaces/${target.namespace}/pods/${target.name}`, patch, 'application/strategic-merge-patch+json', { signal: options.signal })
      .catch((err: unknown) => {
        throw classify(err, this.client.server.origin, `update pod ${target.namespace}/${target.name}`);
      });
    this.remember(key, updated);
  }

  async deletePod(pod: Pod, options: DeleteOptions): Promise<void> {
    const source = sourceRef(pod);
    const key = `${source.namespace}/${source.name}`;
    const tombstone = this.tombstones.get(key);
    if (tombstone && tombstone.uid === source.uid) {
      this.tombstones.delete(key);
      this.tolerations.delete(source.uid);
      return;
    }
    const current = this.bySource.get(key);
    if (!current || sourceOf(current.metadata, this.nodeName)?.uid !== source.uid)
      throw new NotFoundError(`pod ${key} (uid ${source.uid}) does not run in the target cluster`);
    // A finished target pod stays, with its logs, until the source pod is deleted (then `deleted`
    // comes) or the target's own garbage collection removes it: `kubectl logs` of a completed pod.
    if (options.reason === 'finished' && isFinished(current)) return;
    const grace =
      options.reason === 'finished' || isFinished(current) ? 0 : (pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30);
    await this.deleteTarget(current, grace, options.signal);
  }

  /** Deletes a target pod (its objects go with it) and waits until the watch reports it gone. */
  private async deleteTarget(pod: Pod, graceSeconds: number, signal: AbortSignal): Promise<void> {
    const uid = pod.metadata!.uid!;
    const waiter = this.deleting.get(uid) ?? Promise.withResolvers<void>();
    this.deleting.set(uid, waiter);
    try {
      await this.inFlight.run(() =>
        this.client.delete(
          `/api/v1/namespaces/${pod.metadata!.namespace}/pods/${pod.metadata!.name}`,
          { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: graceSeconds, preconditions: { uid }, propagationPolicy: 'Background' },
          { signal, discardResponse: true },
        ),
      );
    } catch (err) {
      // Gone already, or the name now holds another pod: either way ours is gone.
      if (!isStatus(err, 404) && !isStatus(err, 409)) {
        this.deleting.delete(uid);
        throw classify(err, this.client.server.origin, `delete pod ${pod.metadata!.namespace}/${pod.metadata!.name}`);
      }
      if (!this.informer.list().some((p) => p.metadata?.uid === uid)) {
        this.deleting.delete(uid);
        this.forget(pod);
        return;
      }
    }
    const timeout = AbortSignal.timeout(graceSeconds * 1000 + DELETE_SETTLE_MS);
    await Promise.race([
      waiter.promise,
      sleep(graceSeconds * 1000 + DELETE_SETTLE_MS, undefined, { signal: AbortSignal.any([timeout, signal]) }).catch(() => {}),
    ]);
    if (!this.deleting.has(uid)) return;
    // Not gone yet (a slow target kubelet): the watch will tell, and the target finishes it.
    this.forget(pod);
  }

  private forget(pod: Pod): void {
    const source = sourceOf(pod.metadata, this.nodeName);
    if (!source) return;
    this.tolerations.delete(source.uid);
    const key = `${source.namespace}/${source.name}`;
    if (this.bySource.get(key)?.metadata?.uid === pod.metadata?.uid) this.bySource.delete(key);
  }

  getPod(namespace: string, name: string): Promise<Pod | undefined> {
    const key = `${namespace}/${name}`;
    const tombstone = this.tombstones.get(key);
    if (tombstone) return Promise.resolve(tombstone.pod);
    this.requireSynced(`get ${key}`);
    const target = this.bySource.get(key);
    return Promise.resolve(target && this.asSource(target));
  }

  /** The source's view of a target pod (not to be modified: it is shared until the target pod changes). */
  private asSource(target: Pod): Pod | undefined {
    let pod = this.rendered.get(target);
    if (!pod) {
      const source = sourceOf(target.metadata, this.nodeName);
      if (!source) return undefined;
      pod = sourcePod(target, source, this.nodeName, this.hostIP, this.tolerations.get(source.uid));
      this.rendered.set(target, pod);
    }
    return pod;
  }

  async getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined> {
    return (await this.getPod(namespace, name))?.status;
  }

  async listPods(): Promise<Pod[]> {
    if (!this.informer.hasSynced()) {
      await this.informer.waitForSync(AbortSignal.any([AbortSignal.timeout(LIST_SYNC_WAIT_MS), this.stopping.signal])).catch(() => {});
      if (!this.informer.hasSynced()) {
        this.log.warn('target cluster not synced; pods deleted at the source meanwhile are swept once it is');
        this.sweepOnSync = true;
      }
    }
    const out: Pod[] = [];
    for (const key of new Set([...this.bySource.keys(), ...this.tombstones.keys()])) {
      const pod = this.render(key);
      if (pod?.metadata?.uid) out.push(pod);
    }
    return out;
  }

  /** Target pods whose source pod is gone (deleted while we could not see the target): deleted. */
  private async sweepOrphans(): Promise<void> {
    if (!this.source) return;
    for (const target of [...this.bySource.values()]) {
      const source = sourceOf(target.metadata, this.nodeName);
      if (!source) continue;
      try {
        const pod = await this.source.get<Pod>(`/api/v1/namespaces/${source.namespace}/pods/${source.name}`);
        if (pod.metadata?.uid === source.uid) continue;
      } catch (err) {
        if (!isStatus(err, 404)) continue;
      }
      this.log.info({ pod: `${source.namespace}/${source.name}` }, 'deleting target pod whose source pod is gone');
      await this.deleteTarget(target, 0, this.stopping.signal).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'orphan sweep failed'));
    }
  }

  notifyPods(listener: PodListener): void {
    this.notifier.addListener(listener);
  }

  notifyPodEvents(listener: PodEventListener): void {
    this.eventListeners.push(listener);
  }

  /** An Event of our own on the source pod: its target pod was deleted behind our back (once per source pod and process). */
  private reportLost(source: SourceRef, target: string, policy: string): void {
    if (this.reportedLost.has(source.uid)) return;
    this.reportedLost.add(source.uid);
    const next = policy === 'Never' ? 'the pod is reported Failed (restartPolicy Never)' : `it is created again (restartPolicy ${policy})`;
    const event = {
      namespace: source.namespace,
      name: source.name,
      uid: source.uid,
      type: 'Warning' as const,
      reason: 'TargetPodDeleted',
      message: `the pod ${target} was deleted in the target cluster ${this.client.server.origin} by someone else; ${next}`,
    };
    for (const listener of this.eventListeners) listener(event);
  }

  // ---- node ----

  nodeConfig(): NodeConfig {
    return { capacity: this.capacity, labels: { ...this.config.labels }, conditions: [this.condition] };
  }

  /** Health of the target's API: unreachable, refused credentials and forbidden each say so on the node. */
  async ping(signal: AbortSignal): Promise<void> {
    try {
      await this.client.get('/api/v1/namespaces/default', { signal, timeoutMs: this.config.requestTimeoutMs });
      this.condition = condition('True', 'Reachable', `the target cluster ${this.client.server.origin} answers`, this.condition);
    } catch (err) {
      let reason = 'Unreachable';
      let message = `the target cluster ${this.client.server.origin} is unreachable: ${errorMessage(err)}`;
      if (isStatus(err, 401)) {
        reason = 'Unauthorized';
        message = `the target cluster ${this.client.server.origin} rejected our credentials (401 Unauthorized; ${this.client.config.source})`;
      } else if (isStatus(err, 403)) {
        reason = 'Forbidden';
        message = `the target cluster ${this.client.server.origin} forbids us to read namespaces: ${errorMessage(err)}`;
      } else if (!isConnectFailure(err) && !signal.aborted) {
        reason = 'Error';
      }
      if (reason === 'Forbidden') {
        // Reachable and authenticated; RBAC may still allow what pods need.
        this.condition = condition('True', 'Reachable', message, this.condition);
        return;
      }
      this.condition = condition('False', reason, message, this.condition);
      throw new ProviderUnavailableError(message, { cause: err });
    }
  }

  private async refreshCapacity(): Promise<void> {
    try {
      this.capacity = await targetCapacity(this.client, this.nodeName, this.config.capacity, AbortSignal.timeout(this.config.requestTimeoutMs));
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'target capacity not readable; keeping the last one');
    }
    try {
      this.implicitEnv = await targetImplicitEnv(this.client, AbortSignal.timeout(this.config.requestTimeoutMs));
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, "the target's kubernetes Service is not readable; every resolved variable goes into the target pods");
    }
  }

  // ---- stats ----

  /** Our running pods' usage as the target measures it (metrics.k8s.io, else its nodes' summaries). */
  async getStats(): Promise<PodStats[]> {
    return await this.stats.collect([...this.bySource.values()]);
  }

  // ---- streams ----

  private targetOf(namespace: string, name: string): TargetRef {
    const pod = this.bySource.get(`${namespace}/${name}`);
    if (!pod) throw new NotFoundError(`pod ${namespace}/${name} does not run in the target cluster`);
    return { namespace: pod.metadata!.namespace!, name: pod.metadata!.name! };
  }

  async getContainerLogs(namespace: string, pod: string, container: string, options: LogOptions): Promise<Readable> {
    return await this.streams.logs(this.targetOf(namespace, pod), container, options);
  }

  async runInContainer(namespace: string, pod: string, container: string, command: string[], streams: ExecStreams): Promise<number> {
    return await this.streams.remoteCommand(this.targetOf(namespace, pod), container, command, streams);
  }

  async attachToContainer(namespace: string, pod: string, container: string, streams: ExecStreams): Promise<void> {
    await this.streams.remoteCommand(this.targetOf(namespace, pod), container, undefined, streams);
  }

  async portForward(namespace: string, pod: string, port: number, stream: Duplex): Promise<void> {
    await this.streams.portForward(this.targetOf(namespace, pod), port, stream);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.capacityTimer);
    this.firstStatus.stop();
    await this.informer.stop();
    this.streams.close();
    this.client.close();
  }
}

/** Whether `a` is an older version of the same object than `b` (resourceVersions compared as numbers, as etcd issues them; unknown: not older). */
function isOlder(a: Pod, b: Pod): boolean {
  const [x, y] = [Number(a.metadata?.resourceVersion), Number(b.metadata?.resourceVersion)];
  return Number.isFinite(x) && Number.isFinite(y) && x < y;
}

function condition(status: 'True' | 'False' | 'Unknown', reason: string, message: string, previous?: NodeCondition): NodeCondition {
  const now = new Date().toISOString();
  return {
    type: CONDITION_TYPE,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now,
  };
}
