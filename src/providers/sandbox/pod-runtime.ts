// One pod on the sandbox runtime: its sandbox (pause process + network), its containers' runs
// (init containers in order, then the app containers), restarts with CrashLoopBackOff, probes,
// hooks, activeDeadlineSeconds, and the status the kubelet would report for it.
//
// Everything that changes goes through reconcile(), which runs one at a time per pod: it looks at
// the recorded state and the clock, takes the next steps (create the sandbox, pull, start or
// restart a container, fail the pod) and arms a timer for the next due time. Container exits,
// probe results and timers only record facts and call requestReconcile().
//
// The parts: pod-sandbox.ts (the sandbox), container-start.ts (a run's directory and launch),
// shim-launcher.ts (its monitor), container-exit.ts (how a run ends, back-off arithmetic),
// container-stop.ts (stopping a run), container-hooks.ts (probes, hooks, exec), pod-status.ts.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AbortedError, errorMessage } from '../../errors.ts';
import type { Container, Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { ResolvedPod } from '../provider.ts';
import { oomKills, killCgroup, removeCgroup, type Cgroups } from './cgroups.ts';
import type { SandboxConfig } from './config.ts';
import { runPostStart, spawnExec, startProbes, probeContext, type HookHost } from './container-hooks.ts';
import { crashLoopBackOff, imagePullBackOff, parseTime, recordExit, recordPullFailure, shouldRestart, terminatedState, terminationMessage, terminationReason } from './container-exit.ts';
import { cleanupOldInstances, createFailureReason, instanceDir, logFile, prepareRun, recordStart, shimSpecFor, socketPath, type PreparedRun, type StartHost } from './container-start.ts';
import { killInstance, stopInstance, stopSignalOf } from './container-stop.ts';
import { formatRfc3339Nano, nowNs } from './cri-log.ts';
import { ImagePullError, type Images, type PreparedImage } from './images.ts';
import { sharesPid, type ContainerLaunch } from './launch.ts';
import type { PodNetworks } from './network.ts';
import { pauseAlive } from './pause.ts';
import { createSandbox, teardownSandbox, type SandboxHost } from './pod-sandbox.ts';
import { containerSpec, podIP, podPhase, renderPodStatus, type PodPhase } from './pod-status.ts';
import { runAction, type ProbeAction, type Prober } from './probes.ts';
import { isAlive, readStat } from './procfs.ts';
import { killStrayShims, launchShim, readJson } from './shim-launcher.ts';
import type { ShimExit } from './shim.ts';
import { containerID, newPodState, saveState, type ContainerRecord, type Instance, type PodRecordState } from './state.ts';
import { writeVolumes } from './volumes.ts';

export { prewarmShim } from './shim-launcher.ts';

export interface RuntimeDeps {
  config: SandboxConfig;
  images: Images;
  networks: PodNetworks;
  log: Logger;
  hostIP: string;
  hostResolvConf: string;
  /** The machine's cgroups, when usable (limits, usage, OOM kills). */
  cgroups?: Cgroups;
  /** Called after every change of the pod's status. */
  changed: (pod: SandboxPod) => void;
}

/** What belongs to a container's current run in this process (not saved): its monitor, probes, exit watch. */
interface RunHandles {
  child?: ChildProcess;
  probers: Prober[];
  stopping?: Promise<void>;
  /** Set when we kill the run, so its exit is not mistaken for a crash reason. */
  killReason?: string;
  /** Watches the run's directory for the monitor's exit file. */
  watcher?: FSWatcher;
}

export class SandboxPod {
  readonly dir: string;
  private readonly podState: PodRecordState;
  private resolved: ResolvedPod;
  private readonly deps: RuntimeDeps;
  private readonly log: Logger;
  private readonly runs = new Map<string, RunHandles>();
  /** The reconcile in progress (or done): the next one runs after it. */
  private reconciling: Promise<void> = Promise.resolve();
  private reconcileQueued = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly abort = new AbortController();
  private deletion: Promise<void> | undefined;
  private gone = false;
  /** Images pulled while the sandbox is being created, by container name; startContainer takes them. */
  private readonly prefetched = new Map<string, { image: string; pending: Promise<PreparedImage> }>();
  private readonly hooks: HookHost;
  private readonly starts: StartHost;
  private readonly sandboxHost: SandboxHost;

  constructor(deps: RuntimeDeps, dir: string, state: PodRecordState, resolved: ResolvedPod) {
    this.deps = deps;
    this.dir = dir;
    this.podState = state;
    this.resolved = resolved;
    this.log = deps.log.child({ pod: `${state.namespace}/${state.name}`, uid: state.uid });
    this.hooks = {
      log: this.log,
      tools: deps.config.tools,
      containerSpec: (name) => this.spec(name),
      podIP: () => this.podIP(),
      graceSeconds: () => this.graceSeconds(),
      changed: () => this.changed(),
      requestReconcile: () => this.requestReconcile(),
      stopContainer: (c, grace, why) => this.stopContainer(c, grace, why),
    };
    this.starts = {
      config: deps.config,
      images: deps.images,
      cgroups: deps.cgroups,
      dir,
      state,
      resolved: () => this.resolved,
      save: () => this.save(),
    };
    this.sandboxHost = { tools: deps.config.tools, networks: deps.networks, hostIP: deps.hostIP, hostResolvConf: deps.hostResolvConf, log: this.log };
  }

  static fresh(deps: RuntimeDeps, dir: string, resolved: ResolvedPod): SandboxPod {
    return new SandboxPod(deps, dir, newPodState(resolved.pod, Date.now()), resolved);
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

  spec(name: string): Container | undefined {
    return containerSpec(this.podState, name);
  }

  record(name: string): ContainerRecord | undefined {
    return this.podState.containers.find((c) => c.name === name);
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

  private handles(name: string): RunHandles {
    let handles = this.runs.get(name);
    if (!handles) this.runs.set(name, (handles = { probers: [] }));
    return handles;
  }

  /** Schedules a reconcile (coalesced; they never overlap). */
  requestReconcile(): void {
    if (this.reconcileQueued || this.gone) return;
    this.reconcileQueued = true;
    this.reconciling = this.reconciling.then(async () => {
      this.reconcileQueued = false;
      if (this.gone || this.isDeleting) return;
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
    const alive = sandbox !== undefined && pauseAlive(sandbox.pause);
    if (sandbox?.network) this.deps.networks.reserve(sandbox.network.index);
    for (const c of this.podState.containers) {
      const inst = c.running;
      if (!inst) continue;
      this.handles(c.name);
      if (!alive) {
        this.finishInstance(c, inst, { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()), startError: undefined }, 'the pod sandbox is gone');
        continue;
      }
      if (isAlive(inst.shimPid, inst.shimStart)) {
        startProbes(this.hooks, c, inst, this.handles(c.name).probers, true);
        this.watchExit(c, inst);
      } else {
        this.collectExit(c, inst);
      }
    }
    if (sandbox && !alive) {
      this.log.info('pod sandbox is gone; it will be created again');
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
      if (!state.sandbox) this.prefetched.clear();
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
    const first = this.podState.initDone ? containers.filter((c) => !c.init || c.sidecar) : containers.filter((c) => c.init).slice(0, 1);
    for (const c of first) {
      const container = this.spec(c.name);
      if (!container || c.attempts > 0 || this.prefetched.has(c.name) || (c.pullRetryAt !== undefined && now < c.pullRetryAt)) continue;
      const pending = this.deps.images.ensure(container, this.resolved.pullSecrets ?? [], this.abort.signal);
      pending.catch(() => undefined); // startContainer reports it
      this.prefetched.set(c.name, { image: container.image ?? '', pending });
    }
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
    await this.startContainer(c);
    return Infinity;
  }

  private async makeSandbox(): Promise<void> {
    try {
      await createSandbox(this.sandboxHost, this.dir, this.podState, this.resolved, () => this.save());
      this.changed();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'creating the pod sandbox failed');
      await teardownSandbox(this.sandboxHost, this.podState);
      for (const c of this.podState.containers) if (!c.running) c.waiting = { reason: 'ContainerCreating', message: `Failed to create pod sandbox: ${errorMessage(err)}` };
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

  /** The container's image (prefetched or pulled now); undefined after recording a failed pull. */
  private async pullImage(c: ContainerRecord, container: Container): Promise<PreparedImage | undefined> {
    try {
      if (!c.imageID) {
        c.waiting = { reason: 'ContainerCreating' };
        this.changed();
      }
      const prefetched = this.prefetched.get(c.name);
      this.prefetched.delete(c.name);
      const prepared = await (prefetched?.image === (container.image ?? '') ? prefetched.pending : this.deps.images.ensure(container, this.resolved.pullSecrets ?? [], this.abort.signal));
      c.pullBackoffMs = 0;
      c.pullRetryAt = undefined;
      c.imageID = prepared.imageID;
      return prepared;
    } catch (err) {
      if (this.isDeleting) return undefined;
      const reason = err instanceof ImagePullError ? err.reason : 'ErrImagePull';
      recordPullFailure(c, reason, errorMessage(err), this.deps.config.imagePullBackOff, Date.now());
      this.log.info({ container: c.name, reason, err: errorMessage(err) }, 'image pull failed');
      this.changed();
      // Show ErrImagePull briefly, then ImagePullBackOff until the retry.
      this.schedule(Math.min(Date.now() + 1000, c.pullRetryAt!));
      return undefined;
    }
  }

  private async startContainer(c: ContainerRecord): Promise<void> {
    const container = this.spec(c.name);
    if (!container || !this.podState.sandbox) return;
    const started = performance.now();
    const prepared = await this.pullImage(c, container);
    if (!prepared || this.isDeleting) return;
    const pulled = performance.now();

    const attempt = c.attempts;
    let run: PreparedRun;
    try {
      run = await prepareRun(this.starts, container, prepared, attempt);
    } catch (err) {
      if (this.isDeleting) return;
      const reason = createFailureReason(err);
      c.waiting = { reason, message: errorMessage(err) };
      this.log.info({ container: c.name, reason, err: errorMessage(err) }, 'cannot create container');
      this.changed();
      this.schedule(Date.now() + 10_000);
      return;
    }
    const prepped = performance.now();

    const shim = await launchShim(run.dir, await shimSpecFor(this.starts, container, run, attempt), this.deps.config.dataDir);
    if (!shim) {
      c.waiting = { reason: 'RunContainerError', message: `cannot start the container monitor (${process.execPath})` };
      this.changed();
      this.schedule(Date.now() + 10_000);
      return;
    }
    const { child, shimPid, shimStart } = shim;
    const inst: Instance = {
      attempt,
      containerID: containerID(this.podState.uid, c.name, attempt),
      startedAt: shim.state?.startedAt ?? formatRfc3339Nano(nowNs()),
      shimPid,
      shimStart,
      launchFile: path.join(run.dir, 'launch.json'),
      ...(run.cgroup && { cgroup: run.cgroup }),
    };
    // Running (for status, exec and probes) once the sandboxed process is known.
    const childPid = shim.state?.childPid;
    if (childPid !== undefined) {
      inst.childPid = childPid;
      inst.childStart = readStat(childPid)?.startTicks;
    }
    recordStart(c, inst, container);
    this.runs.set(c.name, { child, probers: [] });
    const ms = { image: Math.round(pulled - started), rootfs: Math.round(prepped - pulled), monitor: Math.round(performance.now() - prepped) };
    this.log.info({ container: c.name, attempt, shimPid, pid: inst.childPid, ms }, 'container started');
    startProbes(this.hooks, c, inst, this.handles(c.name).probers, false);
    if (container.lifecycle?.postStart) void runPostStart(this.hooks, c, inst, container);
    this.changed();
    child.once('exit', () => this.collectExit(c, inst));
    this.watchExit(c, inst);
    if (!isAlive(shimPid, shimStart)) this.collectExit(c, inst);
    // The next start of this image takes a root filesystem made now, in the background.
    this.deps.images.prepareSpare(prepared);
    await cleanupOldInstances(this.dir, c);
  }

  /** Collects the run's exit as soon as its monitor writes the exit file (its process may linger a moment). */
  private watchExit(c: ContainerRecord, inst: Instance): void {
    const handles = this.runs.get(c.name);
    if (!handles || c.running !== inst) return;
    handles.watcher?.close();
    const exitFile = path.join(instanceDir(this.dir, c.name, inst.attempt), 'exit.json');
    try {
      const watcher = watch(path.dirname(exitFile), (_event, name) => {
        if ((name === null || name === 'exit.json') && existsSync(exitFile)) this.collectExit(c, inst);
      });
      watcher.on('error', () => watcher.close());
      handles.watcher = watcher;
    } catch {
      // the monitor's exit and the provider's poll notice it
    }
    if (existsSync(exitFile)) this.collectExit(c, inst);
  }

  /** The monitor exited (or was found gone): record how the run ended. */
  private collectExit(c: ContainerRecord, inst: Instance): void {
    if (c.running !== inst) return;
    const exit = readJson<ShimExit>(path.join(instanceDir(this.dir, c.name, inst.attempt), 'exit.json'));
    if (!exit) {
      // The monitor died without recording anything (killed): make sure nothing of the run survives.
      killInstance(inst, 'SIGKILL', sharesPid(this.podState.pod));
      this.finishInstance(c, inst, { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()) }, 'the container monitor exited unexpectedly');
      return;
    }
    this.finishInstance(c, inst, exit, undefined);
  }

  private finishInstance(c: ContainerRecord, inst: Instance, exit: ShimExit, problem: string | undefined): void {
    if (c.running !== inst) return;
    const handles = this.runs.get(c.name);
    for (const p of handles?.probers ?? []) p.stop();
    handles?.watcher?.close();
    const dir = instanceDir(this.dir, c.name, inst.attempt);
    const message = terminationMessage(exit, problem, this.spec(c.name)?.terminationMessagePolicy, {
      terminationLog: () => readFileSync(path.join(dir, 'termination-log'), 'utf8'),
      log: () => readFileSync(this.logFile(c.name, inst.attempt), 'utf8'),
    });
    // The kernel's OOM killer struck in the container's cgroup: OOMKilled, as the kubelet reports it.
    const oomKilled = inst.cgroup !== undefined && exit.startError === undefined && oomKills(inst.cgroup) > 0;
    // What the container left running (shareProcessNamespace: background processes) ends with it.
    if (inst.cgroup) killCgroup(inst.cgroup);
    const reason = terminationReason(exit, oomKilled);
    const ranMs = parseTime(exit.finishedAt) - parseTime(inst.startedAt);
    recordExit(c, terminatedState(exit, inst, reason, message), ranMs, this.deps.config.crashLoopBackOff, Date.now());
    this.log.info({ container: c.name, exitCode: exit.exitCode, reason, killed: handles?.killReason }, 'container exited');
    this.changed();
    this.requestReconcile();
  }

  /** Stops a running container: preStop hook, stop signal, then SIGKILL after the grace period. */
  async stopContainer(c: ContainerRecord, graceSeconds: number, why: string): Promise<void> {
    const inst = c.running;
    if (!inst) return;
    const handles = this.handles(c.name);
    if (handles.stopping) return handles.stopping;
    handles.killReason = why;
    for (const p of handles.probers) p.stop();
    const container = this.spec(c.name);
    const preStop = container?.lifecycle?.preStop as ProbeAction | undefined;
    handles.stopping = stopInstance(inst, {
      graceSeconds,
      stopSignal: stopSignalOf(container?.lifecycle?.stopSignal ?? readJson<ContainerLaunch>(inst.launchFile)?.stopSignal),
      sharePid: sharesPid(this.podState.pod),
      ...(preStop && { preStop: (timeoutMs: number) => runAction(preStop, probeContext(this.hooks, c, inst), timeoutMs) }),
    })
      .then(() => this.collectExit(c, inst))
      .finally(() => {
        handles.stopping = undefined;
      });
    return handles.stopping;
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

  private async runDeletion(apiPod: Pod | undefined, keepLogsIn: string | undefined): Promise<void> {
    if (this.gone) return;
    clearTimeout(this.timer);
    this.abort.abort(new AbortedError('pod deleted'));
    await this.reconciling;
    const grace = this.graceSeconds(apiPod);
    const state = this.podState;
    await Promise.all(state.containers.filter((c) => c.running).map((c) => this.stopContainer(c, grace, 'pod deleted')));
    await teardownSandbox(this.sandboxHost, state);
    if (state.cgroup && !(await removeCgroup(state.cgroup))) this.log.warn({ cgroup: state.cgroup.memory }, "could not remove the pod's cgroup");
    for (const handles of this.runs.values()) handles.watcher?.close();
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
      await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ namespace: this.podState.namespace, name: this.podState.name, uid: this.uid, at: Date.now(), containers, pod }));
    } catch (err) {
      this.log.debug({ err: errorMessage(err) }, 'no logs kept for the finished pod');
    }
  }

  /** Lets go of the pod's processes without stopping them (the provider is closing). */
  detach(): void {
    this.gone = true;
    clearTimeout(this.timer);
    this.abort.abort(new AbortedError('provider closed'));
    for (const handles of this.runs.values()) {
      for (const p of handles.probers) p.stop();
      handles.watcher?.close();
    }
  }

  /** Looks for runs that ended while nobody watched (adopted monitors are not our children). */
  poll(): void {
    for (const c of this.podState.containers) {
      const inst = c.running;
      if (inst && !isAlive(inst.shimPid, inst.shimStart) && !this.runs.get(c.name)?.stopping) this.collectExit(c, inst);
    }
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
