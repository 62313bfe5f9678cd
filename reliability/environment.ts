// What a chaos run breaks: a local control plane of its own (so kube-apiserver can be killed),
// the fault proxy in front of it, and `vk run --provider mock` as a child process (so it can be
// killed with SIGKILL), its backend a state file that outlives it, with a creation log and a
// faults file the injector writes.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { KubeClient } from '../src/kube/client.ts';
import { freePort } from '../test/harness/net.ts';
import { localKubeletApiArgs } from '../test/harness/vk-args.ts';
import { FaultProxy } from './fault-proxy.ts';

const REPO = path.resolve(import.meta.dirname, '..');

export interface ChaosEnvironmentOptions {
  dir: string;
  nodeName: string;
  progress: (line: string) => void;
}

export class ChaosEnvironment {
  readonly dir: string;
  readonly nodeName: string;
  readonly stateFile: string;
  readonly createLog: string;
  readonly faultsFile: string;
  readonly proxy: FaultProxy;
  /** The workload's and checker's client: straight to kube-apiserver, not through the proxy. */
  readonly admin: KubeClient;
  private cluster: LocalCluster;
  private readonly apiserverPort: number;
  private readonly progress: (line: string) => void;
  private vk: ChildProcess | undefined;
  private vkLog: number | undefined;
  private vkRestarts = 0;
  private clockOffsetMs = 0;

  private constructor(options: ChaosEnvironmentOptions, cluster: LocalCluster, apiserverPort: number, proxy: FaultProxy, admin: KubeClient) {
    this.dir = options.dir;
    this.nodeName = options.nodeName;
    this.progress = options.progress;
    this.cluster = cluster;
    this.apiserverPort = apiserverPort;
    this.proxy = proxy;
    this.admin = admin;
    this.stateFile = path.join(this.dir, 'backend.json');
    this.createLog = path.join(this.dir, 'creates.jsonl');
    this.faultsFile = path.join(this.dir, 'faults.json');
  }

  static async start(options: ChaosEnvironmentOptions): Promise<ChaosEnvironment> {
    const apiserverPort = await freePort();
    options.progress('starting the control plane');
    const cluster = await startLocalCluster({ dir: path.join(options.dir, 'cluster'), apiserverPort, progress: () => {} });
    const proxy = await FaultProxy.start('127.0.0.1', apiserverPort);
    const admin = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
    const env = new ChaosEnvironment(options, cluster, apiserverPort, proxy, admin);
    env.writeProxyKubeconfig();
    writeFileSync(
      path.join(env.dir, 'mock.json'),
      JSON.stringify({ stateFile: env.stateFile, createLog: env.createLog, faultsFile: env.faultsFile, logIntervalMs: 0 }),
    );
    env.setProviderFaults({});
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
      'mock',
      '--provider-config',
      path.join(this.dir, 'mock.json'),
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
   * kill -9 of kube-apiserver. The control plane's supervisor then stops the rest (it does not
   * restart components), so the whole control plane is started again on the same data and port.
   */
  async killApiserver(): Promise<void> {
    const supervisor = this.cluster.info.pid;
    const children = childPids(supervisor);
    const pid = children.find((p) => cmdline(p).includes(' kube-apiserver '));
    if (pid === undefined)
      throw new Error(
        `chaos: no kube-apiserver among the control plane's processes (supervisor ${supervisor}, children ${children.map((p) => `${p}: ${cmdline(p).slice(0, 80)}`).join('; ') || 'none'})`,
      );
    process.kill(pid, 'SIGKILL');
    await this.cluster.exited;
    this.progress(`  kube-apiserver (pid ${pid}) killed; restarting the control plane`);
    this.cluster = await startLocalCluster({ dir: path.join(this.dir, 'cluster'), apiserverPort: this.apiserverPort, progress: () => {} });
  }

  /** Rewrites the mock's faults file (see src/providers/mock/fault-file.ts). */
  setProviderFaults(faults: { seed?: number; failRate?: number; hangRate?: number; hangMs?: number; clockOffsetMs?: number }): void {
    // A clock jump stays until the next one: other faults keep the provider's current offset.
    if (faults.clockOffsetMs !== undefined) this.clockOffsetMs = faults.clockOffsetMs;
    writeFileSync(this.faultsFile, JSON.stringify({ ...faults, clockOffsetMs: this.clockOffsetMs }));
  }

  /** The UIDs of the creation log, in order. */
  createdUids(): string[] {
    let text: string;
    try {
      text = readFileSync(this.createLog, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { uid: string }).uid);
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
  }

  private writeProxyKubeconfig(): void {
    const config = parse(readFileSync(this.cluster.info.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    for (const c of config.clusters) c.cluster.server = `https://127.0.0.1:${this.proxy.port}`;
    writeFileSync(path.join(this.dir, 'proxy.kubeconfig'), stringify(config));
  }
}

function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the 2nd field after the ")" that ends the command name.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}
