// Keeps the provider's pods equal to the API's pods bound to this node, and the API's pod
// status equal to the provider's. Level-triggered: every change (API watch, provider push,
// poll, referenced ConfigMap/Secret, resync) enqueues the pod's key, and one sync function
// reconciles lifecycle and status for that key.
import { createHash } from 'node:crypto';
import { AbortedError, NotFoundError, VkError, errorMessage, isStatus } from '../errors.ts';
import { MERGE_PATCH, type KubeClient } from '../kube/client.ts';
import { Informer, stripManagedFields } from '../kube/informer.ts';
import type { Pod, PodStatus } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { every } from '../util/periodic.ts';
import type { DeleteReason, Provider, ResolvedPod } from '../providers/provider.ts';
import { podKey } from '../providers/provider.ts';
import { PodConfigError, UnsupportedPodSpecError, referencedObjects, resolvePod, type ResolveResult } from '../resolve/resolve-pod.ts';
import { WorkQueue, runWorkers } from '../util/work-queue.ts';
import { EventRecorder, type EventRateLimit } from './events.ts';
import { completeStatus, isTerminalPhase, rejectedStatus, statusPatch, waitingStatus } from './pod-status.ts';
import { ReferenceWatcher } from './references.ts';

/** How long a written status is trusted over a lagging cache; after that the cache wins again. */
const WRITTEN_STATUS_TTL_MS = 30_000;

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
  /** Rate limit of Event writes; the kubelet's defaults when unset. */
  eventRateLimit?: EventRateLimit;
}

export interface PodControllerMetrics {
  syncDuration?(seconds: number, outcome: 'ok' | 'error'): void;
  providerCall?(operation: string, seconds: number, ok: boolean): void;
}

export class PodController {
  private readonly client: KubeClient;
  private readonly provider: Provider;
  private readonly options: PodControllerOptions;
  private readonly log: Logger;
  private readonly informer: Informer<Pod>;
  private readonly queue = new WorkQueue({ baseDelayMs: 200, maxDelayMs: 300_000 });
  private readonly events: EventRecorder;
  private readonly references: ReferenceWatcher;
  private readonly metrics: PodControllerMetrics;
  /** UIDs released in the provider after they finished; never created again. */
  private readonly released = new Set<string>();
  /** UIDs whose first Running status was announced with a Started event. */
  private readonly started = new Set<string>();
  /** The status last written per UID, until the watch delivers that write: skips rewrites while the cache lags. */
  private readonly written = new Map<string, { status: PodStatus; at: number; resourceVersion: string | undefined }>();
  /** UIDs whose API object we deleted: repeat syncs before the watch shows it gone send no second DELETE. */
  private readonly removed = new Set<string>();
  /** Pods whose ConfigMaps, Secrets or Services changed since their volumes were last resolved, by key. */
  private readonly referencesChanged = new Set<string>();
  /** Digest of the volume contents and pull secrets the provider last received from this process, by UID. */
  private readonly delivered = new Map<string, string>();
  /** When each pod's projected tokens must be resolved again (epoch ms), by UID. */
  private readonly refreshAt = new Map<string, number>();
  private workers: Promise<void[]> | undefined;
  /** Aborts provider calls in flight when the controller stops. */
  private readonly stopping = new AbortController();
  private readonly call = { signal: this.stopping.signal };
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(client: KubeClient, provider: Provider, options: PodControllerOptions, log: Logger, metrics: PodControllerMetrics = {}) {
    this.client = client;
    this.provider = provider;
    this.options = options;
    this.log = log.child({ component: 'pod-controller', node: options.nodeName });
    this.metrics = metrics;
    this.events = new EventRecorder(client, options.nodeName, this.log, options.eventRateLimit);
    this.informer = new Informer<Pod>({ client, path: '/api/v1/pods', fieldSelector: `spec.nodeName=${options.nodeName}`, log: this.log, transform: stripManagedFields });
    this.references = new ReferenceWatcher(client, this.log, (kind, namespace, name, pods) => {
      this.log.debug({ kind, namespace, name, pods: pods.length }, 'referenced object changed');
      for (const key of pods) {
        this.referencesChanged.add(key);
        this.queue.add(key);
      }
    });
    this.informer.addHandlers({
      onAdd: (pod) => this.queue.add(podKey(pod)),
      onUpdate: (_old, pod) => {
        const uid = pod.metadata?.uid ?? '';
        if (this.written.get(uid)?.resourceVersion === pod.metadata?.resourceVersion) this.written.delete(uid);
        this.queue.add(podKey(pod));
      },
      onDelete: (pod) => {
        this.released.delete(pod.metadata?.uid ?? '');
        this.started.delete(pod.metadata?.uid ?? '');
        this.refreshAt.delete(pod.metadata?.uid ?? '');
        this.written.delete(pod.metadata?.uid ?? '');
        this.removed.delete(pod.metadata?.uid ?? '');
        this.delivered.delete(pod.metadata?.uid ?? '');
        this.queue.add(podKey(pod));
      },
    });
  }

  get queueLength(): number {
    return this.queue.length;
  }

  /** Syncs the pod cache, reconciles the provider against it, then starts the workers. */
  async start(signal?: AbortSignal): Promise<void> {
    this.informer.start();
    await this.informer.waitForSync(signal);
    await this.reconcileProvider();
    this.provider.notifyPods?.((pod) => this.queue.add(podKey(pod)));
    this.workers = runWorkers(this.queue, this.options.workers, (key) => this.process(key));
    for (const pod of this.informer.list()) this.queue.add(podKey(pod));
    this.every(this.options.resyncIntervalMs, async () => {
      for (const pod of this.informer.list()) this.queue.add(podKey(pod));
      const expired = Date.now() - WRITTEN_STATUS_TTL_MS;
      for (const [uid, entry] of this.written) if (entry.at < expired) this.written.delete(uid);
    });
    if (!this.provider.notifyPods) this.every(this.options.statusPollIntervalMs, () => this.pollProvider());
    this.log.info({ pods: this.informer.list().length, workers: this.options.workers }, 'pod controller started');
  }

  private every(intervalMs: number, task: () => Promise<void>): void {
    this.timers.push(every(intervalMs, task, (err) => this.log.warn({ err: errorMessage(err) }, 'periodic pod task failed')));
  }


  /**
   * Start-up sweep: deletes provider pods of this node that the fully synced cache does not
   * hold under the same UID (deleted or re-created while we were down). Pods the provider
   * reports for another node are left alone.
   */
  private async reconcileProvider(): Promise<void> {
    if (!this.informer.hasSynced()) throw new VkError('VK_PROVIDER', 'refusing to sweep provider pods before the pod cache is synced');
    const providerPods = await this.timed('listPods', () => this.provider.listPods(this.call));
    let removed = 0;
    for (const pod of providerPods) {
      const nodeName = pod.spec?.nodeName;
      if (nodeName && nodeName !== this.options.nodeName) continue;
      const apiPod = this.informer.get(podKey(pod));
      if (apiPod && apiPod.metadata?.uid === pod.metadata?.uid) continue;
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

  private async pollProvider(): Promise<void> {
    for (const pod of await this.timed('listPods', () => this.provider.listPods(this.call))) {
      const apiPod = this.informer.get(podKey(pod));
      if (!apiPod || !pod.status) continue;
      const desired = completeStatus(apiPod, pod.status, this.options.hostIP, new Date());
      if (statusPatch(apiPod.status, desired)) this.queue.add(podKey(pod));
    }
  }

  private async timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await call();
      this.metrics.providerCall?.(operation, (performance.now() - started) / 1000, true);
      return result;
    } catch (err) {
      this.metrics.providerCall?.(operation, (performance.now() - started) / 1000, false);
      throw err;
    }
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    try {
      await this.sync(key);
      this.queue.forget(key);
      this.metrics.syncDuration?.((performance.now() - started) / 1000, 'ok');
    } catch (err) {
      const delay = this.queue.addRateLimited(key);
      this.metrics.syncDuration?.((performance.now() - started) / 1000, 'error');
      this.log.warn({ pod: key, err: errorMessage(err), retryInMs: delay }, 'pod sync failed');
    }
  }

  private async sync(key: string): Promise<void> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const apiPod = this.informer.get(key);
    let providerPod: Pod | undefined;
    try {
      providerPod = await this.timed('getPod', () => this.provider.getPod(namespace, name, this.call));
    } catch (err) {
      if (apiPod) await this.reportUnavailable(apiPod, err);
      throw err;
    }

    if (!apiPod) {
      this.references.untrack(key);
      if (providerPod) await this.deleteInProvider(providerPod);
      return;
    }
    const uid = apiPod.metadata?.uid ?? '';
    if (providerPod && providerPod.metadata?.uid !== uid) {
      // A pod re-created under the same name: the old incarnation goes first.
      this.log.info({ pod: key, oldUid: providerPod.metadata?.uid, uid }, 'replacing an older incarnation of the pod in the provider');
      await this.deleteInProvider(providerPod);
      providerPod = undefined;
    }

    if (apiPod.metadata?.deletionTimestamp) {
      if (providerPod) {
        this.events.pod(apiPod, 'Normal', 'Killing', `Stopping pod in provider ${this.provider.name}`);
        await this.deleteInProvider(apiPod);
      }
      this.references.untrack(key);
      await this.removeFromApi(apiPod);
      return;
    }

    if (isTerminalPhase(apiPod.status?.phase) || this.released.has(uid)) {
      if (providerPod) await this.release(apiPod);
      this.references.untrack(key);
      return;
    }

    if (!providerPod) {
      const created = await this.create(apiPod);
      if (!created) return;
      // A pushing provider reports the new pod's status itself; writing the transient
      // status here would cost a second patch per pod (and the resync covers a lost push).
      if (this.provider.notifyPods) return;
      providerPod = await this.timed('getPod', () => this.provider.getPod(namespace, name, this.call));
    } else if (updatableFingerprint(providerPod) !== updatableFingerprint(apiPod)) {
      this.trackReferences(apiPod);
      await this.updateInProvider(await this.resolve(apiPod));
      this.log.info({ pod: key }, 'updated pod in provider');
    } else if (!this.delivered.has(uid)) {
      // Adopted from an earlier run: watch its references, and hand over what a restart lost.
      this.trackReferences(apiPod);
      await this.refreshVolumes(apiPod);
    } else if ((this.refreshAt.get(uid) ?? Infinity) <= Date.now() || this.referencesChanged.has(key)) {
      await this.refreshVolumes(apiPod);
    }

    const status = providerPod?.status ?? (await this.timed('getPodStatus', () => this.provider.getPodStatus(namespace, name, this.call)));
    if (!status) return;
    await this.writeStatus(apiPod, status);
    if (status.phase === 'Running' && !this.started.has(uid)) {
      this.started.add(uid);
      this.events.pod(apiPod, 'Normal', 'Started', `Started pod in provider ${this.provider.name}`);
    }
    if (isTerminalPhase(status.phase)) await this.release(apiPod);
  }

  /**
   * A running pod's volumes follow its ConfigMaps, Secrets and service-account tokens, as the
   * kubelet's do (env does not change). A reference that went missing keeps the old contents,
   * with a FailedMount Warning, instead of failing the pod.
   */
  private async refreshVolumes(pod: Pod): Promise<void> {
    let resolved: ResolveResult;
    try {
      resolved = await this.resolve(pod);
    } catch (err) {
      if (!(err instanceof PodConfigError)) throw err;
      this.events.pod(pod, 'Warning', 'FailedMount', `volumes not updated: ${err.message}`);
      return;
    }
    const uid = pod.metadata?.uid ?? '';
    const digest = deliveryDigest(resolved);
    if (digest === (this.delivered.get(uid) ?? EMPTY_DIGEST)) {
      // Nothing new; an adopted pod with nothing to hand over counts as handed over.
      this.delivered.set(uid, digest);
      return;
    }
    await this.updateInProvider(resolved);
    this.log.info({ pod: podKey(pod) }, 'updated volume contents in provider');
  }

  /** updatePod, remembering what the provider now has. */
  private async updateInProvider(resolved: ResolveResult): Promise<void> {
    await this.timed('updatePod', () => this.provider.updatePod(resolved, this.call));
    this.delivered.set(resolved.pod.metadata?.uid ?? '', deliveryDigest(resolved));
  }

  /**
   * The provider could not be asked about the pod. A pod that never ran says why it waits
   * (a running pod's last status stays: it may well still be running).
   */
  private async reportUnavailable(pod: Pod, err: unknown): Promise<void> {
    if (pod.metadata?.deletionTimestamp || isTerminalPhase(pod.status?.phase)) return;
    const started = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].some((c) => c.state?.running || c.state?.terminated || c.lastState?.terminated);
    if (started) return;
    const message = `provider ${this.provider.name} is unavailable: ${errorMessage(err)}`;
    await this.writeStatus(pod, waitingStatus(pod, 'ProviderUnavailable', message)).catch(() => {});
    this.events.pod(pod, 'Warning', 'Failed', message);
  }

  /**
   * Resolves env and volumes for the provider, records the kubelet's warnings, and schedules the
   * token refresh. Reference changes from here on call for another resolve.
   */
  private async resolve(pod: Pod): Promise<ResolveResult> {
    this.referencesChanged.delete(podKey(pod));
    const resolved = await resolvePod(pod, this.references, this.resolveContext(pod));
    for (const warning of resolved.warnings) this.events.pod(pod, 'Warning', warning.reason, warning.message);
    const uid = pod.metadata?.uid ?? '';
    if (resolved.refreshAt) {
      this.refreshAt.set(uid, resolved.refreshAt.getTime());
      this.queue.addAfter(podKey(pod), resolved.refreshAt.getTime() - Date.now());
    } else {
      this.refreshAt.delete(uid);
    }
    return resolved;
  }

  private resolveContext(pod: Pod) {
    return {
      nodeName: this.options.nodeName,
      hostIP: this.options.hostIP,
      podIP: pod.status?.podIP,
      podIPs: pod.status?.podIPs?.map((p) => p.ip ?? '').filter(Boolean),
      nodeAllocatable: this.options.nodeAllocatable(),
    };
  }

  /** Watches the ConfigMaps, Secrets and Services the pod refers to (a change re-syncs it). */
  private trackReferences(pod: Pod): void {
    const refs = referencedObjects(pod);
    this.references.track(podKey(pod), { namespace: pod.metadata?.namespace ?? '', configMaps: refs.configMaps, secrets: refs.secrets, services: pod.spec?.enableServiceLinks !== false });
  }

  /** Resolves and creates the pod; false when it cannot start (yet), with status and Event written. */
  private async create(pod: Pod): Promise<boolean> {
    const key = podKey(pod);
    this.trackReferences(pod);
    let resolved: ResolveResult;
    try {
      resolved = await this.resolve(pod);
    } catch (err) {
      if (err instanceof UnsupportedPodSpecError) {
        // This node can never run it: Failed, as the kubelet does for pods it rejects.
        await this.writeStatus(pod, rejectedStatus(err.reason, err.message));
        this.events.pod(pod, 'Warning', err.eventReason, err.message);
        this.released.add(pod.metadata?.uid ?? '');
        return false;
      }
      if (err instanceof PodConfigError) {
        // Stays Pending; the reference watch re-enqueues the pod when the object appears,
        // and the rate-limited retry covers a missed watch event.
        await this.writeStatus(pod, waitingStatus(pod, err.reason, err.message));
        this.events.pod(pod, 'Warning', err.eventReason, err.eventReason === 'Failed' ? `Error: ${err.message}` : err.message);
        throw err;
      }
      throw err;
    }
    try {
      await this.timed('createPod', () => this.provider.createPod(resolved, this.call));
      this.delivered.set(pod.metadata?.uid ?? '', deliveryDigest(resolved));
    } catch (err) {
      const message = `provider ${this.provider.name} failed to create the pod: ${errorMessage(err)}`;
      this.events.pod(pod, 'Warning', 'Failed', message);
      await this.writeStatus(pod, waitingStatus(pod, 'ProviderCreateFailed', message));
      const retries = this.queue.failureCount(key);
      if (retries > 0) this.events.pod(pod, 'Warning', 'BackOff', `Back-off retrying pod creation in provider ${this.provider.name}`);
      throw new VkError('VK_PROVIDER', message, { cause: err });
    }
    this.events.pod(pod, 'Normal', 'Created', `Created pod in provider ${this.provider.name}`);
    this.log.info({ pod: key, uid: pod.metadata?.uid }, 'created pod in provider');
    return true;
  }

  private async writeStatus(apiPod: Pod, providerStatus: PodStatus): Promise<void> {
    const desired = completeStatus(apiPod, providerStatus, this.options.hostIP, new Date());
    const patch = statusPatch(apiPod.status, desired);
    if (!patch) return;
    const uid = apiPod.metadata?.uid ?? '';
    // Under load the watch lags our own writes; a status we wrote moments ago is not written again.
    const written = this.written.get(uid);
    if (written && Date.now() - written.at < WRITTEN_STATUS_TTL_MS && !statusPatch(written.status, desired)) return;
    const path = `/api/v1/namespaces/${apiPod.metadata?.namespace}/pods/${encodeURIComponent(apiPod.metadata?.name ?? '')}/status`;
    try {
      // The UID in the patch is a precondition: never write onto a newer pod of the same name.
      const updated = await this.client.patch<Pod>(path, { metadata: { uid }, status: patch }, MERGE_PATCH);
      const resourceVersion = updated?.metadata?.resourceVersion;
      // An unchanged resourceVersion: the server already held this status, so the cache is not behind.
      if (resourceVersion !== apiPod.metadata?.resourceVersion) this.written.set(uid, { status: desired, at: Date.now(), resourceVersion });
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      throw err;
    }
  }

  private async deleteInProvider(pod: Pod, reason: DeleteReason = 'deleted'): Promise<void> {
    try {
      await this.timed('deletePod', () => this.provider.deletePod(pod, { ...this.call, reason }));
      this.log.info({ pod: podKey(pod), uid: pod.metadata?.uid }, 'deleted pod in provider');
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /** A finished pod keeps its API object (the kubelet does too) but frees the provider's resources. */
  private async release(pod: Pod): Promise<void> {
    this.released.add(pod.metadata?.uid ?? '');
    await this.deleteInProvider(pod, 'finished');
  }

  /** Completes graceful deletion: the provider has stopped the pod, so the API object goes now. */
  private async removeFromApi(pod: Pod): Promise<void> {
    const uid = pod.metadata?.uid ?? '';
    if (this.removed.has(uid)) return;
    const path = `/api/v1/namespaces/${pod.metadata?.namespace}/pods/${encodeURIComponent(pod.metadata?.name ?? '')}`;
    try {
      await this.client.delete(path, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid } }, { discardResponse: true });
    } catch (err) {
      if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
    }
    this.removed.add(uid);
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.stopping.abort(new AbortedError('the pod controller is stopping'));
    this.events.stop();
    this.queue.shutDown();
    await this.workers;
    await Promise.all([this.informer.stop(), this.references.stop()]);
  }
}

/** The pod fields whose change is passed to the provider as an update. */
function updatableFingerprint(pod: Pod): string {
  const spec = pod.spec;
  return JSON.stringify([
    spec?.containers.map((c) => c.image),
    spec?.initContainers?.map((c) => c.image),
    spec?.activeDeadlineSeconds,
    spec?.tolerations,
    pod.metadata?.labels,
    pod.metadata?.annotations,
  ]);
}

/** A digest of what the provider gets besides the spec: volume names, kinds, file paths, modes and contents, pull secrets. */
function deliveryDigest(resolved: Pick<ResolvedPod, 'volumes' | 'pullSecrets'>): string {
  const hash = createHash('sha256');
  for (const secret of resolved.pullSecrets ?? []) hash.update(`${secret.metadata?.name}\0${JSON.stringify(secret.data ?? {})}\0`);
  for (const [name, volume] of [...resolved.volumes].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`${name}\0${volume.type}\0`);
    if (volume.type !== 'files') continue;
    for (const file of volume.files) hash.update(`${file.path}\0${file.mode}\0${file.content.length}\0`).update(file.content);
  }
  return hash.digest('base64');
}

const EMPTY_DIGEST = deliveryDigest({ volumes: new Map() });
