// Keeps the provider's pods equal to the API's pods bound to this node, and the API's pod
// status equal to the provider's. Level-triggered: every change (API watch, provider push,
// poll, referenced ConfigMap/Secret, resync) enqueues the pod's key, and one sync function
// reconciles lifecycle and status for that key. What it remembers per pod is one PodRecord.
import { AbortedError, NotFoundError, PodRejectedError, ProviderUnavailableError, TryLaterError, VkError, errorMessage, hasCode } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { Informer, stripManagedFields, type InformerHandlers } from '../kube/informer.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { CallOptions, DeleteReason, PodEvent, Provider } from '../providers/provider.ts';
import { podKey } from '../providers/provider.ts';
import { PodConfigError, UnsupportedPodSpecError, referencedObjects, resolvePod, type ObjectSource, type ResolveResult } from '../resolve/resolve-pod.ts';
import { ATTR, tracer } from '../tracing/tracer.ts';
import { AbortRace } from '../util/abort.ts';
import { every } from '../util/periodic.ts';
import { WorkQueue, runWorkers } from '../util/work-queue.ts';
import { EventBudget } from './event-budget.ts';
import { EventRecorder, type EventDetails, type EventType } from './events.ts';
import { EMPTY_DIGEST, deliveryDigest, updatableFingerprint } from './fingerprints.ts';
import type { PodSource } from './pod-source.ts';
import { PodRecords, type PodRecord } from './pod-state.ts';
import { isTerminalPhase, rejectedStatus, waitingStatus } from './pod-status.ts';
import { checkPodEvent } from './provider-events.ts';
import { ReferenceWatcher, type PodReferences, type ReferenceChange } from './references.ts';
import type { SharedReferences } from './shared-references.ts';
import { StatusWriter, type StatusClient } from './status-writer.ts';

export interface PodControllerOptions {
  nodeName: string;
  hostIP: string;
  workers: number;
  /** Every pod is reconciled at least this often. */
  resyncIntervalMs: number;
  /** How often a provider without push notifications is polled for status. */
  statusPollIntervalMs: number;
  /** Node allocatable, the default for resourceFieldRef limits. */
  nodeAllocatable: () => Record<string, string>;
  /** The API's pods bound to this node (a view of the process's shared pod watch); unset: an informer of its own. */
  podSource?: PodSource;
  /** The process's shared reference watches (src/pods/shared-references.ts); unset: this node's own. */
  sharedReferences?: SharedReferences;
  /** Where Event writes are paced, shared by the process's nodes; unset: one of its own with the kubelet's defaults. */
  eventBudget?: EventBudget;
  /**
   * DaemonSet pods (kube-proxy, CNI and log agents tolerate every taint, so they land here too):
   * 'reject' fails them at admission, as the kubelet rejects pods it cannot admit; the
   * DaemonSet controller's backoff then keeps re-creations rare. Default 'run'.
   */
  daemonSetPods?: 'reject' | 'run';
  /** Retry backoff of a failing pod: first delay, doubling to the maximum (default 200 ms to 5 min). */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
}

/** What one sync did, in the kubelet's pod worker terms (kubelet_pod_worker_duration_seconds). */
export type PodWorkerOperation = 'create' | 'update' | 'sync' | 'kill';

export interface PodControllerMetrics {
  syncDuration?(seconds: number, outcome: 'ok' | 'error'): void;
  /** A successful sync, by what it did. */
  podWorker?(operation: PodWorkerOperation, seconds: number): void;
  providerCall?(operation: string, seconds: number, ok: boolean): void;
  /** createPod returned (ok) or failed; restarted: this UID had been created before and was gone from the provider. */
  podCreated?(ok: boolean, restarted: boolean): void;
  /** The pod's first Running status, seconds after this controller first synced it. */
  podRunning?(pod: Pod, sinceFirstSeenSeconds: number): void;
}

/** The ConfigMaps, Secrets and Services pods refer to: resolution reads them, and a change re-syncs the pods. */
export interface ReferenceTracker extends ObjectSource {
  track(podKey: string, refs: PodReferences): void;
  untrack(podKey: string): void;
  stop(): Promise<void>;
}

/** Where the controller records pod Events (rate-limited and aggregated in production). */
export interface PodEventSink {
  pod(pod: Pod, type: EventType, reason: string, message: string, details?: EventDetails): void;
  stop(): void;
}

/** What the controller reads and writes, injected so its logic can be tested without a cluster. */
export interface PodControllerDeps {
  /** The API's pods bound to this node. */
  source: PodSource;
  /** Made with the callback that re-syncs pods whose references changed. */
  references: (onChange: ReferenceChange) => ReferenceTracker;
  /** Status patches and the final DELETE of gracefully deleted pods. */
  api: StatusClient;
  events: PodEventSink;
}

/** The status reason and Event reason of a DaemonSet pod rejected at admission. */
export const DAEMONSET_REJECTED_REASON = 'DaemonSetPodRejected';

export class PodController {
  private readonly provider: Provider;
  private readonly options: PodControllerOptions;
  private readonly log: Logger;
  private readonly source: PodSource;
  private readonly queue: WorkQueue;
  private readonly events: PodEventSink;
  private readonly references: ReferenceTracker;
  private readonly statuses: StatusWriter;
  private readonly metrics: PodControllerMetrics;
  private readonly records = new PodRecords();
  private workers: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Aborts provider calls in flight when the controller stops. */
  private readonly stopping = new AbortController();
  private readonly call: CallOptions = { signal: this.stopping.signal };
  private readonly inFlight = new AbortRace(this.stopping.signal);
  /** Provider Events dropped by checkPodEvent (for diagnostics). */
  droppedProviderEvents = 0;

  /** The production wiring: an informer on this node's pods, watched references, rate-limited Events. */
  static create(client: KubeClient, provider: Provider, options: PodControllerOptions, log: Logger, metrics: PodControllerMetrics = {}): PodController {
    const own = log.child({ component: 'pod-controller', node: options.nodeName });
    const budget = options.eventBudget ?? new EventBudget();
    return new PodController(provider, options, own, metrics, {
      source:
        options.podSource ??
        new Informer<Pod>({ client, path: '/api/v1/pods', fieldSelector: `spec.nodeName=${options.nodeName}`, log: own, transform: stripManagedFields }),
      references: (onChange) => options.sharedReferences?.forNode(options.nodeName, onChange) ?? new ReferenceWatcher(client, own, onChange),
      // Status patches and final deletes go before the process's Events.
      api: budget.prioritized(client),
      events: new EventRecorder(client, options.nodeName, own, budget),
    });
  }

  constructor(provider: Provider, options: PodControllerOptions, log: Logger, metrics: PodControllerMetrics, deps: PodControllerDeps) {
    this.provider = provider;
    this.options = options;
    this.log = log;
    this.metrics = metrics;
    this.source = deps.source;
    this.events = deps.events;
    this.statuses = new StatusWriter(deps.api, options.hostIP);
    this.queue = new WorkQueue({ baseDelayMs: options.retryBaseDelayMs ?? 200, maxDelayMs: options.retryMaxDelayMs ?? 300_000 });
    this.references = deps.references((kind, namespace, name, pods) => {
      this.log.debug({ kind, namespace, name, pods: pods.length }, 'referenced object changed');
      for (const key of pods) {
        const uid = this.source.get(key)?.metadata?.uid;
        if (uid) this.records.get(uid).referencesChanged = true;
        this.queue.add(key);
      }
    });
    this.source.addHandlers({
      onAdd: (pod) => this.queue.add(podKey(pod)),
      onUpdate: (_old, pod) => {
        this.statuses.observed(pod, this.records.peek(uidOf(pod)));
        this.queue.add(podKey(pod));
      },
      onDelete: (pod) => {
        this.records.delete(uidOf(pod));
        this.queue.add(podKey(pod));
      },
    });
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** The API's pods bound to this node, as last seen by the watch. */
  apiPods(): Pod[] {
    return this.source.list();
  }

  /** Also tells `handlers` about the API's pods on this node (the same cache the controller reads; cached pods are replayed as adds). */
  watchPods(handlers: InformerHandlers<Pod>): void {
    this.source.addHandlers(handlers);
  }

  /** Syncs the pod cache, reconciles the provider against it, then starts the workers. */
  async start(signal?: AbortSignal): Promise<void> {
    this.source.start();
    await this.source.waitForSync(signal);
    await this.reconcileProvider();
    // A status change from the provider goes ahead of queued creates (see WorkQueue).
    this.provider.notifyPods?.((pod) => this.queue.add(podKey(pod), true));
    this.provider.notifyPodEvents?.((event) => this.providerEvent(event));
    this.workers = runWorkers(this.queue, this.options.workers, (key) => this.process(key));
    for (const pod of this.source.list()) this.queue.add(podKey(pod));
    this.every(this.options.resyncIntervalMs, async () => {
      for (const pod of this.source.list()) this.queue.add(podKey(pod));
      for (const record of this.records.values()) this.statuses.expire(record);
    });
    if (!this.provider.notifyPods) this.every(this.options.statusPollIntervalMs, () => this.pollProvider());
    this.log.info({ pods: this.source.list().length, workers: this.options.workers }, 'pod controller started');
  }

  private every(intervalMs: number, task: () => Promise<void>): void {
    this.timers.push(every(intervalMs, task, (err) => this.stopping.signal.aborted || this.log.warn({ err: errorMessage(err) }, 'periodic pod task failed')));
  }

  /**
   * Start-up sweep: deletes provider pods of this node that the fully synced cache does not
   * hold under the same UID (deleted or re-created while we were down). Pods the provider
   * reports for another node are left alone.
   */
  private async reconcileProvider(): Promise<void> {
    if (!this.source.hasSynced()) throw new VkError('VK_KUBE_API', 'refusing to sweep provider pods before the pod cache is synced');
    const providerPods = await this.timed('listPods', () => this.provider.listPods(this.call));
    let removed = 0;
    for (const pod of providerPods) {
      const nodeName = pod.spec?.nodeName;
      if (nodeName && nodeName !== this.options.nodeName) continue;
      const apiPod = this.source.get(podKey(pod));
      if (apiPod && uidOf(apiPod) === uidOf(pod)) continue;
      this.log.info({ pod: podKey(pod), uid: pod.metadata?.uid }, 'deleting provider pod that no longer exists in the API');
      try {
        await this.timed('deletePod', () => this.provider.deletePod(pod, { ...this.call, reason: 'deleted' }));
        removed++;
      } catch (err) {
        if (!(err instanceof NotFoundError)) this.log.warn({ pod: podKey(pod), err: errorMessage(err) }, 'could not delete orphaned provider pod');
      }
    }
    this.log.info({ providerPods: providerPods.length, removed }, 'reconciled provider pods against the API');
  }

  /** An Event the provider reports: recorded against the API's pod, as our own Events are, if it passes the checks. */
  private providerEvent(event: PodEvent): void {
    if (this.stopping.signal.aborted) return;
    const key = `${event.namespace}/${event.name}`;
    const apiPod = this.source.get(key);
    const checked = checkPodEvent(event, apiPod);
    if (!checked.ok) {
      this.droppedProviderEvents++;
      this.log.debug({ pod: key, reason: event.reason, why: checked.why }, 'dropping an event the provider reported');
      return;
    }
    this.events.pod(apiPod!, checked.type, checked.reason, checked.message, checked.details);
  }

  private async pollProvider(): Promise<void> {
    for (const pod of await this.timed('listPods', () => this.provider.listPods(this.call))) {
      const apiPod = this.source.get(podKey(pod));
      if (apiPod && pod.status && this.statuses.differs(apiPod, pod.status)) this.queue.add(podKey(pod), true);
    }
  }

  /**
   * Times a provider call for the metrics. The call gets the controller's signal; on stop the
   * wait ends at once even if the provider ignores the signal, so shutdown never waits on it.
   */
  private timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const tracing = tracer();
    if (!tracing.enabled) return this.measured(operation, call);
    return tracing.inSpan(`provider ${operation}`, { 'vk.provider': this.provider.name }, () => this.measured(operation, call), { kind: 'client' });
  }

  private async measured<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await this.inFlight.run(call());
      this.metrics.providerCall?.(operation, (performance.now() - started) / 1000, true);
      return result;
    } catch (err) {
      this.metrics.providerCall?.(operation, (performance.now() - started) / 1000, false);
      throw err;
    }
  }

  private async process(key: string): Promise<void> {
    const tracing = tracer();
    if (!tracing.enabled) {
      await this.processTimed(key);
      return;
    }
    const slash = key.indexOf('/');
    const pod = {
      [ATTR.namespace]: key.slice(0, slash),
      [ATTR.pod]: key.slice(slash + 1),
      [ATTR.uid]: this.source.get(key)?.metadata?.uid,
      [ATTR.node]: this.options.nodeName,
    };
    await tracing.inSpan('pod sync', {}, async (span) => span.end(await this.processTimed(key)), { inherited: pod });
  }

  /** One sync, measured, with its retry scheduled; returns the error it failed with. */
  private async processTimed(key: string): Promise<unknown> {
    const started = performance.now();
    try {
      const operation = await this.sync(key);
      this.queue.forget(key);
      const seconds = (performance.now() - started) / 1000;
      this.metrics.syncDuration?.(seconds, 'ok');
      this.metrics.podWorker?.(operation, seconds);
    } catch (err) {
      if (this.stopping.signal.aborted && hasCode(err, 'VK_ABORTED')) return err;
      this.metrics.syncDuration?.((performance.now() - started) / 1000, 'error');
      if (err instanceof TryLaterError) {
        // The backend asked for time: come back when it said, without growing the backoff.
        const delay = err.retryAfterMs ?? this.queue.addRateLimited(key);
        if (err.retryAfterMs !== undefined) this.queue.addAfter(key, delay);
        this.log.info({ pod: key, err: errorMessage(err), retryInMs: delay }, 'provider asked to retry later');
        return err;
      }
      const delay = this.queue.addRateLimited(key);
      this.log.warn({ pod: key, err: errorMessage(err), code: err instanceof VkError ? err.code : undefined, retryInMs: delay }, 'pod sync failed');
      return err;
    }
    return undefined;
  }

  /** Reconciles one pod; says what it did (for the pod worker metric). */
  private async sync(key: string): Promise<PodWorkerOperation> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const apiPod = this.source.get(key);
    let providerPod: Pod | undefined;
    try {
      providerPod = await this.timed('getPod', () => this.provider.getPod(namespace, name, this.call));
    } catch (err) {
      if (apiPod && !hasCode(err, 'VK_ABORTED')) await this.reportUnavailable(apiPod, this.records.get(uidOf(apiPod)), err);
      throw err;
    }

    if (!apiPod) {
      this.references.untrack(key);
      if (!providerPod) return 'sync';
      await this.deleteInProvider(providerPod, 'deleted');
      return 'kill';
    }
    const record = this.records.get(uidOf(apiPod));
    if (providerPod && uidOf(providerPod) !== record.uid) {
      // A pod re-created under the same name: the old incarnation goes first.
      this.log.info({ pod: key, oldUid: providerPod.metadata?.uid, uid: record.uid }, 'replacing an older incarnation of the pod in the provider');
      await this.deleteInProvider(providerPod, 'deleted');
      providerPod = undefined;
    }

    if (apiPod.metadata?.deletionTimestamp) {
      if (providerPod) {
        this.events.pod(apiPod, 'Normal', 'Killing', `Stopping pod in provider ${this.provider.name}`);
        await this.deleteInProvider(apiPod, 'deleted');
      }
      this.references.untrack(key);
      await this.statuses.remove(apiPod, record);
      return 'kill';
    }

    if (isTerminalPhase(apiPod.status?.phase) || record.released) {
      if (providerPod) await this.release(apiPod, record);
      this.references.untrack(key);
      return providerPod ? 'kill' : 'sync';
    }

    let operation: PodWorkerOperation = 'sync';
    if (!providerPod) {
      // Syncs caused by our own status write must not retry before the time the backend asked for.
      const wait = (record.createNotBefore ?? 0) - Date.now();
      if (wait > 0) {
        this.queue.addAfter(key, wait);
        return 'sync';
      }
      operation = 'create';
      const created = await this.create(apiPod, record);
      if (!created) return operation;
      // A pushing provider reports the new pod's status itself; writing the transient
      // status here would cost a second patch per pod (and the resync covers a lost push).
      if (this.provider.notifyPods) return operation;
      providerPod = await this.timed('getPod', () => this.provider.getPod(namespace, name, this.call));
    } else if (updatableFingerprint(providerPod) !== updatableFingerprint(apiPod)) {
      operation = 'update';
      await this.update(apiPod, record);
    } else if (record.delivered === undefined) {
      // Adopted from an earlier run: watch its references, and hand over what a restart lost.
      this.trackReferences(apiPod);
      await this.refreshVolumes(apiPod, record);
    } else if ((record.refreshAt ?? Infinity) <= Date.now() || record.referencesChanged) {
      await this.refreshVolumes(apiPod, record);
    }

    const status = providerPod?.status ?? (await this.timed('getPodStatus', () => this.provider.getPodStatus(namespace, name, this.call)));
    if (!status) return operation;
    await this.statuses.write(apiPod, status, record);
    if (status.phase === 'Running' && !record.started) {
      record.started = true;
      this.events.pod(apiPod, 'Normal', 'Started', `Started pod in provider ${this.provider.name}`);
      this.metrics.podRunning?.(apiPod, (performance.now() - record.firstSeen) / 1000);
    }
    if (isTerminalPhase(status.phase)) await this.release(apiPod, record);
    return operation;
  }

  /** Passes an allowed spec change to the provider; one it rejects is reported once and not offered again. */
  private async update(apiPod: Pod, record: PodRecord): Promise<void> {
    const fingerprint = updatableFingerprint(apiPod);
    if (record.rejectedUpdate === fingerprint) return;
    this.trackReferences(apiPod);
    try {
      await this.updateInProvider(await this.resolve(apiPod, record), record);
    } catch (err) {
      if (!(err instanceof PodRejectedError)) throw err;
      record.rejectedUpdate = fingerprint;
      this.events.pod(apiPod, 'Warning', err.reason, `provider ${this.provider.name} cannot apply the change: ${err.message}`);
      return;
    }
    record.rejectedUpdate = undefined;
    this.log.info({ pod: podKey(apiPod) }, 'updated pod in provider');
  }

  /**
   * A running pod's volumes follow its ConfigMaps, Secrets and service-account tokens, as the
   * kubelet's do (env does not change). A reference that went missing keeps the old contents,
   * with a FailedMount Warning, instead of failing the pod.
   */
  private async refreshVolumes(pod: Pod, record: PodRecord): Promise<void> {
    let resolved: ResolveResult;
    try {
      resolved = await this.resolve(pod, record);
    } catch (err) {
      if (!(err instanceof PodConfigError)) throw err;
      this.events.pod(pod, 'Warning', 'FailedMount', `volumes not updated: ${err.message}`);
      return;
    }
    const digest = deliveryDigest(resolved);
    if (digest === (record.delivered ?? EMPTY_DIGEST)) {
      // Nothing new; an adopted pod with nothing to hand over counts as handed over.
      record.delivered = digest;
      return;
    }
    await this.updateInProvider(resolved, record);
    this.log.info({ pod: podKey(pod) }, 'updated volume contents in provider');
  }

  /** updatePod, remembering what the provider now has. */
  private async updateInProvider(resolved: ResolveResult, record: PodRecord): Promise<void> {
    await this.timed('updatePod', () => this.provider.updatePod(resolved, this.call));
    record.delivered = deliveryDigest(resolved);
  }

  /**
   * The provider could not be asked about the pod. A pod that never ran says why it waits
   * (a running pod's last status stays: it may well still be running).
   */
  private async reportUnavailable(pod: Pod, record: PodRecord, err: unknown): Promise<void> {
    if (pod.metadata?.deletionTimestamp || isTerminalPhase(pod.status?.phase)) return;
    const started = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].some(
      (c) => c.state?.running || c.state?.terminated || c.lastState?.terminated,
    );
    if (started) return;
    const message = `provider ${this.provider.name} is unavailable: ${errorMessage(err)}`;
    await this.statuses.write(pod, waitingStatus(pod, 'ProviderUnavailable', message), record).catch(() => {});
    this.events.pod(pod, 'Warning', 'Failed', message);
  }

  /**
   * Resolves env and volumes for the provider, records the kubelet's warnings, and schedules the
   * token refresh. Reference changes from here on call for another resolve.
   */
  private async resolve(pod: Pod, record: PodRecord): Promise<ResolveResult> {
    record.referencesChanged = false;
    const resolved = await resolvePod(pod, this.references, this.resolveContext(pod));
    for (const warning of resolved.warnings) this.events.pod(pod, 'Warning', warning.reason, warning.message);
    record.refreshAt = resolved.refreshAt?.getTime();
    if (record.refreshAt !== undefined) this.queue.addAfter(podKey(pod), record.refreshAt - Date.now());
    return resolved;
  }

  private resolveContext(pod: Pod) {
    return {
      nodeName: this.options.nodeName,
      hostIP: this.options.hostIP,
      podIP: pod.status?.podIP,
      podIPs: pod.status?.podIPs?.map((p) => p.ip ?? '').filter(Boolean),
      nodeAllocatable: this.options.nodeAllocatable(),
      providerVolumeTypes: this.provider.volumeTypes,
    };
  }

  /** Watches the ConfigMaps, Secrets and Services the pod refers to (a change re-syncs it). */
  private trackReferences(pod: Pod): void {
    const refs = referencedObjects(pod);
    this.references.track(podKey(pod), {
      namespace: pod.metadata?.namespace ?? '',
      configMaps: refs.configMaps,
      secrets: refs.secrets,
      services: pod.spec?.enableServiceLinks !== false,
    });
  }

  /** Resolves and creates the pod; false when it cannot start (yet), with status and Event written. */
  private async create(pod: Pod, record: PodRecord): Promise<boolean> {
    const daemonSet = pod.metadata?.ownerReferences?.find((owner) => owner.controller && owner.kind === 'DaemonSet');
    if (daemonSet && this.options.daemonSetPods === 'reject') {
      const message = `virtual node ${this.options.nodeName} does not run DaemonSet pods (DaemonSet ${daemonSet.name}); start it with --daemonset-pods run to run them`;
      await this.reject(pod, record, DAEMONSET_REJECTED_REASON, DAEMONSET_REJECTED_REASON, message);
      return false;
    }
    this.trackReferences(pod);
    let resolved: ResolveResult;
    try {
      resolved = await this.resolve(pod, record);
    } catch (err) {
      if (err instanceof UnsupportedPodSpecError) {
        // This node can never run it: Failed, as the kubelet does for pods it rejects.
        await this.reject(pod, record, err.reason, err.eventReason, err.message);
        return false;
      }
      if (err instanceof PodConfigError) {
        // Stays Pending; the reference watch re-enqueues the pod when the object appears,
        // and the rate-limited retry covers a missed watch event.
        await this.statuses.write(pod, waitingStatus(pod, err.reason, err.message), record);
        this.events.pod(pod, 'Warning', err.eventReason, err.eventReason === 'Failed' ? `Error: ${err.message}` : err.message);
        throw err;
      }
      throw err;
    }
    // Created before (or adopted) under this UID, and now gone from the provider: a restart.
    const restarted = record.delivered !== undefined;
    try {
      await this.timed('createPod', () => this.provider.createPod(resolved, this.call));
      record.delivered = deliveryDigest(resolved);
    } catch (err) {
      if (!hasCode(err, 'VK_ABORTED')) this.metrics.podCreated?.(false, restarted);
      await this.createFailed(pod, record, err);
      return false;
    }
    this.metrics.podCreated?.(true, restarted);
    this.events.pod(pod, 'Normal', 'Created', `Created pod in provider ${this.provider.name}`);
    this.log.info({ pod: podKey(pod), uid: record.uid }, 'created pod in provider');
    return true;
  }

  /**
   * createPod failed: by the error contract, a rejected spec fails the pod for good; an
   * unavailable or busy backend and anything else leave it Pending and retry (rethrown).
   */
  private async createFailed(pod: Pod, record: PodRecord, err: unknown): Promise<void> {
    if (hasCode(err, 'VK_ABORTED')) throw err;
    if (err instanceof PodRejectedError) {
      await this.reject(pod, record, err.reason, err.reason, `provider ${this.provider.name} cannot run the pod: ${err.message}`);
      return;
    }
    let reason = 'ProviderCreateFailed';
    let message = `provider ${this.provider.name} failed to create the pod: ${errorMessage(err)}`;
    if (err instanceof ProviderUnavailableError) {
      reason = 'ProviderUnavailable';
      message = `provider ${this.provider.name} is unavailable: ${err.message}`;
    } else if (err instanceof TryLaterError) {
      reason = 'ProviderBusy';
      message = `provider ${this.provider.name} asked to retry later: ${err.message}`;
    }
    if (err instanceof TryLaterError && err.retryAfterMs !== undefined) record.createNotBefore = Date.now() + err.retryAfterMs;
    this.events.pod(pod, 'Warning', 'Failed', message);
    await this.statuses.write(pod, waitingStatus(pod, reason, message), record);
    if (err instanceof TryLaterError) throw err;
    if (this.queue.failureCount(podKey(pod)) > 0)
      this.events.pod(pod, 'Warning', 'BackOff', `Back-off retrying pod creation in provider ${this.provider.name}`);
    throw err instanceof VkError ? err : new VkError('VK_PROVIDER', message, { cause: err });
  }

  /** Ends a pod this node can never run: Failed with the reason, a Warning Event, never created again. */
  private async reject(pod: Pod, record: PodRecord, reason: string, eventReason: string, message: string): Promise<void> {
    await this.statuses.write(pod, rejectedStatus(reason, message), record);
    this.events.pod(pod, 'Warning', eventReason, message);
    record.released = true;
  }

  private async deleteInProvider(pod: Pod, reason: DeleteReason): Promise<void> {
    try {
      await this.timed('deletePod', () => this.provider.deletePod(pod, { ...this.call, reason }));
      this.log.info({ pod: podKey(pod), uid: pod.metadata?.uid, reason }, 'deleted pod in provider');
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /** A finished pod keeps its API object (the kubelet does too) but frees the provider's resources. */
  private async release(pod: Pod, record: PodRecord): Promise<void> {
    record.released = true;
    await this.deleteInProvider(pod, 'finished');
  }

  /** Stops the workers; provider calls in flight are aborted, not waited on. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.stopping.abort(new AbortedError('the pod controller is stopping'));
    this.events.stop();
    this.queue.shutDown();
    await this.workers;
    await Promise.all([this.source.stop(), this.references.stop()]);
  }
}

function uidOf(pod: Pod): string {
  return pod.metadata?.uid ?? '';
}
