// One pod on the sandbox runtime: its sandbox (pause process + network), its containers' runs
// (init containers in order, then the app containers), restarts with CrashLoopBackOff, probes,
// hooks, activeDeadlineSeconds, and the status the kubelet would report for it.
//
// Everything that changes goes through reconcile(), which runs one at a time per pod: it looks at
// the recorded state and the clock, takes the next steps (create the sandbox, pull, start or
// restart a container, fail the pod) and arms a timer for the next due time. Container exits,
// probe results and timers only record facts and call requestReconcile().
//
// The parts: pod-sandbox.ts (the sandbox), container-runs.ts (starting, watching and stopping
// the containers' runs) with container-start.ts (a run's directory and launch), shim-launcher.ts
// (its monitor), container-exit.ts (how a run ends, back-off arithmetic), container-stop.ts
// (stopping a run) and container-hooks.ts (probes, hooks, exec); pod-status.ts (the status).
import type { ChildProcess } from 'node:child_process';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AbortedError, errorMessage } from '../../errors.ts';
import type { Container, Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { ResolvedPod } from '../provider.ts';
import { removeCgroup, type Cgroups } from './cgroups.ts';
import type { SandboxConfig } from './config.ts';
import { crashLoopBackOff, imagePullBackOff, shouldRestart } from './container-exit.ts';
import { spawnExec } from './container-hooks.ts';
import { ContainerRuns } from './container-runs.ts';
import { logFile, socketPath } from './container-start.ts';
import type { Images } from './images.ts';
import type { PodNetworks } from './network.ts';
import type { PodDnsSettings } from './pod-sandbox.ts';
import type { PodEventReporter } from '../support/pod-events.ts';
import { pauseAlive } from './pause.ts';
import { signal } from './procfs.ts';
import { createSandbox, teardownSandbox, type SandboxHost } from './pod-sandbox.ts';
import { containerSpec, podIP, podPhase, renderPodStatus, type PodPhase } from './pod-status.ts';
import { stopInKubeletOrder } from './stop-order.ts';
import { killStrayShims } from './shim-launcher.ts';
import { newPodState, saveState, type ContainerRecord, type Instance, type PodRecordState } from './state.ts';
import { writeVolumes } from './volumes.ts';

export { prepareMonitor } from './shim-launcher.ts';

export interface RuntimeDeps {
  config: SandboxConfig;
  images: Images;
  networks: PodNetworks;
  log: Logger;
  hostIP: string;
  /** What the pods' resolv.conf and /etc/hosts are made from. */
  dns: PodDnsSettings;
  /** Kubernetes Events for the pods (notifyPodEvents). */
  events: PodEventReporter;
  /** The machine's cgroups, when usable (limits, usage, OOM kills). */
  cgroups?: Cgroups;
  /** Called after every change of the pod's status. */
  changed: (pod: SandboxPod) => void;
}

export class SandboxPod {
  readonly dir: string;
  private readonly podState: PodRecordState;
  private resolved: ResolvedPod;
  private readonly deps: RuntimeDeps;
  private readonly log: Logger;
  private readonly runs: ContainerRuns;
  /** The reconcile in progress (or done): the next one runs after it. */
  private reconciling: Promise<void> = Promise.resolve();
  private reconcileQueued = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly abort = new AbortController();
  private deletion: Promise<void> | undefined;
  private gone = false;
  private readonly sandboxHost: SandboxHost;

  constructor(deps: RuntimeDeps, dir: string, state: PodRecordState, resolved: ResolvedPod) {
    this.deps = deps;
    this.dir = dir;
    this.podState = state;
    this.resolved = resolved;
    this.log = deps.log.child({ pod: `${state.namespace}/${state.name}`, uid: state.uid });
    this.runs = new ContainerRuns({
      config: deps.config,
      images: deps.images,
      cgroups: deps.cgroups,
      dir,
      state,
      log: this.log,
      signal: this.abort.signal,
      resolved: () => this.resolved,
      save: () => this.save(),
      isDeleting: () => this.isDeleting,
      changed: () => this.changed(),
      schedule: (at) => this.schedule(at),
      requestReconcile: () => this.requestReconcile(),
      podIP: () => this.podIP(),
      graceSeconds: () => this.graceSeconds(),
    });
    this.sandboxHost = { tools: deps.config.tools, networks: deps.networks, hostIP: deps.hostIP, dns: deps.dns, events: deps.events, log: this.log };
  }

  static fresh(deps: RuntimeDeps, dir: string, resolved: ResolvedPod): SandboxPod {
    const state = newPodState(resolved.pod, Date.now());
    if (resolved.podIPTemplates) state.podIPTemplates = resolved.podIPTemplates;
    return new SandboxPod(deps, dir, state, resolved);
  }

  /** The pod's record, read-only: it changes only through this class. */
  get state(): Readonly<PodRecordState> {
    return this.podState;
  }

  get key(): string {
    return `${this.podState.namespace}/${this.podState.name}`;
  }

  get uid(): string {
    return this.podState.uid;
  }

  get isDeleting(): boolean {
    return this.deletion !== undefined;
  }

  /** Deleted, or letting go: its files are moving to the retired logs or going away. */
  get isGone(): boolean {
    return this.gone;
  }

  spec(name: string): Container | undefined {
    return containerSpec(this.podState, name);
  }

  record(name: string): ContainerRecord | undefined {
    return this.podState.containers.find((c) => c.name === name);
  }

  /** Writes the pod's record now (a new pod's, before createPod returns). */
  persist(): void {
    saveState(this.dir, this.podState);
  }

  private save(): void {
    if (this.gone) return;
    try {
      saveState(this.dir, this.podState);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not save pod state');
    }
  }

  private changed(): void {
    this.save();
    this.deps.changed(this);
  }

  /** Schedules a reconcile (coalesced; they never overlap). */
  requestReconcile(): void {
    if (this.reconcileQueued || this.gone) return;
    this.reconcileQueued = true;
    this.reconciling = this.reconciling.then(async () => {
      this.reconcileQueued = false;
      if (this.gone || this.isDeleting || this.podState.deleting) return;
      try {
        await this.reconcile();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'pod reconcile failed');
        this.schedule(Date.now() + 2000);
      }
    });
  }

  private schedule(at: number): void {
    if (this.gone || this.isDeleting) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.requestReconcile(), Math.min(Math.max(at - Date.now(), 0), 2_147_483_647));
  }

  private scheduleIf(at: number): void {
    if (at !== Infinity) this.schedule(at);
  }

  // --- Adoption after a restart of the provider.

  /** Re-attaches to the processes of a pod loaded from disk; returns false when its sandbox is gone. */
  adopt(): boolean {
    const sandbox = this.podState.sandbox;
    const pauseRuns = sandbox !== undefined && pauseAlive(sandbox.pause);
    // Killed while making it: its /etc files, hostname or network may be missing (every container
    // start in it died at once). Its pause process goes, and its namespaces and network pair with it.
    const halfMade = pauseRuns && sandbox.creating === true;
    if (halfMade) signal(sandbox.pause.pid, 'SIGKILL');
    const alive = pauseRuns && !halfMade;
    if (sandbox?.network) this.deps.networks.reserve(sandbox.network.index);
    for (const c of this.podState.containers) if (c.running) this.runs.adopt(c, c.running, alive);
    if (sandbox && !alive) {
      this.log.info(
        halfMade
          ? 'pod sandbox was being made when the provider stopped; it will be made again'
          : this.podState.deleting
            ? 'pod sandbox is gone; its deletion goes on'
            : 'pod sandbox is gone; it will be created again',
      );
      this.podState.sandbox = undefined;
      if (sandbox.network) void this.deps.networks.detach(sandbox.network).catch(() => undefined);
    }
    const known = new Set(this.podState.containers.map((c) => c.running?.shimPid).filter((p) => p !== undefined));
    killStrayShims(this.dir, known, this.log);
    this.save();
    return alive;
  }

  // --- The reconcile step.

  private async reconcile(): Promise<void> {
    const now = Date.now();
    const state = this.podState;
    if (state.terminal) return;
    const spec = state.pod.spec;
    const policy = spec?.restartPolicy ?? 'Always';
    let next = Infinity;

    // activeDeadlineSeconds, counted from the pod's start on this node.
    const deadline = spec?.activeDeadlineSeconds;
    if (typeof deadline === 'number') {
      const at = state.createdAt + deadline * 1000;
      if (now >= at) {
        await this.failPod('DeadlineExceeded', 'Pod was active on the node longer than the specified deadline');
        return;
      }
      next = Math.min(next, at);
    }

    if (!state.sandbox) {
      // Pull the images of the containers that start first while the sandbox is being made.
      this.prefetchImages(now);
      await this.makeSandbox();
      if (!state.sandbox) this.runs.clearPrefetched();
      if (!state.sandbox || this.isDeleting) return;
    }

    const inits = state.containers.filter((c) => c.init);
    const apps = state.containers.filter((c) => !c.init);

    if (!state.initDone) {
      for (const c of inits) {
        if (c.sidecar) {
          if (c.running && c.started) continue;
          if (c.running) return this.scheduleIf(next);
          next = Math.min(next, await this.startOrBackoff(c, now));
          return this.scheduleIf(next);
        }
        if (c.terminated?.exitCode === 0 && !c.running) continue;
        if (c.running) return this.scheduleIf(next);
        if (c.terminated && policy === 'Never') {
          await this.failPod(undefined, undefined);
          return;
        }
        next = Math.min(next, await this.startOrBackoff(c, now));
        return this.scheduleIf(next);
      }
      state.initDone = true;
      for (const c of apps) if (c.waiting?.reason === 'PodInitializing') c.waiting = { reason: 'ContainerCreating' };
      this.changed();
    }

    // Sidecars keep running (restartPolicy Always) while the pod runs.
    for (const c of inits.filter((x) => x.sidecar)) {
      if (!c.running) next = Math.min(next, await this.startOrBackoff(c, now));
      if (this.isDeleting) return;
    }
    for (const c of apps) {
      if (this.isDeleting) return;
      if (c.running) continue;
      if (c.terminated && !shouldRestart(c, policy)) continue;
      next = Math.min(next, await this.startOrBackoff(c, now));
    }

    // Terminal once every app container has stopped for good.
    if (apps.every((c) => !c.running && c.terminated && !shouldRestart(c, policy))) {
      const failed = apps.some((c) => (c.terminated?.exitCode ?? 0) !== 0);
      await this.stopSidecars();
      state.terminal = { phase: failed ? 'Failed' : 'Succeeded', at: Date.now() };
      this.changed();
      return;
    }
    this.scheduleIf(next);
  }

  /**
   * Starts pulling the images of a new pod's first containers (the first init container, or the
   * app containers and sidecars) while its sandbox is being made; startContainer takes them.
   */
  private prefetchImages(now: number): void {
    const containers = this.podState.containers;
    this.runs.prefetch(this.podState.initDone ? containers.filter((c) => !c.init || c.sidecar) : containers.filter((c) => c.init).slice(0, 1), now);
  }

  /** Starts the container now, or records the back-off it waits in; returns when to look again. */
  private async startOrBackoff(c: ContainerRecord, now: number): Promise<number> {
    if (c.pullRetryAt !== undefined && now < c.pullRetryAt) {
      if (c.waiting?.reason === 'ErrImagePull') {
        c.waiting = imagePullBackOff(this.spec(c.name)?.image ?? '', c.waiting.message);
        this.changed();
      }
      return c.pullRetryAt;
    }
    if (c.terminated && c.backoffUntil !== undefined && now < c.backoffUntil) {
      const waiting = crashLoopBackOff(c, this.podState);
      if (c.waiting?.reason !== waiting.reason || c.waiting.message !== waiting.message) {
        c.waiting = waiting;
        this.changed();
      }
      return c.backoffUntil;
    }
    await this.runs.start(c);
    return Infinity;
  }

  private async makeSandbox(): Promise<void> {
    try {
      await createSandbox(this.sandboxHost, this.dir, this.podState, this.resolved, () => this.save());
      this.changed();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'creating the pod sandbox failed');
      await teardownSandbox(this.sandboxHost, this.podState);
      for (const c of this.podState.containers)
        if (!c.running) c.waiting = { reason: 'ContainerCreating', message: `Failed to create pod sandbox: ${errorMessage(err)}` };
      this.changed();
      this.schedule(Date.now() + 5000);
    }
  }

  // --- Container runs.

  logFile(name: string, attempt: number): string {
    return logFile(this.dir, name, attempt);
  }

  attachSocket(c: ContainerRecord): string | undefined {
    return c.running ? socketPath(this.deps.config.dataDir, this.podState.uid, c.name, c.running.attempt) : undefined;
  }

  /** Stops a running container: preStop hook, stop signal, then SIGKILL after the grace period. */
  stopContainer(c: ContainerRecord, graceSeconds: number, why: string): Promise<void> {
    return this.runs.stop(c, graceSeconds, why);
  }

  graceSeconds(pod?: Pod): number {
    const p = pod ?? this.podState.pod;
    return p.metadata?.deletionGracePeriodSeconds ?? p.spec?.terminationGracePeriodSeconds ?? 30;
  }

  /** Spawns `command` inside the running instance (the same mounts, user, capabilities and env). */
  spawnExec(inst: Instance, command: string[], tty: boolean): ChildProcess | undefined {
    return spawnExec(this.deps.config.tools, inst, command, tty);
  }

  private async stopSidecars(): Promise<void> {
    await Promise.all(this.podState.containers.filter((c) => c.sidecar && c.running).map((c) => this.stopContainer(c, this.graceSeconds(), 'pod finished')));
  }

  private async failPod(reason: string | undefined, message: string | undefined): Promise<void> {
    await Promise.all(this.podState.containers.filter((c) => c.running).map((c) => this.stopContainer(c, this.graceSeconds(), reason ?? 'pod failed')));
    this.podState.terminal = { phase: 'Failed', ...(reason && { reason }), ...(message && { message }), at: Date.now() };
    for (const c of this.podState.containers) if (!c.running && !c.terminated && c.waiting) c.waiting = { reason: c.waiting.reason };
    this.changed();
  }

  // --- Updates and deletion.

  async update(resolved: ResolvedPod): Promise<void> {
    const before = this.podState.pod;
    this.resolved = resolved;
    this.podState.pod = resolved.pod;
    if (resolved.podIPTemplates) this.podState.podIPTemplates = resolved.podIPTemplates;
    else delete this.podState.podIPTemplates;
    if (this.podState.sandbox) await writeVolumes(this.dir, resolved.volumes);
    // A changed image restarts that container with the new image, as the kubelet does.
    for (const c of this.podState.containers) {
      const old = (c.init ? before.spec?.initContainers : before.spec?.containers)?.find((x) => x.name === c.name);
      const now = this.spec(c.name);
      if (old && now && old.image !== now.image) {
        c.imageID = undefined;
        c.backoffMs = 0;
        if (c.running) await this.stopContainer(c, this.graceSeconds(), 'image changed');
      }
    }
    this.changed();
    this.requestReconcile();
  }

  /**
   * Stops everything (honouring the grace period of `apiPod`, else the pod's own), removes the
   * sandbox and the pod's files; with `keepLogsIn`, its logs and last status move there first.
   * Runs once: later calls wait for the same deletion.
   */
  delete(apiPod: Pod | undefined, keepLogsIn?: string): Promise<void> {
    this.deletion ??= this.runDeletion(apiPod, keepLogsIn);
    return this.deletion;
  }

  /** The deletion a provider killed meanwhile had begun (see PodRecordState.deleting), if any. */
  get interruptedDeletion(): PodRecordState['deleting'] {
    return this.deletion ? undefined : this.podState.deleting;
  }

  private async runDeletion(apiPod: Pod | undefined, keepLogsIn: string | undefined): Promise<void> {
    if (this.gone) return;
    clearTimeout(this.timer);
    this.abort.abort(new AbortedError('pod deleted'));
    const state = this.podState;
    // What is left of a grace period that began before a restart.
    const begun = state.deleting;
    const grace = begun ? Math.max(0, Math.ceil((begun.at + begun.graceSeconds * 1000 - Date.now()) / 1000)) : this.graceSeconds(apiPod);
    state.deleting = begun ?? { at: Date.now(), graceSeconds: grace, keepLogs: keepLogsIn !== undefined };
    this.save();
    await this.reconciling;
    await stopInKubeletOrder(state.containers, grace, (c, seconds) => this.stopContainer(c, seconds, 'pod deleted'));
    await teardownSandbox(this.sandboxHost, state);
    if (state.cgroup && !(await removeCgroup(state.cgroup))) this.log.warn({ cgroup: state.cgroup.memory }, "could not remove the pod's cgroup");
    this.runs.release(false);
    for (const c of state.containers) {
      if (!c.terminated && !c.running) c.waiting = c.waiting && { reason: c.waiting.reason };
    }
    if (!state.terminal) {
      const failed = state.containers.some((c) => !c.init && (c.terminated?.exitCode ?? 0) !== 0);
      state.terminal = { phase: failed ? 'Failed' : 'Succeeded', at: Date.now() };
    }
    this.deps.changed(this);
    this.gone = true;
    if (keepLogsIn) await this.keepLogs(keepLogsIn);
    await rm(this.dir, { recursive: true, force: true });
  }

  /** A finished pod is released but its API object stays: keep its logs readable for a while. */
  private async keepLogs(dir: string): Promise<void> {
    try {
      await mkdir(dir, { recursive: true });
      await rename(path.join(this.dir, 'logs'), path.join(dir, 'logs'));
      const containers = Object.fromEntries(this.podState.containers.map((c) => [c.name, { logAttempt: c.logAttempt, lastAttempt: c.lastAttempt }]));
      const pod = { ...this.podState.pod, status: this.status() };
      await writeFile(
        path.join(dir, 'meta.json'),
        JSON.stringify({ namespace: this.podState.namespace, name: this.podState.name, uid: this.uid, at: Date.now(), containers, pod }),
      );
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'no logs kept for the finished pod');
    }
  }

  /** Lets go of the pod's processes without stopping them (the provider is closing). */
  detach(): void {
    this.gone = true;
    clearTimeout(this.timer);
    this.abort.abort(new AbortedError('provider closed'));
    this.runs.release(true);
  }

  /** Looks for runs that ended while nobody watched (adopted monitors are not our children). */
  poll(): void {
    this.runs.poll();
  }

  // --- Status.

  podIP(): string | undefined {
    return podIP(this.podState, this.deps.hostIP);
  }

  phase(): PodPhase {
    return podPhase(this.podState);
  }

  status(): PodStatus {
    return renderPodStatus(this.podState, this.deps.hostIP);
  }

  /** The pod as lookups and notifications report it. */
  render(): Pod {
    return { ...this.podState.pod, status: this.status() };
  }
}

export async function readHostResolvConf(): Promise<string> {
  try {
    return await readFile('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}
