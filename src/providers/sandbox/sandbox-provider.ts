// The sandbox provider: real pods on this machine, in Linux namespaces (see README "The sandbox
// provider"). This file maps the Provider interface onto SandboxPod (pod-runtime.ts): lookups,
// push notifications, adoption of the pods a previous process left running, and the kubelet
// API capabilities (logs, exec, attach, port-forward, stats). Resource limits: cgroups.ts, found
// once at start; the node's SandboxResourceLimits condition says what they enforce.
import { readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, type Duplex } from 'node:stream';
import { AbortedError, ConfigError, ContainerStateError, NotFoundError, PodRejectedError, ProviderUnavailableError, throwIfAborted } from '../../errors.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { KubeClient } from '../../kube/client.ts';
import { NodeNetwork } from '../../network/node-network.ts';
import { parseResolvConf } from '../../network/dns/resolv-conf.ts';
import {
  podKey,
  type CallOptions,
  type ContainerStats,
  type DeleteOptions,
  type ExecStreams,
  type LogOptions,
  type NodeConfig,
  type PodEventListener,
  type PodListener,
  type PodStats,
  type Provider,
  type ResolvedPod,
} from '../provider.ts';
import { PodNotifier } from '../support/notifier.ts';
import { PodEventReporter } from '../support/pod-events.ts';
import { detectCgroups, readUsage, releaseRoot, type Detection } from './cgroups.ts';
import { parseSandboxConfig, type SandboxConfig } from './config.ts';
import { readCriLog } from './cri-log.ts';
import { probeOverlay } from './overlay.ts';
import { run } from '../../util/command.ts';
import { Images } from './images.ts';
import { POD_LINKS, PodNetworks } from './network.ts';
import { prepareMonitor, readHostResolvConf, SandboxPod, type RuntimeDeps } from './pod-runtime.ts';
import { allStats, CLOCK_TICKS, descendantsOf, isAlive, type ProcStat } from './procfs.ts';
import { RetiredLogs } from './retired.ts';
import { appendDurably, podStartLine } from './start-log.ts';
import { killStrayPauses, markedPodProcesses } from './stray-pauses.ts';
import { loadStates, podDir, podsDir } from './state.ts';
import { volumeSource } from './volumes.ts';
import { attachToContainer, execInContainer, forwardPort } from './sessions.ts';
import { raceAbort } from '../../util/abort.ts';
import { cloneJson } from '../../util/clone-json.ts';

export interface SandboxProviderContext {
  nodeName: string;
  nodeIP: string;
  log: Logger;
  /** The cluster: with it (and network.services on), pods get ClusterIP Services and cluster DNS. */
  kube?: KubeClient;
  clusterDomain?: string;
  clusterDNS?: string[];
}

/**
 * The safety net for exits nobody reported: container starts and exits are pushed as they
 * happen (our monitors' exits, their exit files watched with inotify), this only catches what
 * slipped through (e.g. a monitor killed before it wrote anything, while we were not its parent).
 */
const POLL_MS = 2000;

/** The pods' Services, DNS and egress (src/network/), when the provider knows its cluster. */
async function startNodeNetwork(config: SandboxConfig, context: SandboxProviderContext): Promise<NodeNetwork | undefined> {
  if (!context.kube || !config.network.services) return undefined;
  return await NodeNetwork.start({
    kube: context.kube,
    log: context.log,
    nodeName: context.nodeName,
    podCIDR: config.podCIDR,
    podLinks: POD_LINKS,
    egress: { enabled: config.network.egress, ...(config.network.egressInterfaces && { interfaces: config.network.egressInterfaces }) },
    dns: {
      clusterDomain: context.clusterDomain ?? 'cluster.local',
      clusterDNS: context.clusterDNS ?? [],
      mode: config.network.dns,
      address: config.network.dnsAddress,
    },
    tools: { nft: config.tools.nft, ip: config.tools.ip, conntrack: config.tools.conntrack },
    stateDir: config.dataDir,
  });
}

/**
 * What the sandbox keeps of a ResolvedPod: its own copy of the pod (it saves and changes it), the
 * volumes and pull secrets, and the templates of what uses the pod's address, filled in when each
 * container starts (resolve/pod-ip.ts).
 */
function ownCopy(resolved: ResolvedPod): ResolvedPod {
  return {
    pod: cloneJson(resolved.pod),
    volumes: resolved.volumes,
    ...(resolved.pullSecrets && { pullSecrets: resolved.pullSecrets }),
    ...(resolved.podIPTemplates && { podIPTemplates: resolved.podIPTemplates }),
  };
}

/** Checks that the host tools the runtime needs are present; throws ConfigError naming the missing ones. */
export async function checkHost(config: SandboxConfig): Promise<void> {
  if (process.getuid?.() !== 0) throw new ConfigError('the sandbox provider needs root (it creates namespaces, veth pairs and mounts)');
  const t = config.tools;
  const checks: [string, string[]][] = [
    [t.bwrap, ['--version']],
    [t.nsenter, ['--version']],
    [t.unshare, ['--version']],
    [t.ip, ['-V']],
    [t.script, ['--version']],
    [t.busybox, ['true']],
    ...(config.network.services
      ? ([
          [t.nft, ['--version']],
          [t.conntrack, ['--version']],
        ] as [string, string[]][])
      : []),
  ];
  const missing: string[] = [];
  for (const [bin, args] of checks) {
    try {
      await run([bin, ...args], { timeoutMs: 5000 });
    } catch {
      missing.push(bin);
    }
  }
  try {
    await run(['sh', '-c', `command -v ${t.pause}`]);
  } catch {
    missing.push(t.pause);
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `the sandbox provider needs ${missing.join(', ')} (Debian: apt-get install bubblewrap catatonit busybox-static iproute2 util-linux nftables conntrack)`,
    );
  }
}

/** The host's PRETTY_NAME from os-release, as the kubelet reports its OS image. */
const HOST_OS_IMAGE = ((): string => {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const match = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync(file, 'utf8'));
      if (match?.[1]) return match[1];
    } catch {
      // Try the next location.
    }
  }
  return `${os.type()} ${os.release()}`;
})();

export class SandboxProvider implements Provider {
  readonly name = 'sandbox';
  /** Pods run on this host: a hostPath volume binds the host's path. */
  readonly volumeTypes = ['hostPath'] as const;
  private readonly config: SandboxConfig;
  private readonly log: Logger;
  private readonly hostIP: string;
  private readonly pods = new Map<string, SandboxPod>();
  private readonly notifier: PodNotifier<SandboxPod>;
  /** Deletions in progress: they finish even when the deletePod call that began them is aborted. */
  private readonly deletions = new Map<SandboxPod, Promise<void>>();
  private readonly deps: RuntimeDeps;
  private readonly images: Images;
  private readonly poller: ReturnType<typeof setInterval>;
  private readonly cpuSamples = new Map<string, { at: number; ns: number }>();
  private readonly retired: RetiredLogs;
  private closed = false;
  private readonly events: PodEventReporter;
  /** What the machine's cgroups allow (see cgroups.ts). */
  readonly cgroups: Detection;
  /** Services, cluster DNS and egress for the pods; undefined without a cluster or with network.services off. */
  readonly network: NodeNetwork | undefined;

  private constructor(
    config: SandboxConfig,
    context: SandboxProviderContext,
    images: Images,
    hostResolvConf: string,
    cgroups: Detection,
    network: NodeNetwork | undefined,
  ) {
    this.config = config;
    this.network = network;
    this.cgroups = cgroups;
    this.hostIP = context.nodeIP;
    this.log = context.log.child({ provider: 'sandbox', node: context.nodeName });
    this.images = images;
    this.retired = new RetiredLogs(path.join(config.dataDir, 'retired'));
    this.notifier = new PodNotifier((pod) => pod.render(), this.log);
    this.events = new PodEventReporter(this.log);
    this.deps = {
      config,
      images,
      networks: new PodNetworks(config.podCIDR, { ip: config.tools.ip, nsenter: config.tools.nsenter, busybox: config.tools.busybox }),
      log: this.log,
      hostIP: context.nodeIP,
      dns: {
        // The node network knows kube-dns and runs the node's own server; without it, only --cluster-dns.
        clusterDNS: () => network?.clusterNameservers() ?? context.clusterDNS ?? [],
        clusterDomain: context.clusterDomain ?? 'cluster.local',
        host: parseResolvConf(hostResolvConf),
      },
      events: this.events,
      ...(cgroups.cgroups && { cgroups: cgroups.cgroups }),
      changed: (pod) => this.notifier.markDirty(pod),
    };
    this.poller = setInterval(() => {
      for (const pod of this.pods.values()) pod.poll();
    }, POLL_MS);
    this.poller.unref();
  }

  static async open(input: unknown, context: SandboxProviderContext): Promise<SandboxProvider> {
    const config = parseSandboxConfig(input);
    await checkHost(config);
    await mkdir(podsDir(config.dataDir), { recursive: true });
    await mkdir(`${config.dataDir}/run`, { recursive: true });
    // Meanwhile, the container monitor is built when the cache lacks it (gcc, about a second).
    const prewarm = prepareMonitor(context.log);
    const rootfsMode = await resolveRootfsMode(config, context.log);
    const images = await Images.open({
      imageDir: config.imageDir,
      localImages: config.localImages,
      insecureRegistries: config.insecureRegistries,
      rootfsMode,
      spareDir: path.join(config.dataDir, 'spare-rootfs'),
    });
    const cgroups =
      config.cgroups === 'none'
        ? {
            reason: 'Disabled',
            message: 'CPU and memory limits are not enforced: cgroups are turned off in the provider config (cgroups: none); usage is read from /proc',
          }
        : detectCgroups({ versions: config.cgroups === 'v1' ? [1] : config.cgroups === 'v2' ? [2] : [2, 1] });
    const network = await startNodeNetwork(config, context);
    const provider = new SandboxProvider(config, context, images, await readHostResolvConf(), cgroups, network);
    provider.log.info({ cgroups: cgroups.reason, message: cgroups.message }, 'resource limits');
    await provider.restore();
    await prewarm;
    return provider;
  }

  /** Adopts the pods a previous provider process left in dataDir. */
  private async restore(): Promise<void> {
    let adopted = 0;
    const marked = markedPodProcesses(podsDir(this.config.dataDir));
    for (const entry of loadStates(this.config.dataDir)) {
      if (!entry.state) {
        this.log.warn({ dir: entry.dir, err: entry.error }, 'removing an unreadable pod directory');
        await rm(entry.dir, { recursive: true, force: true });
        continue;
      }
      const state = entry.state;
      // Volumes are on disk already; the core hands fresh ones on the next update.
      const pod = new SandboxPod(this.deps, entry.dir, state, {
        pod: state.pod,
        volumes: new Map(),
        ...(state.podIPTemplates && { podIPTemplates: state.podIPTemplates }),
      });
      const alive = pod.adopt();
      const stray = killStrayPauses(marked, entry.dir, pod.state.sandbox?.pause);
      if (stray.length > 0)
        this.log.info(
          { pod: pod.key, pids: stray },
          'killed pause processes the pod record does not name (started just before a restart, or a sandbox left half made)',
        );
      this.pods.set(pod.key, pod);
      adopted++;
      this.log.info({ pod: pod.key, uid: pod.uid, sandbox: alive ? 'running' : 'gone' }, 'adopted pod from the data directory');
      const deleting = pod.interruptedDeletion;
      // A kubelet does not start a terminating pod again: its deletion goes on where it stopped.
      if (deleting)
        void this.remove(pod, undefined, deleting.keepLogs).catch((err: unknown) =>
          this.log.warn({ pod: pod.key, err: String(err) }, 'resumed deletion failed'),
        );
      else pod.requestReconcile();
    }
    if (adopted > 0) this.log.info({ pods: adopted }, 'adopted pods');
  }

  // --- Lifecycle.

  async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    throwIfAborted(options.signal, 'sandbox: createPod');
    if (this.closed) throw new ProviderUnavailableError('sandbox: provider is closed');
    const key = podKey(resolved.pod);
    const uid = resolved.pod.metadata?.uid ?? '';
    const existing = this.pods.get(key);
    if (existing?.uid === uid) return;
    const dir = podDir(this.config.dataDir, uid);
    rejectUnmappable(dir, resolved);
    // An older incarnation goes first; an abort meanwhile leaves the new one uncreated (the old one's deletion goes on).
    if (existing) await abortable(this.remove(existing, undefined, false), options.signal, 'sandbox: createPod');
    if (this.pods.has(key)) return; // created by a concurrent call meanwhile
    this.retired.forget(resolved.pod.metadata?.namespace ?? '', resolved.pod.metadata?.name ?? '');
    const pod = SandboxPod.fresh(this.deps, dir, ownCopy(resolved));
    this.pods.set(key, pod);
    // On disk before createPod returns: a provider restarted after a kill -9 adopts the pod
    // instead of starting it a second time (and leaving the first start's processes behind).
    pod.persist();
    if (this.config.createLog) appendDurably(this.config.createLog, podStartLine(resolved.pod));
    this.notifier.markDirty(pod);
    pod.requestReconcile();
  }

  async updatePod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    throwIfAborted(options.signal, 'sandbox: updatePod');
    const pod = this.find(podKey(resolved.pod), resolved.pod.metadata?.uid);
    // The update goes on when the call is aborted (a container may be restarting with a new image).
    await abortable(pod.update(ownCopy(resolved)), options.signal, 'sandbox: updatePod');
  }

  /**
   * `deleted`: stops the pod with its grace period and removes everything. `finished`: the same,
   * but its logs and last status stay readable (getPod, listPods, logs) until the API object goes
   * (a later `deleted`) or the retention bound removes them.
   */
  async deletePod(apiPod: Pod, options: DeleteOptions): Promise<void> {
    throwIfAborted(options.signal, 'sandbox: deletePod');
    const key = podKey(apiPod);
    const retired = this.pods.has(key) ? undefined : this.retired.get(apiPod.metadata?.namespace ?? '', apiPod.metadata?.name ?? '');
    if (retired && (!apiPod.metadata?.uid || apiPod.metadata.uid === retired.uid)) {
      // Released already: another release changes nothing; a deletion ends the retention.
      if (options.reason === 'deleted') this.retired.forget(retired.namespace, retired.name);
      return;
    }
    const pod = this.find(key, apiPod.metadata?.uid);
    await abortable(this.remove(pod, apiPod, options.reason === 'finished'), options.signal, 'sandbox: deletePod');
  }

  /** Deletes the pod once, however many calls ask (and whether or not they wait for it). */
  private remove(pod: SandboxPod, apiPod: Pod | undefined, keepLogs: boolean): Promise<void> {
    let deletion = this.deletions.get(pod);
    if (!deletion) {
      deletion = (async () => {
        try {
          await pod.delete(apiPod, keepLogs ? this.retired.dirFor(pod.uid) : undefined);
          if (keepLogs) this.retired.load(pod.uid);
        } finally {
          if (this.pods.get(pod.key) === pod) this.pods.delete(pod.key);
          this.deletions.delete(pod);
        }
      })();
      this.deletions.set(pod, deletion);
    }
    return deletion;
  }

  async getPod(namespace: string, name: string, options: CallOptions): Promise<Pod | undefined> {
    throwIfAborted(options.signal, 'sandbox: getPod');
    const pod = this.pods.get(`${namespace}/${name}`);
    if (pod) return pod.render();
    const retired = this.retired.get(namespace, name);
    return retired && { ...retired.pod };
  }

  async getPodStatus(namespace: string, name: string, options: CallOptions): Promise<PodStatus | undefined> {
    return (await this.getPod(namespace, name, options))?.status;
  }

  async listPods(options: CallOptions): Promise<Pod[]> {
    throwIfAborted(options.signal, 'sandbox: listPods');
    const live = [...this.pods.values()].map((pod) => pod.render());
    const retired = this.retired.all().filter((r) => !this.pods.has(`${r.namespace}/${r.name}`));
    return [...live, ...retired.map((r) => ({ ...r.pod }))];
  }

  notifyPodEvents(listener: PodEventListener): void {
    this.events.addListener(listener);
  }

  notifyPods(listener: PodListener): void {
    this.notifier.addListener(listener);
  }

  nodeConfig(): NodeConfig {
    return {
      capacity: { ...this.config.capacity },
      allocatable: { ...this.config.capacity },
      labels: { ...this.config.labels },
      operatingSystem: 'linux',
      architecture: this.config.architecture,
      nodeInfo: {
        containerRuntimeVersion: 'sandbox://bubblewrap',
        operatingSystem: 'linux',
        architecture: this.config.architecture,
        // Pods run on this host's kernel, in sandboxes of its root file system.
        kernelVersion: os.release(),
        osImage: HOST_OS_IMAGE,
      },
      conditions: [
        {
          type: 'SandboxResourceLimits',
          status: this.cgroups.cgroups ? 'True' : 'False',
          reason: this.cgroups.reason,
          message: this.cgroups.message,
        },
      ],
    };
  }

  async ping(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.closed) throw new ProviderUnavailableError('sandbox: provider is closed');
  }

  // --- Kubelet API capabilities.

  async getContainerLogs(namespace: string, name: string, container: string, options: LogOptions): Promise<Readable> {
    const pod = this.pods.get(`${namespace}/${name}`);
    const deletion = pod && this.deletions.get(pod);
    if (pod?.isGone && deletion) {
      // Its logs are moving to the retired ones right now (a finished pod being released): read them there.
      await deletion.catch(() => undefined);
      return this.getContainerLogs(namespace, name, container, options);
    }
    if (!pod) {
      const retired = this.retired.get(namespace, name);
      const rc = retired?.containers[container];
      if (!retired) throw new NotFoundError(`pod "${name}" not found`);
      if (!rc) throw new NotFoundError(`container "${container}" in pod "${name}" is not valid`);
      const at = options.previous ? rc.lastAttempt : rc.logAttempt;
      if (at === undefined)
        throw options.previous
          ? ContainerStateError.noPrevious(name, container)
          : new ContainerStateError(`container "${container}" in pod "${name}" never ran`);
      return Readable.from(readCriLog(this.retired.logFile(retired, container, at), { ...options, follow: false, finished: () => true }), {
        objectMode: false,
      });
    }
    const c = pod.record(container);
    if (!c) throw new NotFoundError(`container "${container}" in pod "${name}" is not valid`);
    const attempt = options.previous ? c.lastAttempt : c.logAttempt;
    if (attempt === undefined) {
      if (options.previous) throw ContainerStateError.noPrevious(name, container);
      throw ContainerStateError.waiting(name, container, c.waiting?.reason);
    }
    const file = pod.logFile(container, attempt);
    const finished = () => pod.isDeleting || c.running?.attempt !== attempt || !this.pods.has(`${namespace}/${name}`);
    return Readable.from(readCriLog(file, { ...options, finished }), { objectMode: false });
  }

  private running(namespace: string, name: string, container: string) {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new NotFoundError(`pod "${name}" not found`);
    const c = pod.record(container);
    if (!c) throw new NotFoundError(`container "${container}" not found in pod "${name}"`);
    const inst = c.running;
    if (!inst) throw ContainerStateError.notRunning(name, container);
    return { pod, c, inst };
  }

  async runInContainer(namespace: string, name: string, container: string, command: string[], streams: ExecStreams): Promise<number> {
    const { pod, inst } = this.running(namespace, name, container);
    return execInContainer(pod, inst, name, container, command, streams, this.config.tools.stty);
  }

  async attachToContainer(namespace: string, name: string, container: string, streams: ExecStreams): Promise<void> {
    const { pod, c } = this.running(namespace, name, container);
    return attachToContainer(pod, c, name, container, streams);
  }

  async portForward(namespace: string, name: string, port: number, stream: Duplex): Promise<void> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod) throw new NotFoundError(`pod "${name}" not found`);
    return forwardPort(pod, name, port, stream, this.config.tools);
  }

  async getStats(): Promise<PodStats[]> {
    let all: ProcStat[] | undefined;
    const stats = () => (all ??= allStats());
    const now = Date.now();
    const out: PodStats[] = [];
    for (const pod of this.pods.values()) {
      const containers: ContainerStats[] = [];
      for (const c of pod.state.containers) {
        const inst = c.running;
        if (!inst?.childPid || !isAlive(inst.childPid, inst.childStart)) continue;
        // The container's cgroup when it has one (everything in it, exec sessions too), else its processes in /proc.
        const usage = inst.cgroup && readUsage(inst.cgroup);
        let cpuNs = usage?.cpuNs;
        let rss = usage?.memoryUsageBytes;
        let workingSet = usage?.memoryWorkingSetBytes;
        if (cpuNs === undefined || rss === undefined) {
          const procs = descendantsOf(inst.childPid, stats());
          cpuNs ??= procs.reduce((sum, p) => sum + p.cpuTicks, 0) * (1e9 / CLOCK_TICKS);
          rss ??= procs.reduce((sum, p) => sum + p.rssBytes, 0);
          workingSet ??= rss;
        }
        const key = inst.containerID;
        const prev = this.cpuSamples.get(key);
        this.cpuSamples.set(key, { at: now, ns: cpuNs });
        const rate = prev && now > prev.at ? Math.max(0, ((cpuNs - prev.ns) / (now - prev.at)) * 1e3) : undefined;
        containers.push({
          name: c.name,
          cpuUsageCoreNanoSeconds: Math.round(cpuNs),
          ...(rate !== undefined && { cpuUsageNanoCores: Math.round(rate) }),
          memoryWorkingSetBytes: workingSet ?? rss,
          memoryUsageBytes: rss,
        });
      }
      out.push({ namespace: pod.state.namespace, name: pod.state.name, uid: pod.uid, containers });
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    for (const pod of this.pods.values()) pod.detach();
    await this.images.close();
    await this.network?.stop();
    // The provider's root cgroup goes when no pod's cgroup is left in it (running pods stay, for adoption).
    if (this.cgroups.cgroups) releaseRoot(this.cgroups.cgroups.root);
  }

  // --- Internals.

  private find(key: string, uid: string | undefined): SandboxPod {
    const pod = this.pods.get(key);
    if (!pod) throw new NotFoundError(`sandbox: pod ${key} not found`);
    if (uid && uid !== pod.uid) throw new NotFoundError(`sandbox: pod ${key} with uid ${uid} not found (running uid ${pod.uid})`);
    return pod;
  }
}

/**
 * Rejects a pod with a volume mount the sandbox cannot provide (neither a volume the core
 * resolved nor a hostPath): it could never start here.
 */
function rejectUnmappable(dir: string, resolved: ResolvedPod): void {
  const spec = resolved.pod.spec;
  for (const container of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) {
    for (const mount of container.volumeMounts ?? []) {
      if (volumeSource(dir, resolved, mount.name) !== undefined) continue;
      throw new PodRejectedError('UnsupportedVolume', `volume "${mount.name}" of container "${container.name}" is not supported by the sandbox provider`);
    }
  }
}

/** Waits for `work` unless `signal` fires first (then rejects with AbortedError; the work goes on). */
function abortable<T>(work: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return raceAbort(work, signal, (reason) => new AbortedError(`${what}: aborted`, { cause: reason }));
}

/** The rootfsMode in effect: auto is overlay where a test mount works (overlay.ts), else copy. */
async function resolveRootfsMode(config: SandboxConfig, log: Logger): Promise<'overlay' | 'copy' | 'hardlink'> {
  if (config.rootfsMode === 'copy' || config.rootfsMode === 'hardlink') return config.rootfsMode;
  const problem = await probeOverlay(config.tools, podsDir(config.dataDir));
  if (problem && config.rootfsMode === 'overlay') throw new ConfigError(`rootfsMode: overlay: ${problem}`);
  if (problem) log.warn({ reason: problem }, 'container root filesystems are copies of the image (rootfsMode auto: overlayfs is not usable here)');
  return problem ? 'copy' : 'overlay';
}
