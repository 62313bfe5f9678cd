// The runs of one pod's containers as this process handles them: starting a run (image,
// directory, monitor), noticing its end (monitor exit, exit file, poll), recording it, and
// stopping it. What a run is on disk: container-start.ts; how it ends: container-exit.ts.
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../../errors.ts';
import type { Container } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import { oomKills, killCgroup } from './cgroups.ts';
import { probeContext, runPostStart, startProbes, type HookHost } from './container-hooks.ts';
import { parseTime, recordExit, recordPullFailure, terminatedState, terminationMessage, terminationReason } from './container-exit.ts';
import {
  cleanupOldInstances,
  createFailureReason,
  instanceDir,
  logFile,
  prepareRun,
  recordStart,
  shimSpecFor,
  type PreparedRun,
  type StartHost,
} from './container-start.ts';
import { killInstance, stopInstance, stopSignalOf } from './container-stop.ts';
import { formatRfc3339Nano, nowNs } from './cri-log.ts';
import { ImagePullError, type PreparedImage } from './images.ts';
import { sharesPid, type ContainerLaunch } from './launch.ts';
import { containerSpec } from './pod-status.ts';
import { runAction, type ProbeAction, type Prober } from './probes.ts';
import { isAlive, readStat } from './procfs.ts';
import { launchShim, readJson } from './shim-launcher.ts';
import type { ShimExit } from './shim.ts';
import { containerID, type ContainerRecord, type Instance } from './state.ts';

/** What the runs need of their pod. */
export interface RunsHost extends StartHost {
  readonly log: Logger;
  /** Aborted when the pod is deleted or let go: ends image pulls. */
  readonly signal: AbortSignal;
  isDeleting(): boolean;
  /** The record changed: save and report it. */
  changed(): void;
  /** Reconcile again at `at` (ms). */
  schedule(at: number): void;
  requestReconcile(): void;
  podIP(): string | undefined;
  graceSeconds(): number;
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

export class ContainerRuns {
  private readonly host: RunsHost;
  private readonly hooks: HookHost;
  private readonly handles = new Map<string, RunHandles>();
  /** Images pulled while the sandbox is being created, by container name; start() takes them. */
  private readonly prefetched = new Map<string, { image: string; pending: Promise<PreparedImage> }>();

  constructor(host: RunsHost) {
    this.host = host;
    this.hooks = {
      log: host.log,
      tools: host.config.tools,
      containerSpec: (name) => containerSpec(host.state, name),
      podIP: () => host.podIP(),
      graceSeconds: () => host.graceSeconds(),
      changed: () => host.changed(),
      requestReconcile: () => host.requestReconcile(),
      stopContainer: (c, grace, why) => this.stop(c, grace, why),
    };
  }

  private handlesOf(name: string): RunHandles {
    let handles = this.handles.get(name);
    if (!handles) this.handles.set(name, (handles = { probers: [] }));
    return handles;
  }

  /** Starts pulling the images of `containers` (those that start first) while the sandbox is being made. */
  prefetch(containers: ContainerRecord[], now: number): void {
    for (const c of containers) {
      const container = containerSpec(this.host.state, c.name);
      if (!container || c.attempts > 0 || this.prefetched.has(c.name) || (c.pullRetryAt !== undefined && now < c.pullRetryAt)) continue;
      const pending = this.host.images.ensure(container, this.host.resolved().pullSecrets ?? [], this.host.signal);
      pending.catch(() => undefined); // start() reports it
      this.prefetched.set(c.name, { image: container.image ?? '', pending });
    }
  }

  clearPrefetched(): void {
    this.prefetched.clear();
  }

  /** The container's image (prefetched or pulled now); undefined after recording a failed pull. */
  private async pullImage(c: ContainerRecord, container: Container): Promise<PreparedImage | undefined> {
    const host = this.host;
    try {
      if (!c.imageID) {
        // The kubelet's default waiting reason: PodInitializing for init containers.
        c.waiting = { reason: c.init ? 'PodInitializing' : 'ContainerCreating' };
        host.changed();
      }
      const prefetched = this.prefetched.get(c.name);
      this.prefetched.delete(c.name);
      const prepared = await (prefetched?.image === (container.image ?? '')
        ? prefetched.pending
        : host.images.ensure(container, host.resolved().pullSecrets ?? [], host.signal));
      c.pullBackoffMs = 0;
      c.pullRetryAt = undefined;
      c.imageID = prepared.imageID;
      return prepared;
    } catch (err) {
      if (host.isDeleting()) return undefined;
      const reason = err instanceof ImagePullError ? err.reason : 'ErrImagePull';
      recordPullFailure(c, reason, errorMessage(err), host.config.imagePullBackOff, Date.now());
      host.log.info({ container: c.name, reason, err: errorMessage(err) }, 'image pull failed');
      host.changed();
      // Show ErrImagePull briefly, then ImagePullBackOff until the retry.
      host.schedule(Math.min(Date.now() + 1000, c.pullRetryAt!));
      return undefined;
    }
  }

  /** Starts the container's next run; a failure is recorded as the reason it waits, with a retry scheduled. */
  async start(c: ContainerRecord): Promise<void> {
    const host = this.host;
    const container = containerSpec(host.state, c.name);
    if (!container || !host.state.sandbox) return;
    const started = performance.now();
    const prepared = await this.pullImage(c, container);
    if (!prepared || host.isDeleting()) return;
    const pulled = performance.now();

    const attempt = c.attempts;
    let run: PreparedRun;
    try {
      run = await prepareRun(host, container, prepared, attempt);
    } catch (err) {
      if (host.isDeleting()) return;
      const reason = createFailureReason(err);
      c.waiting = { reason, message: errorMessage(err) };
      host.log.info({ container: c.name, reason, err: errorMessage(err) }, 'cannot create container');
      host.changed();
      host.schedule(Date.now() + 10_000);
      return;
    }
    const prepped = performance.now();

    const shim = await launchShim(run.dir, await shimSpecFor(host, container, run, attempt));
    if (!shim) {
      c.waiting = { reason: 'RunContainerError', message: 'cannot start the container monitor' };
      host.changed();
      host.schedule(Date.now() + 10_000);
      return;
    }
    const { child, shimPid, shimStart } = shim;
    const inst: Instance = {
      attempt,
      containerID: containerID(host.state.uid, c.name, attempt),
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
    const handles: RunHandles = { child, probers: [] };
    this.handles.set(c.name, handles);
    const ms = { image: Math.round(pulled - started), rootfs: Math.round(prepped - pulled), monitor: Math.round(performance.now() - prepped) };
    host.log.info({ container: c.name, attempt, shimPid, pid: inst.childPid, ms }, 'container started');
    startProbes(this.hooks, c, inst, handles.probers, false);
    if (container.lifecycle?.postStart) void runPostStart(this.hooks, c, inst, container);
    host.changed();
    child.once('exit', () => this.collectExit(c, inst));
    this.watchExit(c, inst);
    if (!isAlive(shimPid, shimStart)) this.collectExit(c, inst);
    // The next start of this image takes a root filesystem made now, in the background.
    host.images.prepareSpare(prepared);
    await cleanupOldInstances(host.dir, c);
  }

  /** Takes over a run recorded by an earlier process: watched again if its sandbox lives, else ended. */
  adopt(c: ContainerRecord, inst: Instance, sandboxAlive: boolean): void {
    this.handlesOf(c.name);
    if (!sandboxAlive) {
      this.finishInstance(
        c,
        inst,
        { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()), startError: undefined },
        'the pod sandbox is gone',
      );
    } else if (isAlive(inst.shimPid, inst.shimStart)) {
      startProbes(this.hooks, c, inst, this.handlesOf(c.name).probers, true);
      this.watchExit(c, inst);
    } else {
      this.collectExit(c, inst);
    }
  }

  /** Collects the run's exit as soon as its monitor writes the exit file (its process may linger a moment). */
  private watchExit(c: ContainerRecord, inst: Instance): void {
    const handles = this.handles.get(c.name);
    if (!handles || c.running !== inst) return;
    handles.watcher?.close();
    const exitFile = path.join(instanceDir(this.host.dir, c.name, inst.attempt), 'exit.json');
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
    const exit = readJson<ShimExit>(path.join(instanceDir(this.host.dir, c.name, inst.attempt), 'exit.json'));
    if (!exit) {
      // The monitor died without recording anything (killed): make sure nothing of the run survives.
      killInstance(inst, 'SIGKILL', sharesPid(this.host.state.pod));
      this.finishInstance(
        c,
        inst,
        { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()) },
        'the container monitor exited unexpectedly',
      );
      return;
    }
    this.finishInstance(c, inst, exit, undefined);
  }

  private finishInstance(c: ContainerRecord, inst: Instance, exit: ShimExit, problem: string | undefined): void {
    if (c.running !== inst) return;
    const host = this.host;
    const handles = this.handles.get(c.name);
    for (const p of handles?.probers ?? []) p.stop();
    handles?.watcher?.close();
    const dir = instanceDir(host.dir, c.name, inst.attempt);
    const message = terminationMessage(exit, problem, containerSpec(host.state, c.name)?.terminationMessagePolicy, {
      terminationLog: () => readFileSync(path.join(dir, 'termination-log'), 'utf8'),
      log: () => readFileSync(logFile(host.dir, c.name, inst.attempt), 'utf8'),
    });
    // The kernel's OOM killer struck in the container's cgroup: OOMKilled, as the kubelet reports it.
    const oomKilled = inst.cgroup !== undefined && exit.startError === undefined && oomKills(inst.cgroup) > 0;
    // What the container left running (shareProcessNamespace: background processes) ends with it.
    if (inst.cgroup) killCgroup(inst.cgroup);
    const reason = terminationReason(exit, oomKilled);
    const ranMs = parseTime(exit.finishedAt) - parseTime(inst.startedAt);
    recordExit(c, terminatedState(exit, inst, reason, message), ranMs, host.config.crashLoopBackOff, Date.now());
    host.log.info({ container: c.name, exitCode: exit.exitCode, reason, killed: handles?.killReason }, 'container exited');
    host.changed();
    host.requestReconcile();
  }

  /** Stops a running container: preStop hook, stop signal, then SIGKILL after the grace period. */
  stop(c: ContainerRecord, graceSeconds: number, why: string): Promise<void> {
    const inst = c.running;
    if (!inst) return Promise.resolve();
    const handles = this.handlesOf(c.name);
    if (handles.stopping) return handles.stopping;
    handles.killReason = why;
    for (const p of handles.probers) p.stop();
    const container = containerSpec(this.host.state, c.name);
    const preStop = container?.lifecycle?.preStop as ProbeAction | undefined;
    handles.stopping = stopInstance(inst, {
      graceSeconds,
      stopSignal: stopSignalOf(container?.lifecycle?.stopSignal ?? readJson<ContainerLaunch>(inst.launchFile)?.stopSignal),
      sharePid: sharesPid(this.host.state.pod),
      ...(preStop && { preStop: (timeoutMs: number) => runAction(preStop, probeContext(this.hooks, c, inst), timeoutMs) }),
    })
      .then(() => this.collectExit(c, inst))
      .finally(() => {
        handles.stopping = undefined;
      });
    return handles.stopping;
  }

  /** Looks for runs that ended while nobody watched (adopted monitors are not our children). */
  poll(): void {
    for (const c of this.host.state.containers) {
      const inst = c.running;
      if (inst && !isAlive(inst.shimPid, inst.shimStart) && !this.handles.get(c.name)?.stopping) this.collectExit(c, inst);
    }
  }

  /** Stops watching: probes end with `probes`, exit watches always. */
  release(probes: boolean): void {
    for (const handles of this.handles.values()) {
      if (probes) for (const p of handles.probers) p.stop();
      handles.watcher?.close();
    }
  }
}
