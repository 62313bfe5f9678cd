// Runs `vk-cluster up`: etcd, kube-apiserver, kube-scheduler and kube-controller-manager on loopback,
// kube-apiserver also at an advertise address when one is given (see host-address.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { VkError } from '../errors.ts';
import { ensureClusterBinary, type ClusterBinary } from './binary.ts';

export interface ClusterInfo {
  version: string;
  server: string;
  /** Where pods reach kube-apiserver (the kubernetes Service's endpoint) at ports['kube-apiserver']; 127.0.0.1 when none was given. */
  advertiseAddress: string;
  kubeconfig: string;
  etcd: string;
  logDir: string;
  pkiDir: string;
  pid: number;
  ports: Record<string, number>;
  logs: Record<string, string>;
}

export interface LocalCluster extends ClusterBinary {
  info: ClusterInfo;
  /** Resolves when the control plane has exited, with the reason when it was not asked to stop. */
  exited: Promise<string | undefined>;
  stop(): Promise<void>;
}

export interface LocalClusterOptions {
  dir: string;
  apiserverPort?: number;
  /**
   * An address of this host (not the machine's external one: claimHostAddress gives one) where
   * kube-apiserver also answers, on the same port, and which the kubernetes Service's EndpointSlice
   * names. Without it kube-apiserver is on 127.0.0.1 only and the Service has no endpoint.
   */
  advertiseAddress?: string;
  progress?: (line: string) => void;
  startTimeoutMs?: number;
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const progress = options.progress ?? (() => {});
  const binary = await ensureClusterBinary(progress);
  const args = ['up', '--dir', options.dir, '--exit-with-stdin'];
  if (options.apiserverPort) args.push('--apiserver-port', String(options.apiserverPort));
  if (options.advertiseAddress) args.push('--advertise-address', options.advertiseAddress);
  // stdin stays open as a lifeline: if this process dies, the control plane shuts itself down.
  const child = spawn(binary.binary, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderrTail: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
    progress(line);
  });
  let stopping = false;
  const exited = new Promise<string | undefined>((resolve) => {
    child.on('exit', (code, signal) => resolve(stopping ? undefined : `vk-cluster exited (code ${code}, signal ${signal}): ${stderrTail.at(-1) ?? ''}`));
  });
  const infoPath = await waitForReady(child, exited, options.startTimeoutMs ?? 180_000);
  const info = JSON.parse(readFileSync(infoPath, 'utf8')) as ClusterInfo;
  return {
    ...binary,
    info,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitForReady(child: ChildProcess, exited: Promise<string | undefined>, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const ready = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('ready ')) resolve(line.slice('ready '.length));
    });
  });
  const failed = exited.then((reason) => {
    throw new VkError('VK_CLUSTER', reason ?? 'vk-cluster exited during start-up');
  });
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new VkError('VK_TIMEOUT', `the local control plane was not ready within ${timeoutMs / 1000}s`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([ready, failed, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
