// What a chaos run breaks: a local control plane of its own (so kube-apiserver can be killed; its
// supervisor restarts it alone), the fault proxy in front of it, and `vk run` as a child process
// (so it can be killed with SIGKILL). With the mock, the backend is its state file (it outlives
// the process), with a creation log and a faults file the injector writes; with the sandbox, it
// is the pods on this machine (records, processes, cgroups) and the provider's start log.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { componentPids, processRuns } from '../src/cluster/component-pids.ts';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { KubeClient } from '../src/kube/client.ts';
import { freePort } from '../test/harness/net.ts';
import { localKubeletApiArgs } from '../test/harness/vk-args.ts';
import { waitFor } from '../test/harness/wait.ts';
import { buildBusyboxImage, buildImage } from '../test/fixtures/registry/image-builder.ts';
import { startTestRegistry, type TestRegistry } from '../test/fixtures/registry/registry.ts';
import { readMockState } from '../src/providers/mock/mock-provider.ts';
import { sandboxBackendPods } from '../src/providers/sandbox/backend-view.ts';
import { parseSandboxConfig } from '../src/providers/sandbox/config.ts';
import { removeLeftovers } from '../src/providers/sandbox/leftovers.ts';
import { checkHost } from '../src/providers/sandbox/sandbox-provider.ts';
import { readPodStarts } from '../src/providers/sandbox/start-log.ts';
import type { BackendPod } from './checker.ts';
import { FaultProxy } from './fault-proxy.ts';

const REPO = path.resolve(import.meta.dirname, '..');

export type ChaosProvider = 'mock' | 'sandbox';

export interface ChaosEnvironmentOptions {
  dir: string;
  nodeName: string;
  /** mock: its state file is the backend; sandbox: real pods on this machine (root). */
  provider: ChaosProvider;
  progress: (line: string) => void;
}

/** What a kill -9 of kube-apiserver came to: the supervisor restarted it alone. */
export interface ApiserverRestart {
  pid: number;
  newPid: number;
  /** From the kill until the new kube-apiserver answered readyz. */
  servingAfterMs: number;
  /** The supervisor (etcd runs inside it) was not restarted. */
  supervisorKept: boolean;
  /** The other components still on their pids from before the kill. */
  kept: string[];
}

export class ChaosEnvironment {
  readonly dir: string;
  readonly nodeName: string;
  readonly provider: ChaosProvider;
  readonly stateFile: string;
  readonly createLog: string;
  readonly faultsFile: string;
  /** The sandbox provider's data directory (its pods' records; processes and cgroups name it). */
  readonly sandboxDir: string;
  /** The image the workload's pods run: the sandbox's comes from a registry on loopback. */
  image = 'registry.invalid/chaos:1';
  private registry: TestRegistry | undefined;
  readonly proxy: FaultProxy;
  /** The workload's and checker's client: straight to kube-apiserver, not through the proxy. */
  readonly admin: KubeClient;
  private readonly cluster: LocalCluster;
  private readonly progress: (line: string) => void;
  private vk: ChildProcess | undefined;
  private vkLog: number | undefined;
  private vkRestarts = 0;
  private clockOffsetMs = 0;

  private constructor(options: ChaosEnvironmentOptions, cluster: LocalCluster, proxy: FaultProxy, admin: KubeClient) {
    this.dir = options.dir;
    this.nodeName = options.nodeName;
    this.progress = options.progress;
    this.cluster = cluster;
    this.proxy = proxy;
    this.admin = admin;
    this.stateFile = path.join(this.dir, 'backend.json');
    this.createLog = path.join(this.dir, 'creates.jsonl');
    this.faultsFile = path.join(this.dir, 'faults.json');
    this.provider = options.provider;
    this.sandboxDir = path.join(this.dir, 'sandbox');
  }

  static async start(options: ChaosEnvironmentOptions): Promise<ChaosEnvironment> {
    const apiserverPort = await freePort();
    options.progress('starting the control plane');
    const cluster = await startLocalCluster({ dir: path.join(options.dir, 'cluster'), apiserverPort, progress: () => {} });
    const proxy = await FaultProxy.start('127.0.0.1', apiserverPort);
    const admin = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
    const env = new ChaosEnvironment(options, cluster, proxy, admin);
    env.writeProxyKubeconfig();
    if (env.provider === 'sandbox') {
      await checkHost(parseSandboxConfig({ dataDir: env.sandboxDir }));
      env.registry = await startTestRegistry();
      env.image = (await env.registry.pushImage('library/busybox', await buildImage(await buildBusyboxImage()), { tag: 'chaos' })).reference;
      // No Services, DNS or egress rules: the churn needs none, and the machine keeps its nftables.
      writeFileSync(
        path.join(env.dir, 'provider.json'),
        JSON.stringify({ dataDir: env.sandboxDir, createLog: env.createLog, network: { services: false, egress: false } }),
      );
    } else {
      writeFileSync(
        path.join(env.dir, 'provider.json'),
        JSON.stringify({ stateFile: env.stateFile, createLog: env.createLog, faultsFile: env.faultsFile, logIntervalMs: 0 }),
      );
      env.setProviderFaults({});
    }
    await env.startVk();
    return env;
  }

  get vkPid(): number | undefined {
    return this.vk?.pid;
  }

  /** Starts `vk run` (again, after a kill): it adopts what the backend holds. */
  async startVk(): Promise<void> {
    this.vkLog ??= openSync(path.join(this.dir, 'vk.log'), 'a');
    const args = [
      'bin/vk.js',
      'run',
      '--kubeconfig',
      path.join(this.dir, 'proxy.kubeconfig'),
      '--node-name',
      this.nodeName,
      ...localKubeletApiArgs(),
      '--provider',
      this.provider,
      '--provider-config',
      path.join(this.dir, 'provider.json'),
      '--log-level',
      'info',
    ];
    this.vk = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', this.vkLog, this.vkLog] });
  }

  /** kill -9 of the virtual kubelet. */
  killVk(): void {
    this.vk?.kill('SIGKILL');
    this.vk = undefined;
    this.vkRestarts++;
  }

  /**
   * kill -9 of kube-apiserver alone: the control plane's supervisor starts it again (same data
   * and port) while etcd, kube-scheduler and kube-controller-manager go on. Returns once it serves
   * again (readyz), with what happened to the other processes.
   */
  async killApiserver(): Promise<ApiserverRestart> {
    const supervisor = this.cluster.info.pid;
    const before = componentPids(supervisor);
    const pid = before['kube-apiserver'];
    if (pid === undefined)
      throw new Error(`chaos: no kube-apiserver among the control plane's processes (supervisor ${supervisor}: ${JSON.stringify(before)})`);
    let stopped: string | undefined;
    void this.cluster.exited.then((reason) => (stopped = reason));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const newPid = await waitFor(
      () => `kube-apiserver serving again after its kill -9 (components: ${JSON.stringify(componentPids(supervisor))})`,
      async () => {
        if (stopped) throw new Error(`chaos: the control plane stopped after kube-apiserver was killed: ${stopped}`);
        const now = componentPids(supervisor)['kube-apiserver'];
        if (now === undefined || now === pid) return undefined;
        return (await this.admin.getText('/readyz')) === 'ok' ? now : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 200 },
    );
    const after = componentPids(supervisor);
    const kept = (['kube-scheduler', 'kube-controller-manager'] as const).filter((name) => before[name] !== undefined && after[name] === before[name]);
    this.progress(`  kube-apiserver (pid ${pid}) killed; pid ${newPid} serves again`);
    return { pid, newPid, servingAfterMs: Date.now() - killedAt, supervisorKept: processRuns(supervisor), kept };
  }

  /** Rewrites the mock's faults file (see src/providers/mock/fault-file.ts). */
  setProviderFaults(faults: { seed?: number; failRate?: number; hangRate?: number; hangMs?: number; clockOffsetMs?: number }): void {
    // A clock jump stays until the next one: other faults keep the provider's current offset.
    if (faults.clockOffsetMs !== undefined) this.clockOffsetMs = faults.clockOffsetMs;
    writeFileSync(this.faultsFile, JSON.stringify({ ...faults, clockOffsetMs: this.clockOffsetMs }));
  }

  /** The UIDs of the creation log (the mock's creations, the sandbox's starts), in order. */
  createdUids(): string[] {
    return readPodStarts(this.createLog).map((s) => s.uid);
  }

  /** The backend's pods now: the mock's state file, or the sandbox pods this machine holds (records, processes, cgroups). */
  backendPods(): BackendPod[] {
    if (this.provider === 'sandbox') return sandboxBackendPods(this.sandboxDir).map((p) => ({ uid: p.uid, key: `${p.namespace}/${p.name}`, phase: p.phase }));
    return readMockState(this.stateFile).pods.map((p) => ({ uid: p.uid, key: `${p.namespace}/${p.name}`, phase: p.phase }));
  }

  get restarts(): number {
    return this.vkRestarts;
  }

  async stop(): Promise<void> {
    const vk = this.vk;
    if (vk && vk.exitCode === null) {
      const exited = new Promise((resolve) => vk.once('exit', resolve));
      vk.kill('SIGTERM');
      const timer = setTimeout(() => vk.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.vkLog !== undefined) closeSync(this.vkLog);
    this.admin.close();
    await this.proxy.close();
    await this.cluster.stop();
    await this.registry?.stop();
    if (this.provider === 'sandbox') {
      // What the drain left (a failed run): no sandbox pod outlives the run.
      const left = await removeLeftovers(this.sandboxDir);
      if (left.pods.length > 0)
        this.progress(`removed ${left.pods.length} sandbox pods left on the machine${left.failed.length ? `; could not: ${left.failed.join('; ')}` : ''}`);
    }
  }

  private writeProxyKubeconfig(): void {
    const config = parse(readFileSync(this.cluster.info.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    for (const c of config.clusters) c.cluster.server = `https://127.0.0.1:${this.proxy.port}`;
    writeFileSync(path.join(this.dir, 'proxy.kubeconfig'), stringify(config));
  }
}
