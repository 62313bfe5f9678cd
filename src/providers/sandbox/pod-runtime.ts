// One pod on the sandbox runtime: its sandbox (pause process + network), its containers' runs
// (init containers in order, then the app containers), restarts with CrashLoopBackOff, probes,
// hooks, activeDeadlineSeconds, and the status the kubelet would report for it.
//
// Everything that changes goes through reconcile(), which runs one at a time per pod: it looks at
// the recorded state and the clock, takes the next steps (create the sandbox, pull, start or
// restart a container, fail the pod) and arms a timer for the next due time. Container exits,
// probe results and timers only record facts and call kick().
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, VkError } from '../../errors.ts';
import type { Container, ContainerStatus, Pod, PodCondition, PodStatus, Secret } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { ResolvedPod } from '../provider.ts';
import { containerLimits, killCgroup, oomKills, procsFiles, removeCgroup, type CgroupPaths, type Cgroups } from './cgroups.ts';
import type { SandboxConfig } from './config.ts';
import { formatRfc3339Nano, nowNs } from './cri-log.ts';
import { ContainerConfigError, ImagePullError, UserResolveError, type Images, type PreparedImage } from './images.ts';
import { containerCapabilities, execCommand, launchEnv, sharesPid, startCommand, type ContainerLaunch, type LaunchTools } from './launch.ts';
import type { PodNetworks } from './network.ts';
import { pauseAlive, setPauseHostname, startPause, stopPause, type PauseTools } from './pause.ts';
import { Prober, runAction, type ProbeAction, type ProbeContext, type ProbeKind, type ProbeSpec } from './probes.ts';
import { childrenOf, descendantsOf, isAlive, readStat, signal as sendSignal, allStats } from './procfs.ts';
import { shimEnv, type ShimExit, type ShimSpec, type ShimState } from './shim.ts';
import { containerID, saveState, type ContainerRecord, type Instance, type PodRecordState, type Terminated } from './state.ts';
import { containerMounts, podHostname, resolvConfFor, VolumeMountError, writePodEtc, writeVolumes } from './volumes.ts';

const SHIM = path.join(import.meta.dirname, 'shim.ts');
/** How long a container's monitor may take to report the start. */
const SHIM_START_TIMEOUT_MS = 10_000;
/** The safety net of the file watches (a missed inotify event costs at most this). */
const WATCH_FALLBACK_MS = 250;

/** Where the shims' compiled code is cached (see shimEnv). */
export function shimCacheDir(dataDir: string): string {
  return path.join(dataDir, 'run', 'node-compile-cache');
}

/** Loads the shim once so that its compiled code is in the cache before the first container starts. */
export async function prewarmShim(dataDir: string, timeoutMs = 10_000): Promise<void> {
  const child = spawn(process.execPath, [SHIM, '--prewarm'], { env: shimEnv(shimCacheDir(dataDir)), stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    child.once('close', () => resolve());
  });
  clearTimeout(timer);
}

/**
 * Calls `check` whenever something in `dir` changes (inotify) and every WATCH_FALLBACK_MS (in
 * case an event is missed); `check` returns true when done. Resolves when it has, or after `timeoutMs`.
 */
function watchUntil(dir: string, check: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    let watcher: FSWatcher | undefined;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      watcher?.close();
      clearInterval(timer);
      clearTimeout(deadline);
      resolve();
    };
    const look = () => {
      if (!done && check()) finish();
    };
    const timer = setInterval(look, WATCH_FALLBACK_MS);
    const deadline = setTimeout(finish, timeoutMs);
    try {
      watcher = watch(dir, look);
      watcher.on('error', () => watcher?.close());
    } catch {
      // the timer alone
    }
    look();
  });
}

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

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function parseTime(text: string | undefined): number {
  if (!text) return Date.now();
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? Date.now() : ms;
}

const SIGNALS: Record<string, NodeJS.Signals> = { SIGTERM: 'SIGTERM', SIGINT: 'SIGINT', SIGQUIT: 'SIGQUIT', SIGHUP: 'SIGHUP', SIGKILL: 'SIGKILL', SIGUSR1: 'SIGUSR1', SIGUSR2: 'SIGUSR2', SIGWINCH: 'SIGWINCH' };

function stopSignalOf(name: string | undefined): NodeJS.Signals {
  if (!name) return 'SIGTERM';
  const upper = name.toUpperCase();
  return SIGNALS[upper.startsWith('SIG') ? upper : `SIG${upper}`] ?? 'SIGTERM';
}

interface Live {
  child?: ChildProcess;
  probers: Prober[];
  stopping?: Promise<void>;
  /** Set when we kill the instance, so its exit is not mistaken for a crash reason. */
  killReason?: string;
  /** Watches the instance's directory for the monitor's exit file. */
  watcher?: FSWatcher;
}

export class SandboxPod {
  state: PodRecordState;
  resolved: ResolvedPod;
  readonly dir: string;
  private readonly deps: RuntimeDeps;
  private readonly log: Logger;
  private readonly live = new Map<string, Live>();
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly abort = new AbortController();
  private deleting = false;
  private gone = false;
  /** Images pulled while the sandbox is being created, by container name; startContainer takes them. */
  private readonly prefetched = new Map<string, { image: string; pending: Promise<PreparedImage> }>();

  constructor(deps: RuntimeDeps, dir: string, state: PodRecordState, resolved: ResolvedPod) {
    this.deps = deps;
    this.dir = dir;
    this.state = state;
    this.resolved = resolved;
    this.log = deps.log.child({ pod: `${state.namespace}/${state.name}`, uid: state.uid });
  }

  static fresh(deps: RuntimeDeps, dir: string, resolved: ResolvedPod): SandboxPod {
    const pod = resolved.pod;
    const spec = pod.spec;
    const rec = (c: Container, init: boolean): ContainerRecord => ({
      name: c.name,
      init,
      sidecar: init && c.restartPolicy === 'Always',
      restartCount: 0,
      attempts: 0,
      waiting: { reason: init ? 'PodInitializing' : (spec?.initContainers?.length ?? 0) > 0 ? 'PodInitializing' : 'ContainerCreating' },
      backoffMs: 0,
      pullBackoffMs: 0,
      ready: false,
      started: false,
    });
    const state: PodRecordState = {
      version: 1,
      uid: pod.metadata?.uid ?? '',
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      pod,
      createdAt: Date.now(),
      containers: [...(spec?.initContainers ?? []).map((c) => rec(c, true)), ...(spec?.containers ?? []).map((c) => rec(c, false))],
      initDone: (spec?.initContainers ?? []).length === 0,
    };
    if (state.containers.some((c) => c.init)) state.containers.filter((c) => c.init)[0]!.waiting = { reason: 'PodInitializing' };
    return new SandboxPod(deps, dir, state, resolved);
  }

  get key(): string {
    return `${this.state.namespace}/${this.state.name}`;
  }

  get uid(): string {
    return this.state.uid;
  }

  get isDeleting(): boolean {
    return this.deleting;
  }

  spec(name: string): Container | undefined {
    const spec = this.state.pod.spec;
    return spec?.containers.find((c) => c.name === name) ?? spec?.initContainers?.find((c) => c.name === name);
  }

  record(name: string): ContainerRecord | undefined {
    return this.state.containers.find((c) => c.name === name);
  }

  private save(): void {
    if (this.gone) return;
    try {
      saveState(this.dir, this.state);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not save pod state');
    }
  }

  private changed(): void {
    this.save();
    this.deps.changed(this);
  }

  /** Schedules a reconcile (coalesced; they never overlap). */
  kick(): void {
    if (this.pending || this.gone) return;
    this.pending = true;
    this.chain = this.chain.then(async () => {
      this.pending = false;
      if (this.gone || this.deleting) return;
      try {
        await this.reconcile();
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'pod reconcile failed');
        this.schedule(Date.now() + 2000);
      }
    });
  }

  private schedule(at: number): void {
    if (this.gone || this.deleting) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.min(Math.max(at - Date.now(), 0), 2_147_483_647));
  }

  // --- Adoption after a restart of the provider.

  /** Re-attaches to the processes of a pod loaded from disk; returns false when its sandbox is gone. */
  adopt(): boolean {
    const sandbox = this.state.sandbox;
    const alive = sandbox !== undefined && pauseAlive(sandbox.pause);
    if (sandbox?.network) this.deps.networks.reserve(sandbox.network.index);
    for (const c of this.state.containers) {
      const inst = c.running;
      if (!inst) continue;
      this.live.set(c.name, { probers: [] });
      if (!alive) {
        this.finishInstance(c, inst, { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()), startError: undefined }, 'the pod sandbox is gone');
        continue;
      }
      if (isAlive(inst.shimPid, inst.shimStart)) {
        this.startProbes(c, inst, true);
        this.watchExit(c, inst);
      } else {
        this.collectExit(c, inst);
      }
    }
    if (sandbox && !alive) {
      this.log.info('pod sandbox is gone; it will be created again');
      this.state.sandbox = undefined;
      if (sandbox.network) void this.deps.networks.detach(sandbox.network).catch(() => undefined);
    }
    this.killStrays();
    this.save();
    return alive;
  }

  /**
   * Kills container runs of this pod that its state does not know: a provider killed between
   * starting a monitor and recording it leaves one behind.
   */
  private killStrays(): void {
    const known = new Set(this.state.containers.map((c) => c.running?.shimPid).filter((p) => p !== undefined));
    const marker = `${path.join(this.dir, 'containers')}/`;
    const stats = allStats();
    for (const p of stats) {
      if (known.has(p.pid)) continue;
      let cmdline: string[];
      try {
        cmdline = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      const spec = cmdline.find((arg) => arg.startsWith(marker) && arg.endsWith('/spec.json'));
      if (!spec || !cmdline.some((arg) => arg.endsWith('/shim.ts'))) continue;
      const info = readJson<{ 'child-pid'?: number }>(path.join(path.dirname(spec), 'info.json'));
      const child = info?.['child-pid'];
      if (child && readStat(child)?.comm === 'bwrap') sendSignal(child, 'SIGKILL');
      for (const d of descendantsOf(p.pid, stats)) sendSignal(d.pid, 'SIGKILL');
      this.log.info({ shimPid: p.pid, spec }, 'killed a container run the pod state does not know');
    }
  }

  // --- The reconcile step.

  private async reconcile(): Promise<void> {
    const now = Date.now();
    if (this.state.terminal) return;
    const spec = this.state.pod.spec;
    const policy = spec?.restartPolicy ?? 'Always';
    let next = Infinity;

    // activeDeadlineSeconds, counted from the pod's start on this node.
    const deadline = spec?.activeDeadlineSeconds;
    if (typeof deadline === 'number') {
      const at = this.state.createdAt + deadline * 1000;
      if (now >= at) {
        await this.failPod('DeadlineExceeded', 'Pod was active on the node longer than the specified deadline');
        return;
      }
      next = Math.min(next, at);
    }

    if (!this.state.sandbox) {
      // Pull the images of the containers that start first while the sandbox is being made.
      this.prefetchImages(now);
      await this.createSandbox();
      if (!this.state.sandbox) this.prefetched.clear();
      if (!this.state.sandbox || this.deleting) return;
    }

    const inits = this.state.containers.filter((c) => c.init);
    const apps = this.state.containers.filter((c) => !c.init);

    if (!this.state.initDone) {
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
      this.state.initDone = true;
      for (const c of apps) if (c.waiting?.reason === 'PodInitializing') c.waiting = { reason: 'ContainerCreating' };
      this.changed();
    }

    // Sidecars keep running (restartPolicy Always) while the pod runs.
    for (const c of inits.filter((x) => x.sidecar)) {
      if (!c.running) next = Math.min(next, await this.startOrBackoff(c, now));
      if (this.deleting) return;
    }
    for (const c of apps) {
      if (this.deleting) return;
      if (c.running) continue;
      if (c.terminated && !this.shouldRestart(c, policy)) continue;
      next = Math.min(next, await this.startOrBackoff(c, now));
    }

    // Terminal once every app container has stopped for good.
    if (apps.every((c) => !c.running && c.terminated && !this.shouldRestart(c, policy))) {
      const failed = apps.some((c) => (c.terminated?.exitCode ?? 0) !== 0);
      await this.stopSidecars();
      this.state.terminal = { phase: failed ? 'Failed' : 'Succeeded', at: Date.now() };
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
    const first = this.state.initDone ? this.state.containers.filter((c) => !c.init || c.sidecar) : this.state.containers.filter((c) => c.init).slice(0, 1);
    for (const c of first) {
      const container = this.spec(c.name);
      if (!container || c.attempts > 0 || this.prefetched.has(c.name) || (c.pullRetryAt !== undefined && now < c.pullRetryAt)) continue;
      const pending = this.deps.images.ensure(container, this.pullSecrets(), this.abort.signal);
      pending.catch(() => undefined); // startContainer reports it
      this.prefetched.set(c.name, { image: container.image ?? '', pending });
    }
  }

  private scheduleIf(at: number): void {
    if (at !== Infinity) this.schedule(at);
  }

  private shouldRestart(c: ContainerRecord, policy: string): boolean {
    if (c.sidecar) return true;
    if (policy === 'Always') return true;
    if (policy === 'OnFailure') return (c.terminated?.exitCode ?? 0) !== 0;
    return false;
  }

  /** Starts the container now, or records the back-off it waits in; returns when to look again. */
  private async startOrBackoff(c: ContainerRecord, now: number): Promise<number> {
    if (c.pullRetryAt !== undefined && now < c.pullRetryAt) {
      if (c.waiting?.reason === 'ErrImagePull') {
        c.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image ${JSON.stringify(this.spec(c.name)?.image ?? '')}: ${c.waiting.message ?? ''}`.trim() };
        this.changed();
      }
      return c.pullRetryAt;
    }
    if (c.terminated && c.backoffUntil !== undefined && now < c.backoffUntil) {
      const seconds = Math.round((c.backoffWaitMs ?? c.backoffMs) / 1000);
      const reason = 'CrashLoopBackOff';
      const message = `back-off ${seconds}s restarting failed container=${c.name} pod=${this.state.name}_${this.state.namespace}(${this.state.uid})`;
      if (c.waiting?.reason !== reason || c.waiting.message !== message) {
        c.waiting = { reason, message };
        this.changed();
      }
      return c.backoffUntil;
    }
    await this.startContainer(c);
    return Infinity;
  }

  // --- Sandbox.

  private async createSandbox(): Promise<void> {
    const pod = this.state.pod;
    const tools = this.deps.config.tools;
    try {
      await mkdir(path.join(this.dir, 'shm'), { recursive: true });
      await chmod(path.join(this.dir, 'shm'), 0o1777);
      await writeVolumes(this.dir, this.resolved.volumes);
      const pause = await startPause(tools as PauseTools);
      const sandbox: NonNullable<PodRecordState['sandbox']> = { pause, readyAt: Date.now() };
      this.state.sandbox = sandbox;
      this.save();
      // The hostname and the network at once: both only need the pause process's namespaces.
      const [named, network] = await Promise.allSettled([
        setPauseHostname(tools as PauseTools, pause, podHostname(pod)),
        pod.spec?.hostNetwork ? this.deps.networks.loopbackOnly(pause.pid).then(() => undefined) : this.deps.networks.attach(pause.pid),
      ]);
      if (network.status === 'fulfilled' && network.value) sandbox.network = network.value;
      if (named.status === 'rejected') throw named.reason;
      if (network.status === 'rejected') throw network.reason;
      await writePodEtc(this.dir, pod, this.podIP(), resolvConfFor(pod, this.deps.hostResolvConf));
      this.log.info({ pausePid: pause.pid, podIP: this.state.sandbox.network?.podIP }, 'pod sandbox created');
      this.changed();
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'creating the pod sandbox failed');
      await this.teardownSandbox();
      for (const c of this.state.containers) if (!c.running) c.waiting = { reason: 'ContainerCreating', message: `Failed to create pod sandbox: ${errorMessage(err)}` };
      this.changed();
      this.schedule(Date.now() + 5000);
    }
  }

  private async teardownSandbox(): Promise<void> {
    const sandbox = this.state.sandbox;
    if (!sandbox) return;
    await stopPause(sandbox.pause);
    if (sandbox.network) {
      try {
        await this.deps.networks.detach(sandbox.network);
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, 'could not remove the pod network');
      }
    }
    this.state.sandbox = undefined;
  }

  // --- Containers.

  private instanceDir(name: string, attempt: number): string {
    return path.join(this.dir, 'containers', name, String(attempt));
  }

  logFile(name: string, attempt: number): string {
    return path.join(this.dir, 'logs', name, `${attempt}.log`);
  }

  private socketPath(name: string, attempt: number): string {
    return path.join(this.deps.config.dataDir, 'run', `${containerID(this.state.uid, name, attempt).slice(10, 30)}.sock`);
  }

  attachSocket(c: ContainerRecord): string | undefined {
    return c.running ? this.socketPath(c.name, c.running.attempt) : undefined;
  }

  private pullSecrets(): Secret[] {
    return (this.resolved.pullSecrets ?? []).slice();
  }

  private async startContainer(c: ContainerRecord): Promise<void> {
    const container = this.spec(c.name);
    const sandbox = this.state.sandbox;
    if (!container || !sandbox) return;
    const pod = this.state.pod;
    // Image.
    let prepared: PreparedImage;
    const timing = { start: performance.now(), image: 0, rootfs: 0 };
    try {
      if (!c.imageID) {
        c.waiting = { reason: 'ContainerCreating' };
        this.changed();
      }
      const prefetched = this.prefetched.get(c.name);
      this.prefetched.delete(c.name);
      prepared = await (prefetched?.image === (container.image ?? '') ? prefetched.pending : this.deps.images.ensure(container, this.pullSecrets(), this.abort.signal));
      c.pullBackoffMs = 0;
      c.pullRetryAt = undefined;
      c.imageID = prepared.imageID;
      timing.image = performance.now();
    } catch (err) {
      if (this.deleting) return;
      const reason = err instanceof ImagePullError ? err.reason : 'ErrImagePull';
      const cfg = this.deps.config.imagePullBackOff;
      c.pullBackoffMs = c.pullBackoffMs === 0 ? cfg.initialMs : Math.min(c.pullBackoffMs * 2, cfg.maxMs);
      c.pullRetryAt = Date.now() + c.pullBackoffMs;
      c.waiting = { reason, message: errorMessage(err) };
      this.log.info({ container: c.name, reason, err: errorMessage(err) }, 'image pull failed');
      this.changed();
      // Show ErrImagePull briefly, then ImagePullBackOff until the retry.
      this.schedule(Math.min(Date.now() + 1000, c.pullRetryAt));
      return;
    }
    if (this.deleting) return;

    const attempt = c.attempts;
    const dir = this.instanceDir(c.name, attempt);
    const rootfs = path.join(dir, 'rootfs');
    let launch: ContainerLaunch;
    let cgroup: CgroupPaths | undefined;
    const tty = container.tty === true;
    try {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const proc = this.deps.images.process(prepared, container, pod.spec);
      await this.deps.images.createRootfs(prepared, rootfs);
      const user = await this.deps.images.user(rootfs, proc);
      await this.deps.images.ensureDir(rootfs, proc.workingDir);
      const mounts = await containerMounts(this.dir, this.resolved, container);
      const env = [...proc.env];
      const has = (name: string) => env.some((e) => e.startsWith(`${name}=`));
      if (!has('HOSTNAME')) env.push(`HOSTNAME=${podHostname(pod)}`);
      if (!has('HOME')) env.push(`HOME=${user.home || '/root'}`);
      if (tty && !has('TERM')) env.push('TERM=xterm');
      const terminationPath = container.terminationMessagePath || '/dev/termination-log';
      await writeFile(path.join(dir, 'termination-log'), '', { mode: 0o666 });
      cgroup = await this.containerCgroup(c.name, container);
      launch = {
        pausePid: sandbox.pause.pid,
        rootfs,
        mounts,
        etc: { hosts: path.join(this.dir, 'etc/hosts'), hostname: path.join(this.dir, 'etc/hostname'), resolv: path.join(this.dir, 'etc/resolv.conf') },
        shm: path.join(this.dir, 'shm'),
        terminationLog: { host: path.join(dir, 'termination-log'), path: terminationPath },
        argv: proc.argv,
        env,
        workingDir: proc.workingDir,
        uid: user.uid,
        gid: user.gid,
        capabilities: containerCapabilities(container),
        readOnlyRoot: container.securityContext?.readOnlyRootFilesystem === true,
        sharePid: sharesPid(pod),
        ...(proc.stopSignal && { stopSignal: proc.stopSignal }),
        ...(pod.spec?.hostNetwork && { hostNetwork: true }),
        ...(cgroup && { cgroupProcs: procsFiles(cgroup) }),
      };
      await writeFile(path.join(dir, 'launch.json'), JSON.stringify(launch));
      timing.rootfs = performance.now();
    } catch (err) {
      if (this.deleting) return;
      const reason = err instanceof ContainerConfigError || err instanceof UserResolveError || err instanceof VolumeMountError ? 'CreateContainerConfigError' : 'CreateContainerError';
      c.waiting = { reason, message: errorMessage(err) };
      this.log.info({ container: c.name, reason, err: errorMessage(err) }, 'cannot create container');
      this.changed();
      this.schedule(Date.now() + 10_000);
      return;
    }

    const logFile = this.logFile(c.name, attempt);
    await mkdir(path.dirname(logFile), { recursive: true });
    await mkdir(path.join(this.deps.config.dataDir, 'run'), { recursive: true });
    const infoFile = path.join(dir, 'info.json');
    const tools = this.deps.config.tools as LaunchTools & { stty: string };
    const shimSpec: ShimSpec = {
      argv: startCommand(tools, launch, infoFile, tty),
      env: launchEnv(),
      tty,
      stdin: container.stdin === true,
      stdinOnce: container.stdinOnce === true,
      logFile,
      logMaxBytes: this.deps.config.containerLogMaxBytes,
      logMaxFiles: this.deps.config.containerLogMaxFiles,
      socket: this.socketPath(c.name, attempt),
      stateFile: path.join(dir, 'state.json'),
      exitFile: path.join(dir, 'exit.json'),
      infoFile,
      stty: tools.stty,
    };
    await writeFile(path.join(dir, 'spec.json'), JSON.stringify(shimSpec));
    const child = spawn(process.execPath, [SHIM, path.join(dir, 'spec.json')], { detached: true, stdio: 'ignore', env: shimEnv(shimCacheDir(this.deps.config.dataDir)) });
    const shimPid = await new Promise<number | undefined>((resolve) => {
      child.once('spawn', () => resolve(child.pid));
      child.once('error', () => resolve(undefined));
    });
    child.unref();
    if (shimPid === undefined) {
      c.waiting = { reason: 'RunContainerError', message: `cannot start the container monitor (${process.execPath})` };
      this.changed();
      this.schedule(Date.now() + 10_000);
      return;
    }
    const shimStart = readStat(shimPid)?.startTicks ?? 0;
    // Wait for the shim to report the start with the sandboxed process's pid (or the exit, for a
    // command that fails at once): it renames its state file into the instance directory.
    let shimState: ShimState | undefined;
    await watchUntil(
      dir,
      () => {
        shimState = readJson<ShimState>(shimSpec.stateFile);
        return shimState?.childPid !== undefined || existsSync(shimSpec.exitFile) || !isAlive(shimPid, shimStart);
      },
      SHIM_START_TIMEOUT_MS,
    );
    c.attempts = attempt + 1;
    const inst: Instance = {
      attempt,
      containerID: containerID(this.state.uid, c.name, attempt),
      startedAt: shimState?.startedAt ?? formatRfc3339Nano(nowNs()),
      shimPid,
      shimStart,
      launchFile: path.join(dir, 'launch.json'),
      ...(cgroup && { cgroup }),
    };
    // Running (for status, exec and probes) once the sandboxed process is known.
    const childPid = (shimState as ShimState | undefined)?.childPid;
    if (childPid !== undefined) {
      inst.childPid = childPid;
      inst.childStart = readStat(childPid)?.startTicks;
    }
    c.running = inst;
    c.waiting = undefined;
    if (c.terminated) {
      c.last = c.terminated;
      c.lastAttempt = c.logAttempt;
      c.restartCount++;
      c.terminated = undefined;
    }
    c.logAttempt = attempt;
    c.backoffUntil = undefined;
    c.started = !container.startupProbe;
    c.ready = false;
    const live: Live = { child, probers: [] };
    this.live.set(c.name, live);
    this.log.info({ container: c.name, attempt, shimPid, pid: inst.childPid, ms: { image: Math.round(timing.image - timing.start), rootfs: Math.round(timing.rootfs - timing.image), monitor: Math.round(performance.now() - timing.rootfs) } }, 'container started');
    this.startProbes(c, inst, false);
    if (container.lifecycle?.postStart) void this.runPostStart(c, inst, container);
    this.changed();
    child.once('exit', () => this.collectExit(c, inst));
    this.watchExit(c, inst);
    if (!isAlive(shimPid, shimStart)) this.collectExit(c, inst);
    // The next start of this image takes a root filesystem made now, in the background.
    this.deps.images.prepareSpare(prepared);
    await this.cleanupOldInstances(c);
  }

  /**
   * A fresh cgroup for the container's next run, under the pod's, with the container's limits
   * (undefined without cgroups). Throws when it cannot be made: the limits would not hold.
   */
  private async containerCgroup(name: string, container: Container): Promise<CgroupPaths | undefined> {
    const cgroups = this.deps.cgroups;
    if (!cgroups) return undefined;
    if (!this.state.cgroup) {
      this.state.cgroup = cgroups.createPod(this.state.uid, this.deps.config.podPidsLimit);
      this.save();
    }
    try {
      return await cgroups.createContainer(this.state.cgroup, name, containerLimits(container));
    } catch (err) {
      throw new VkError('VK_PROVIDER', `cannot create the container's cgroup: ${errorMessage(err)}`);
    }
  }

  /** Collects the instance's exit as soon as its monitor writes the exit file (its process may linger a moment). */
  private watchExit(c: ContainerRecord, inst: Instance): void {
    const live = this.live.get(c.name);
    if (!live || c.running !== inst) return;
    live.watcher?.close();
    const exitFile = path.join(this.instanceDir(c.name, inst.attempt), 'exit.json');
    try {
      const watcher = watch(path.dirname(exitFile), (_event, name) => {
        if ((name === null || name === 'exit.json') && existsSync(exitFile)) this.collectExit(c, inst);
      });
      watcher.on('error', () => watcher.close());
      live.watcher = watcher;
    } catch {
      // the monitor's exit and the provider's poll notice it
    }
    if (existsSync(exitFile)) this.collectExit(c, inst);
  }

  /** Removes instance directories and logs no status or `--previous` refers to any more. */
  private async cleanupOldInstances(c: ContainerRecord): Promise<void> {
    const keep = new Set([c.running?.attempt, c.lastAttempt, c.logAttempt].filter((a) => a !== undefined).map(String));
    for (const sub of ['containers', 'logs']) {
      const dir = path.join(this.dir, sub, c.name);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        const attempt = name.split('.')[0]!;
        // Keep the previous instance's log (for --previous) but not its root filesystem.
        if (sub === 'logs' ? keep.has(attempt) : attempt === String(c.running?.attempt)) continue;
        await rm(path.join(dir, name), { recursive: true, force: true });
      }
    }
  }

  /** The shim exited (or was found gone): record how the instance ended. */
  private collectExit(c: ContainerRecord, inst: Instance): void {
    if (c.running !== inst) return;
    const dir = this.instanceDir(c.name, inst.attempt);
    const exit = readJson<ShimExit>(path.join(dir, 'exit.json'));
    if (!exit) {
      // The shim died without recording anything (killed): make sure nothing of the instance survives.
      this.killInstance(inst, 'SIGKILL');
      this.finishInstance(c, inst, { exitCode: 137, startedAt: inst.startedAt, finishedAt: formatRfc3339Nano(nowNs()) }, 'the container monitor exited unexpectedly');
      return;
    }
    this.finishInstance(c, inst, exit, undefined);
  }

  private finishInstance(c: ContainerRecord, inst: Instance, exit: ShimExit, problem: string | undefined): void {
    if (c.running !== inst) return;
    const live = this.live.get(c.name);
    for (const p of live?.probers ?? []) p.stop();
    live?.watcher?.close();
    const container = this.spec(c.name);
    let message = problem ?? exit.startError;
    if (message === undefined) {
      try {
        const text = readFileSync(path.join(this.instanceDir(c.name, inst.attempt), 'termination-log'), 'utf8').slice(0, 4096);
        if (text) message = text;
      } catch {
        // none
      }
    }
    if (message === undefined && exit.exitCode !== 0 && container?.terminationMessagePolicy === 'FallbackToLogsOnError') {
      try {
        const lines = readFileSync(this.logFile(c.name, inst.attempt), 'utf8').trimEnd().split('\n').slice(-80);
        message = lines.map((l) => l.split(' ').slice(3).join(' ')).join('\n').slice(-2048) || undefined;
      } catch {
        // no log
      }
    }
    // The kernel's OOM killer struck in the container's cgroup: OOMKilled, as the kubelet reports it.
    const oomKilled = inst.cgroup !== undefined && exit.startError === undefined && oomKills(inst.cgroup) > 0;
    // What the container left running (shareProcessNamespace: background processes) ends with it.
    if (inst.cgroup) killCgroup(inst.cgroup);
    const reason = exit.startError !== undefined ? 'StartError' : oomKilled ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error';
    const terminated: Terminated = {
      exitCode: exit.exitCode,
      ...(exit.signal && { signal: Number(exit.exitCode) - 128 }),
      reason,
      ...(message !== undefined && { message }),
      startedAt: toSeconds(inst.startedAt),
      finishedAt: toSeconds(exit.finishedAt),
      containerID: inst.containerID,
    };
    c.running = undefined;
    c.terminated = terminated;
    c.ready = false;
    c.started = false;
    // CrashLoopBackOff: the first restart is immediate, later ones wait 10 s, 20 s, ... up to the max;
    // a container that ran long enough starts over.
    const cfg = this.deps.config.crashLoopBackOff;
    const ranMs = parseTime(exit.finishedAt) - parseTime(inst.startedAt);
    if (ranMs >= cfg.resetAfterMs) c.backoffMs = 0;
    if (c.backoffMs === 0) {
      c.backoffUntil = undefined;
      c.backoffMs = cfg.initialMs;
    } else {
      c.backoffUntil = Date.now() + c.backoffMs;
      c.backoffWaitMs = c.backoffMs;
      c.backoffMs = Math.min(c.backoffMs * 2, cfg.maxMs);
    }
    this.log.info({ container: c.name, exitCode: exit.exitCode, reason, killed: live?.killReason }, 'container exited');
    this.changed();
    this.kick();
  }

  /** Signals the instance's processes: the command (SIGTERM etc.), or everything (SIGKILL). */
  private killInstance(inst: Instance, sig: NodeJS.Signals): void {
    const stats = allStats();
    if (!inst.childPid || !isAlive(inst.childPid, inst.childStart)) {
      // Not known yet: the whole tree under the shim.
      for (const p of descendantsOf(inst.shimPid, stats)) if (p.pid !== inst.shimPid) sendSignal(p.pid, sig);
      return;
    }
    const sharePid = sharesPid(this.state.pod);
    if (sig === 'SIGKILL') {
      // Killing a pid namespace's init kills all of it; with a shared namespace, kill the tree.
      // bwrap's monitor under the shim goes too (it would wait for the killed init forever).
      for (const p of sharePid ? descendantsOf(inst.childPid, stats) : [{ pid: inst.childPid }]) sendSignal(p.pid, 'SIGKILL');
      for (const p of descendantsOf(inst.shimPid, stats)) if (p.pid !== inst.shimPid) sendSignal(p.pid, 'SIGKILL');
      return;
    }
    // The init of a pid namespace ignores signals it has no handler for: signal the command itself.
    if (sharePid) sendSignal(inst.childPid, sig);
    else for (const p of childrenOf(inst.childPid, stats)) sendSignal(p.pid, sig);
  }

  /** Stops a running container: preStop hook, stop signal, then SIGKILL after the grace period. */
  async stopContainer(c: ContainerRecord, graceSeconds: number, why: string): Promise<void> {
    const inst = c.running;
    if (!inst) return;
    const live = this.live.get(c.name) ?? { probers: [] };
    this.live.set(c.name, live);
    if (live.stopping) return live.stopping;
    live.killReason = why;
    const stop = async () => {
      for (const p of live.probers) p.stop();
      const container = this.spec(c.name);
      const deadline = Date.now() + graceSeconds * 1000;
      const preStop = container?.lifecycle?.preStop as ProbeAction | undefined;
      if (preStop && graceSeconds > 0) {
        const hook = runAction(preStop, this.probeContext(c, inst), Math.max(deadline - Date.now(), 1));
        await Promise.race([hook, sleep(Math.max(deadline - Date.now(), 0))]);
      }
      const stopSignal = stopSignalOf(container?.lifecycle?.stopSignal ?? readJson<ContainerLaunch>(inst.launchFile)?.stopSignal);
      this.killInstance(inst, graceSeconds > 0 ? stopSignal : 'SIGKILL');
      while (isAlive(inst.shimPid, inst.shimStart) && Date.now() < deadline) await sleep(20);
      if (isAlive(inst.shimPid, inst.shimStart)) this.killInstance(inst, 'SIGKILL');
      const until = Date.now() + 10_000;
      while (isAlive(inst.shimPid, inst.shimStart) && Date.now() < until) await sleep(20);
      if (isAlive(inst.shimPid, inst.shimStart)) sendSignal(inst.shimPid, 'SIGKILL');
      this.collectExit(c, inst);
    };
    live.stopping = stop().finally(() => {
      live.stopping = undefined;
    });
    return live.stopping;
  }

  private async runPostStart(c: ContainerRecord, inst: Instance, container: Container): Promise<void> {
    const hook = container.lifecycle?.postStart as ProbeAction | undefined;
    if (!hook) return;
    const result = await runAction(hook, this.probeContext(c, inst), 30_000);
    if (result.ok || c.running !== inst) return;
    this.log.info({ container: c.name, message: result.message }, 'postStart hook failed; killing the container');
    c.waiting = undefined;
    await this.stopContainer(c, this.graceSeconds(), `FailedPostStartHook: ${result.message}`);
  }

  graceSeconds(pod?: Pod): number {
    const p = pod ?? this.state.pod;
    return p.metadata?.deletionGracePeriodSeconds ?? p.spec?.terminationGracePeriodSeconds ?? 30;
  }

  private startProbes(c: ContainerRecord, inst: Instance, adopted: boolean): void {
    if (c.running !== inst) return;
    const container = this.spec(c.name);
    if (!container || c.init && !c.sidecar) {
      if (adopted && !container?.readinessProbe) c.ready = c.init ? false : true;
      return;
    }
    const live = this.live.get(c.name) ?? { probers: [] };
    this.live.set(c.name, live);
    const sinceStart = Date.now() - parseTime(inst.startedAt);
    const ctx = this.probeContext(c, inst);
    const make = (kind: ProbeKind, spec: ProbeSpec | undefined, onChange: (ok: boolean, message: string) => void) => {
      if (!spec) return;
      const p = new Prober(kind, spec, ctx, onChange);
      live.probers.push(p);
      p.start((spec.initialDelaySeconds ?? 0) * 1000 - sinceStart);
    };
    const readiness = container.readinessProbe as ProbeSpec | undefined;
    const liveness = container.livenessProbe as ProbeSpec | undefined;
    const startAfterStartup = () => {
      if (!readiness) {
        c.ready = true;
        this.changed();
      }
      make('readiness', readiness, (ok) => {
        if (c.running !== inst) return;
        c.ready = ok;
        this.changed();
      });
      make('liveness', liveness, (ok, message) => {
        if (ok || c.running !== inst) return;
        this.log.info({ container: c.name, message }, 'liveness probe failed; restarting the container');
        void this.stopContainer(c, container.livenessProbe?.terminationGracePeriodSeconds ?? this.graceSeconds(), `Liveness probe failed: ${message}`);
      });
    };
    if (container.startupProbe && !(adopted && c.started)) {
      make('startup', container.startupProbe as ProbeSpec, (ok, message) => {
        if (c.running !== inst) return;
        if (!ok) {
          void this.stopContainer(c, this.graceSeconds(), `Startup probe failed: ${message}`);
          return;
        }
        c.started = true;
        for (const p of live.probers.filter((x) => x.kind === 'startup')) p.stop();
        this.changed();
        if (c.sidecar) this.kick();
        startAfterStartup();
      });
    } else {
      c.started = true;
      if (c.sidecar) this.kick();
      startAfterStartup();
    }
  }

  probeContext(c: ContainerRecord, inst: Instance): ProbeContext {
    return {
      container: this.spec(c.name)!,
      podIP: this.podIP(),
      exec: async (command, timeoutMs) => {
        const child = this.spawnExec(c, inst, command, false);
        if (!child) return 126;
        child.stdout?.resume();
        child.stderr?.resume();
        return new Promise<number>((resolve) => {
          const timer = setTimeout(() => {
            for (const p of descendantsOf(child.pid ?? 0)) sendSignal(p.pid, 'SIGKILL');
            resolve(-1);
          }, timeoutMs);
          child.once('close', (code) => {
            clearTimeout(timer);
            resolve(code ?? 137);
          });
          child.once('error', () => {
            clearTimeout(timer);
            resolve(126);
          });
        });
      },
    };
  }

  /** Spawns `command` inside the running instance (the same mounts, user, capabilities and env). */
  spawnExec(c: ContainerRecord, inst: Instance, command: string[], tty: boolean): ChildProcess | undefined {
    const launch = readJson<ContainerLaunch>(inst.launchFile);
    if (!launch || !inst.childPid || !isAlive(inst.childPid, inst.childStart)) return undefined;
    const tools = this.deps.config.tools as LaunchTools;
    const argv = execCommand(tools, { ...launch, env: tty && !launch.env.some((e) => e.startsWith('TERM=')) ? [...launch.env, 'TERM=xterm'] : launch.env }, inst.childPid, command, tty);
    return spawn(argv[0]!, argv.slice(1), { env: launchEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  }

  private async stopSidecars(): Promise<void> {
    await Promise.all(this.state.containers.filter((c) => c.sidecar && c.running).map((c) => this.stopContainer(c, this.graceSeconds(), 'pod finished')));
  }

  private async failPod(reason: string | undefined, message: string | undefined): Promise<void> {
    await Promise.all(this.state.containers.filter((c) => c.running).map((c) => this.stopContainer(c, this.graceSeconds(), reason ?? 'pod failed')));
    this.state.terminal = { phase: 'Failed', ...(reason && { reason }), ...(message && { message }), at: Date.now() };
    for (const c of this.state.containers) if (!c.running && !c.terminated && c.waiting) c.waiting = { reason: c.waiting.reason };
    this.changed();
  }

  // --- Updates and deletion.

  async update(resolved: ResolvedPod): Promise<void> {
    const before = this.state.pod;
    this.resolved = resolved;
    this.state.pod = resolved.pod;
    if (this.state.sandbox) await writeVolumes(this.dir, resolved.volumes);
    // A changed image restarts that container with the new image, as the kubelet does.
    for (const c of this.state.containers) {
      const old = (c.init ? before.spec?.initContainers : before.spec?.containers)?.find((x) => x.name === c.name);
      const now = this.spec(c.name);
      if (old && now && old.image !== now.image) {
        c.imageID = undefined;
        c.backoffMs = 0;
        if (c.running) await this.stopContainer(c, this.graceSeconds(), 'image changed');
      }
    }
    this.changed();
    this.kick();
  }

  /** Stops everything (honouring the grace period), removes the sandbox and the pod's files. */
  async delete(pod: Pod | undefined, retireLogsTo?: string): Promise<void> {
    if (this.gone) return;
    this.deleting = true;
    clearTimeout(this.timer);
    this.abort.abort(new VkError('VK_PROVIDER', 'pod deleted'));
    await this.chain;
    const grace = this.graceSeconds(pod);
    await Promise.all(this.state.containers.filter((c) => c.running).map((c) => this.stopContainer(c, grace, 'pod deleted')));
    await this.teardownSandbox();
    if (this.state.cgroup && !(await removeCgroup(this.state.cgroup))) this.log.warn({ cgroup: this.state.cgroup.memory }, 'could not remove the pod\'s cgroup');
    for (const live of this.live.values()) live.watcher?.close();
    for (const c of this.state.containers) {
      if (!c.terminated && !c.running) c.waiting = c.waiting && { reason: c.waiting.reason };
    }
    if (!this.state.terminal) {
      const failed = this.state.containers.some((c) => !c.init && (c.terminated?.exitCode ?? 0) !== 0);
      this.state.terminal = { phase: failed ? 'Failed' : 'Succeeded', at: Date.now() };
    }
    this.deps.changed(this);
    this.gone = true;
    if (retireLogsTo) {
      // A finished pod is released but its API object stays: keep its logs readable for a while.
      try {
        await mkdir(retireLogsTo, { recursive: true });
        await rename(path.join(this.dir, 'logs'), path.join(retireLogsTo, 'logs'));
        const containers = Object.fromEntries(this.state.containers.map((c) => [c.name, { logAttempt: c.logAttempt, lastAttempt: c.lastAttempt }]));
        const pod = { ...this.state.pod, status: this.status() };
        await writeFile(path.join(retireLogsTo, 'meta.json'), JSON.stringify({ namespace: this.state.namespace, name: this.state.name, uid: this.uid, at: Date.now(), containers, pod }));
      } catch (err) {
        this.log.debug({ err: errorMessage(err) }, 'no logs kept for the finished pod');
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Lets go of the pod's processes without stopping them (the provider is closing). */
  detach(): void {
    this.gone = true;
    clearTimeout(this.timer);
    this.abort.abort(new VkError('VK_PROVIDER', 'provider closed'));
    for (const live of this.live.values()) {
      for (const p of live.probers) p.stop();
      live.watcher?.close();
    }
  }

  /** Looks for instances that ended while nobody watched (adopted shims are not our children). */
  poll(): void {
    for (const c of this.state.containers) {
      const inst = c.running;
      if (inst && !isAlive(inst.shimPid, inst.shimStart) && !this.live.get(c.name)?.stopping) this.collectExit(c, inst);
    }
  }

  // --- Status.

  /** The pod's address: its own, or the node's with hostNetwork. */
  podIP(): string | undefined {
    if (this.state.pod.spec?.hostNetwork) return this.state.sandbox ? this.deps.hostIP : undefined;
    return this.state.sandbox?.network?.podIP;
  }

  phase(): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
    if (this.state.terminal) return this.state.terminal.phase;
    if (!this.state.initDone) return 'Pending';
    const apps = this.state.containers.filter((c) => !c.init);
    if (apps.some((c) => c.running || c.terminated)) return 'Running';
    return 'Pending';
  }

  status(): PodStatus {
    const phase = this.phase();
    const podIP = this.podIP();
    const inits = this.state.containers.filter((c) => c.init);
    const apps = this.state.containers.filter((c) => !c.init);
    const status: PodStatus = {
      phase,
      hostIP: this.deps.hostIP,
      hostIPs: [{ ip: this.deps.hostIP }],
      ...(podIP && { podIP, podIPs: [{ ip: podIP }] }),
      startTime: rfc3339(this.state.createdAt),
      ...(inits.length > 0 && { initContainerStatuses: inits.map((c) => this.containerStatus(c)) }),
      containerStatuses: apps.map((c) => this.containerStatus(c)),
    };
    const conditions: PodCondition[] = [];
    const cond = (type: string, ok: boolean, reason?: string, message?: string): PodCondition => ({ type, status: ok ? 'True' : 'False', ...(reason && { reason }), ...(message && { message }) });
    conditions.push(cond('PodReadyToStartContainers', this.state.sandbox !== undefined && !this.state.terminal));
    const initDone = this.state.initDone;
    conditions.push(initDone ? cond('Initialized', true) : cond('Initialized', false, 'ContainersNotInitialized', `containers with incomplete status: [${inits.filter((c) => !c.sidecar && c.terminated?.exitCode !== 0).map((c) => c.name).join(' ')}]`));
    const ready = phase === 'Running' && apps.every((c) => c.ready && c.running);
    const notReady = apps.filter((c) => !(c.ready && c.running)).map((c) => c.name);
    const readyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
    conditions.push(ready ? cond('ContainersReady', true) : cond('ContainersReady', false, readyReason, `containers with unready status: [${notReady.join(' ')}]`));
    conditions.push(ready ? cond('Ready', true) : cond('Ready', false, readyReason, `containers with unready status: [${notReady.join(' ')}]`));
    status.conditions = conditions;
    if (this.state.terminal?.reason) {
      status.reason = this.state.terminal.reason;
      if (this.state.terminal.message) status.message = this.state.terminal.message;
    }
    return status;
  }

  private containerStatus(c: ContainerRecord): ContainerStatus {
    const spec = this.spec(c.name);
    const base = { name: c.name, image: spec?.image ?? '', imageID: c.imageID ?? '', restartCount: c.restartCount, ready: c.ready && c.running !== undefined, started: c.started && c.running !== undefined };
    const term = (t: Terminated) => ({
      terminated: {
        exitCode: t.exitCode,
        ...(t.signal !== undefined && t.signal > 0 && { signal: t.signal }),
        reason: t.reason,
        ...(t.message !== undefined && { message: t.message }),
        ...(t.startedAt && { startedAt: t.startedAt }),
        finishedAt: t.finishedAt,
        ...(t.containerID && { containerID: t.containerID }),
      },
    });
    const lastState = c.last ? term(c.last) : {};
    if (c.running) {
      return { ...base, containerID: c.running.containerID, state: { running: { startedAt: toSeconds(c.running.startedAt) } }, lastState };
    }
    const restarting = c.waiting && c.terminated;
    if (restarting || (c.waiting && !c.terminated)) {
      // Waiting to (re)start: the last run, if any, is lastState.
      const last = c.terminated ? term(c.terminated) : lastState;
      return { ...base, ...(c.terminated?.containerID && { containerID: c.terminated.containerID }), state: { waiting: { reason: c.waiting!.reason, ...(c.waiting!.message && { message: c.waiting!.message }) } }, lastState: last };
    }
    if (c.terminated) return { ...base, containerID: c.terminated.containerID, state: term(c.terminated), lastState };
    return { ...base, state: { waiting: { reason: 'ContainerCreating' } }, lastState };
  }
}

function toSeconds(time: string): string {
  return time.replace(/\.\d+Z$/, 'Z');
}

function readJson<T>(file: string): T | undefined {
  try {
    if (!statSync(file).isFile()) return undefined;
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export async function readHostResolvConf(): Promise<string> {
  try {
    return await readFile('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}
