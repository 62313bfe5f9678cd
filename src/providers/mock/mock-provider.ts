// The in-memory provider behind the end-to-end and scale tests. Pods run nowhere: each one
// is a small record whose state advances on a clock (Pending → Running → Succeeded/Failed,
// with restarts, see lifecycle.ts), and its status is rendered on demand to look like a real
// kubelet's (status.ts). Scale: one Map lookup per call, state kept as numbers (statuses are
// built only when asked for), and at most one timer per pod, only while a transition is due.
//
// Per-pod overrides and failure injection through annotations (mock.vk.io/...): see
// annotations.ts, which lists them all, including mock.vk.io/create-error, which makes
// createPod throw the error contract's classes (PodRejectedError, ProviderUnavailableError,
// TryLaterError) for tests of the core.
//
// The provider contract (src/providers/provider.ts): createPod honours `options.signal` while
// it waits (createDelayMs or an injected failure's delay): an abort rejects at once with an
// AbortedError and takes back a pod it had just created. deletePod stops a pod at once (the
// mock has no grace period to wait out) and reports its final state when `reason` is
// `deleted`; `finished` releases the finished pod silently (counted in stats().released).
//
// The kubelet API capabilities are simulated too: logs (logs.ts), stats (stats.ts), exec (a tiny
// scripted shell, shell.ts), attach (attach.ts) and port-forward (port-forward.ts).
//
// With config.stateFile the pods live in a file as well (see state.ts): every change is
// written there within milliseconds, and a new provider on the same file (after a restart
// or a kill -9) picks its pods up where they were, times included.
import { appendFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import {
  AbortedError,
  ContainerStateError,
  InvalidRequestError,
  NotFoundError,
  ProviderUnavailableError,
  throwIfAborted,
  TryLaterError,
} from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import {
  podKey,
  type CallOptions,
  type DeleteOptions,
  type ExecStreams,
  type LogOptions,
  type NodeConfig,
  type PodListener,
  type PodStats,
  type Provider,
  type ResolvedPod,
} from '../provider.ts';
import { PodNotifier } from '../support/notifier.ts';
import { ANNOTATION_LOG_LINES, createFailure, deleteFailure, readOverrides, type Overrides } from './annotations.ts';
import { attachSession } from './attach.ts';
import { Delays } from './delays.ts';
import type { MockProviderConfig } from './config.ts';
import { IpPool } from './ip-pool.ts';
import { advance, applySpecUpdate, cloneResolved, MAX_TIMER_MS, nextAt, phaseOf, PodRecord, runningContainer, terminate } from './lifecycle.ts';
import { annotationLines, logLines, logTarget, type LogClock, type LogTarget } from './logs.ts';
import { servePort } from './port-forward.ts';
import { MockShell } from './shell.ts';
import { loadRecords, snapshotText, StateWriter } from './state.ts';
import { FaultFile } from './fault-file.ts';
import { podStats, type MockProviderStats } from './stats.ts';
import { renderPod, renderStatus, type RenderContext } from './status.ts';

export { readMockState, type MockStateSummary } from './state.ts';
export { syntheticStats, type MockProviderStats } from './stats.ts';
export {
  ANNOTATION_COMPLETE_AFTER,
  ANNOTATION_CREATE_DELAY,
  ANNOTATION_CREATE_ERROR,
  ANNOTATION_EXIT_CODE,
  ANNOTATION_FAIL_CREATE,
  ANNOTATION_FAIL_DELETE,
  ANNOTATION_LOG_LINES,
  ANNOTATION_RUNNING_DELAY,
  InjectedFailureError,
} from './annotations.ts';

export interface MockProviderOptions {
  nodeName: string;
  log: Logger;
  now?: () => Date;
  /** The node's IP as pods see it (status.hostIP); 127.0.0.1 when unset. */
  hostIP?: string;
}

export class MockProvider implements Provider {
  readonly name = 'mock';
  /** Present only when config.notify is set, so a poll-only mock lacks the capability. */
  readonly notifyPods?: (listener: PodListener) => void;

  private readonly config: MockProviderConfig;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly ctx: RenderContext;
  private readonly pods = new Map<string, PodRecord>();
  private readonly ips: IpPool;
  private readonly notifier: PodNotifier<PodRecord>;
  private readonly delays = new Delays();
  private healthy = true;
  private unhealthyMessage = '';
  private closed = false;
  private readonly counters = {
    created: 0,
    replaced: 0,
    updated: 0,
    deleted: 0,
    released: 0,
    createFailures: 0,
    createsAborted: 0,
    deleteFailures: 0,
    restored: 0,
  };
  private readonly store: StateWriter | undefined;
  private readonly faults: FaultFile | undefined;
  private readonly createLog: string | undefined;
  /** What a followed log needs of the provider. */
  private readonly clock: LogClock = { nowMs: () => this.nowMs(), refresh: (rec) => this.refresh(rec) };

  constructor(config: MockProviderConfig, options: MockProviderOptions) {
    this.config = config;
    this.log = options.log.child({ provider: 'mock', node: options.nodeName });
    if (config.faultsFile !== undefined) this.faults = new FaultFile(resolvePath(config.faultsFile), this.delays, this.log);
    const clock = options.now ?? (() => new Date());
    this.now = this.faults ? () => new Date(clock().getTime() + this.faults!.clockOffsetMs) : clock;
    this.createLog = config.createLog === undefined ? undefined : resolvePath(config.createLog);
    this.ctx = { hostIP: options.hostIP ?? '127.0.0.1', restartDelayMs: config.lifecycle.restartDelayMs };
    this.ips = new IpPool(config.podCIDR);
    // A replaced incarnation or a taken-back create is not reported; nothing is after close.
    this.notifier = new PodNotifier(
      (rec) => (this.closed || rec.gone === 'replaced' || rec.gone === 'aborted' ? undefined : renderPod(rec, this.ctx)),
      this.log,
    );
    if (config.notify) this.notifyPods = (listener) => this.notifier.addListener(listener);
    if (config.stateFile !== undefined) {
      const file = resolvePath(config.stateFile);
      this.store = new StateWriter(file, () => snapshotText(new Date(this.nowMs()).toISOString(), this.pods.values()), this.log);
      if (this.restore(file)) this.store.request(); // transitions fell due while no process ran
    }
  }

  async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    const signal = options.signal;
    const pod = resolved.pod;
    const key = podKey(pod);
    throwIfAborted(signal, `mock: createPod ${key}`);
    if (this.closed) throw new ProviderUnavailableError('mock: provider is closed');
    const uid = pod.metadata?.uid ?? '';
    const annotations = pod.metadata?.annotations ?? {};
    const overrides = readOverrides(annotations, this.config.lifecycle);
    if (this.faults) await this.faults.before(`mock: createPod ${key}`, signal);
    const failure = createFailure(annotations);
    if (failure) {
      this.counters.createFailures++;
      await this.delays.wait(overrides.createDelayMs, signal, `mock: createPod ${key}`);
      throw failure;
    }
    const existing = this.pods.get(key);
    if (existing?.uid === uid) return;
    if (existing) {
      this.log.debug({ pod: key, oldUid: existing.uid, uid }, 'replacing pod incarnation');
      this.drop(existing, 'replaced');
      this.counters.replaced++;
    }
    let ip = 0;
    if (!pod.spec?.hostNetwork) {
      const allocated = this.ips.allocate();
      if (allocated === undefined) throw new TryLaterError(`mock: podCIDR ${this.config.podCIDR} has no free addresses`);
      ip = allocated;
    }
    const rec = new PodRecord(key, uid, cloneResolved(resolved), this.nowMs(), ip);
    this.applyOverrides(rec, overrides);
    this.pods.set(key, rec);
    this.counters.created++;
    advance(rec, rec.createdAt, this.ctx.restartDelayMs);
    this.schedule(rec);
    this.changed(rec);
    // Acknowledged only once durable, as a real backend would: a kill -9 right after createPod
    // returned must not lose the pod (the core would create it again).
    if (this.store) await this.store.durable();
    if (this.createLog)
      appendFileSync(
        this.createLog,
        `${JSON.stringify({ uid, namespace: pod.metadata?.namespace, name: pod.metadata?.name, at: new Date().toISOString() })}\n`,
      );
    try {
      await this.delays.wait(overrides.createDelayMs, signal, `mock: createPod ${key}`);
    } catch (err) {
      // Aborted by the caller: no half-created pod stays. (close() keeps it: the backend's pods outlive the process.)
      if (signal?.aborted && !this.closed && !rec.gone) {
        this.drop(rec, 'aborted');
        this.store?.request();
        this.counters.created--;
        this.counters.createsAborted++;
      }
      throw err;
    }
  }

  async updatePod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    const pod = resolved.pod;
    throwIfAborted(options.signal, `mock: updatePod ${podKey(pod)}`);
    if (this.faults) await this.faults.before(`mock: updatePod ${podKey(pod)}`, options.signal);
    const rec = this.find(podKey(pod), pod.metadata?.uid);
    const overrides = readOverrides(pod.metadata?.annotations ?? {}, this.config.lifecycle);
    const now = this.nowMs();
    advance(rec, now, this.ctx.restartDelayMs);
    applySpecUpdate(rec, cloneResolved(resolved), now);
    this.applyOverrides(rec, overrides);
    this.counters.updated++;
    advance(rec, now, this.ctx.restartDelayMs); // activeDeadlineSeconds may have passed
    this.schedule(rec);
    this.changed(rec);
  }

  async deletePod(pod: Pod, options: DeleteOptions): Promise<void> {
    const key = podKey(pod);
    throwIfAborted(options.signal, `mock: deletePod ${key}`);
    if (this.faults) await this.faults.before(`mock: deletePod ${key}`, options.signal);
    const reason = options.reason;
    const rec = this.find(key, pod.metadata?.uid);
    const failure = deleteFailure(pod.metadata?.annotations ?? rec.resolved.pod.metadata?.annotations ?? {});
    if (failure) {
      this.counters.deleteFailures++;
      throw failure;
    }
    const now = this.nowMs();
    advance(rec, now, this.ctx.restartDelayMs);
    this.drop(rec, 'deleted');
    this.store?.request();
    if (reason === 'finished') {
      // Its final state was reported when it finished; releasing it says nothing more.
      this.counters.released++;
      if (rec.stage !== 'terminated') this.log.debug({ pod: key, uid: rec.uid, stage: rec.stage }, 'released a pod the mock had not finished');
      return;
    }
    this.counters.deleted++;
    if (rec.stage !== 'terminated') {
      // Like the kubelet, report the final state (containers stopped, terminal phase) once.
      terminate(rec, now, 0, 'Deleted');
      this.notifier.markDirty(rec);
    }
  }

  async getPod(namespace: string, name: string, _options: CallOptions): Promise<Pod | undefined> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) return undefined;
    this.refresh(rec);
    return renderPod(rec, this.ctx);
  }

  async getPodStatus(namespace: string, name: string, _options: CallOptions): Promise<PodStatus | undefined> {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) return undefined;
    this.refresh(rec);
    return renderStatus(rec, this.ctx);
  }

  async listPods(options: CallOptions): Promise<Pod[]> {
    if (this.faults) await this.faults.before('mock: listPods', options.signal);
    const out: Pod[] = [];
    for (const rec of this.pods.values()) {
      this.refresh(rec);
      out.push(renderPod(rec, this.ctx));
    }
    return out;
  }

  nodeConfig(): NodeConfig {
    const c = this.config;
    return {
      capacity: { ...c.capacity },
      allocatable: { ...c.allocatable },
      labels: { ...c.labels },
      taints: c.taints.map((t) => ({ ...t })),
      operatingSystem: c.operatingSystem,
      architecture: c.architecture,
      nodeInfo: { containerRuntimeVersion: 'mock://1.0.0', operatingSystem: c.operatingSystem, architecture: c.architecture },
    };
  }

  async ping(signal: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.faults) await this.faults.before('mock: ping', signal);
    if (!this.healthy) throw new ProviderUnavailableError(this.unhealthyMessage);
  }

  // --- Kubelet API capabilities.

  async getContainerLogs(namespace: string, name: string, container: string, options: LogOptions): Promise<Readable> {
    const rec = this.known(namespace, name);
    const target = this.logTarget(rec, container, options.previous);
    return Readable.from(logLines(rec, target, options, this.clock), { objectMode: false });
  }

  async getStats(): Promise<PodStats[]> {
    const out: PodStats[] = [];
    for (const rec of this.pods.values()) {
      this.refresh(rec);
      const stats = podStats(rec, this.nowMs());
      if (stats) out.push(stats);
    }
    return out;
  }

  async runInContainer(namespace: string, name: string, container: string, command: string[], streams: ExecStreams): Promise<number> {
    const rec = this.known(namespace, name);
    const spec = runningContainer(rec, name, container);
    const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: name, HOME: '/root' };
    for (const e of spec.env ?? []) env[e.name] = e.value ?? '';
    const shell = new MockShell({
      stdin: streams.stdin,
      stdout: streams.stdout,
      stderr: streams.stderr,
      tty: streams.tty,
      signal: streams.signal,
      env,
      hostname: rec.resolved.pod.metadata?.name ?? name,
    });
    return shell.run(command);
  }

  async attachToContainer(namespace: string, name: string, container: string, streams: ExecStreams): Promise<void> {
    const rec = this.known(namespace, name);
    const spec = runningContainer(rec, name, container);
    const target = this.logTarget(rec, container, false);
    await attachSession(spec, streams, (options) => logLines(rec, target, options, this.clock));
  }

  async portForward(namespace: string, name: string, port: number, stream: Duplex): Promise<void> {
    const rec = this.known(namespace, name);
    if (rec.stage === 'creating' || rec.stage === 'terminated') throw new ContainerStateError(`pod "${name}" is not running (phase ${phaseOf(rec)})`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidRequestError(`invalid port ${port}`);
    await servePort(name, port, stream);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const rec of this.pods.values()) this.clearTimer(rec);
    this.delays.cancelAll(new AbortedError('mock: provider closed'));
    this.faults?.close();
    // The backend's pods stay: only this process lets go of them.
    await this.store?.close();
  }

  // Test helpers.

  /** Makes ping() reject with `message` until set healthy again. */
  setHealthy(healthy: boolean, message = 'mock provider is unhealthy'): void {
    this.healthy = healthy;
    this.unhealthyMessage = message;
  }

  /** The pod exactly as createPod/updatePod stored it (resolved env and volumes); do not mutate. */
  resolvedPod(namespace: string, name: string): ResolvedPod | undefined {
    return this.pods.get(`${namespace}/${name}`)?.resolved;
  }

  podCount(): number {
    return this.pods.size;
  }

  stats(): MockProviderStats {
    const phases = { Pending: 0, Running: 0, Succeeded: 0, Failed: 0 };
    let timers = 0;
    for (const rec of this.pods.values()) {
      phases[phaseOf(rec)]++;
      if (rec.timer) timers++;
    }
    return {
      pods: this.pods.size,
      phases,
      ...this.counters,
      notifications: this.notifier.delivered,
      stateWrites: this.store?.writes ?? 0,
      podIPsInUse: this.ips.inUse,
      timers,
    };
  }

  // Internals.

  private nowMs(): number {
    return this.now().getTime();
  }

  private find(key: string, uid: string | undefined): PodRecord {
    const rec = this.pods.get(key);
    if (!rec) throw new NotFoundError(`mock: pod ${key} not found`);
    if (uid && uid !== rec.uid) throw new NotFoundError(`mock: pod ${key} with uid ${uid} not found (running uid ${rec.uid})`);
    return rec;
  }

  /** A known pod, brought up to the clock. */
  private known(namespace: string, name: string): PodRecord {
    const rec = this.pods.get(`${namespace}/${name}`);
    if (!rec) throw new NotFoundError(`mock: pod ${namespace}/${name} not found`);
    this.refresh(rec);
    return rec;
  }

  private logTarget(rec: PodRecord, container: string, previous: boolean): LogTarget {
    const extra = annotationLines(rec.resolved.pod.metadata?.annotations?.[ANNOTATION_LOG_LINES]);
    return logTarget(rec, container, previous, extra, this.config.logIntervalMs);
  }

  private applyOverrides(rec: PodRecord, o: Overrides): void {
    rec.runningDelayMs = o.runningDelayMs;
    rec.completeAfterMs = o.completeAfterMs;
    rec.injectedExitCode = o.exitCode;
  }

  private drop(rec: PodRecord, why: NonNullable<PodRecord['gone']>): void {
    this.clearTimer(rec);
    rec.gone = why;
    if (rec.ip !== 0) this.ips.release(rec.ip);
    if (this.pods.get(rec.key) === rec) this.pods.delete(rec.key);
  }

  // --- Timers: at most one per record, armed for its next transition (lifecycle.ts).

  /** Brings a pod up to the clock (timers may lag, or `now` may be a fake clock) and re-arms its timer. */
  private refresh(rec: PodRecord): void {
    if (this.closed) return;
    if (advance(rec, this.nowMs(), this.ctx.restartDelayMs)) {
      this.schedule(rec);
      this.changed(rec);
    }
  }

  private schedule(rec: PodRecord): void {
    if (rec.gone || this.closed) return;
    const at = nextAt(rec, this.ctx.restartDelayMs);
    if (at === Infinity) {
      this.clearTimer(rec);
      return;
    }
    if (rec.timer && rec.timerAt === at) return;
    this.clearTimer(rec);
    rec.timerAt = at;
    rec.timer = setTimeout(this.onTimer, Math.min(Math.max(at - this.nowMs(), 0), MAX_TIMER_MS), rec);
  }

  private clearTimer(rec: PodRecord): void {
    if (rec.timer) clearTimeout(rec.timer);
    rec.timer = undefined;
  }

  // One shared callback (the record rides as the timer argument): no closure per pod.
  private readonly onTimer = (rec: PodRecord): void => {
    rec.timer = undefined;
    if (rec.gone || this.closed) return;
    if (advance(rec, this.nowMs(), this.ctx.restartDelayMs)) this.changed(rec);
    this.schedule(rec); // re-arms too when the timer fired before the clock reached `at`
  };

  /** After any change to a live record: to the state file and to the listeners. */
  private changed(rec: PodRecord): void {
    rec.saved = undefined;
    this.store?.request();
    this.notifier.markDirty(rec);
  }

  /**
   * Loads the pods of a state file written by an earlier provider; their lifecycles go on
   * from their recorded times. True when some pod had transitions fall due meanwhile.
   */
  private restore(file: string): boolean {
    const records = loadRecords(file, this.ips, this.config.podCIDR);
    const now = this.nowMs();
    let caughtUp = false;
    for (const rec of records) {
      this.pods.set(rec.key, rec);
      if (advance(rec, now, this.ctx.restartDelayMs)) caughtUp = true;
      this.schedule(rec);
    }
    this.counters.restored = records.length;
    if (records.length > 0) this.log.info({ file, pods: records.length }, 'restored pods from the mock state file');
    return caughtUp;
  }
}
