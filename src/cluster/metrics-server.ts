// metrics-server (sigs.k8s.io/metrics-server, pinned in tools/metrics-server/go.mod) on this host:
// built once per module hash like the control plane, started next to it, and registered as the
// cluster's metrics.k8s.io so that `kubectl top` and the HorizontalPodAutoscaler work. It scrapes
// each node's kubelet API /metrics/resource at the node's InternalIP and published kubelet port,
// as user system:metrics-server (a client certificate from controlplane/pki.go), and checks the
// kubelets' serving certificates against the cluster CA (vk up approves its node's CSR).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VkError } from '../errors.ts';
import { cacheRoot } from './binary.ts';
import { goBuild, goToolchainVersion } from './go-build.ts';
import type { ClusterInfo } from './local.ts';
import { METRICS_SERVER_APISERVICE, metricsServerManifest } from './metrics-server-manifest.ts';

const MODULE_DIR = path.resolve(import.meta.dirname, '../../tools/metrics-server');
const PACKAGE = 'sigs.k8s.io/metrics-server/cmd/metrics-server';

/** The metrics-server version tools/metrics-server/go.mod pins. */
export function metricsServerVersion(): string {
  const goMod = readFileSync(path.join(MODULE_DIR, 'go.mod'), 'utf8');
  const match = /^\s*(?:require\s+)?sigs\.k8s\.io\/metrics-server (v\d+\.\d+\.\d+)(?:\s*\/\/ indirect)?\s*$/m.exec(goMod);
  if (!match?.[1]) throw new VkError('VK_CLUSTER', 'tools/metrics-server/go.mod does not pin sigs.k8s.io/metrics-server');
  return match[1];
}

/** Returns the cached metrics-server binary, building it first when go.mod, go.sum or Go changed. */
export async function ensureMetricsServerBinary(progress: (line: string) => void = () => {}): Promise<string> {
  const goVersion = goToolchainVersion('metrics-server');
  const version = metricsServerVersion();
  const hash = createHash('sha256').update(goVersion);
  for (const file of ['go.mod', 'go.sum']) hash.update(file).update(readFileSync(path.join(MODULE_DIR, file)));
  const dir = path.join(cacheRoot(), `metrics-server-${version}-${hash.digest('hex').slice(0, 16)}`);
  const binary = path.join(dir, 'metrics-server');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  // The version variables upstream's Makefile sets (metrics-server reports client-go's version info).
  const ldflags = `-s -w -X k8s.io/client-go/pkg/version.gitVersion=${version}`;
  await goBuild({ name: `metrics-server ${version}`, cwd: MODULE_DIR, pkg: PACKAGE, output: binary, ldflags, flags: ['-trimpath'], progress });
  return binary;
}

export interface MetricsServerOptions {
  info: ClusterInfo;
  /** The pinned kubectl (ClusterBinary.kubectl), for applying the manifest. */
  kubectl: string;
  /** Where metrics-server listens: a host address that is not loopback (an EndpointSlice refuses loopback). */
  address: string;
  /** How often it scrapes every node (metrics-server's --metric-resolution; CPU needs two scrapes). */
  resolutionSeconds?: number;
  progress?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface MetricsServer {
  version: string;
  endpoint: string;
  log: string;
  /** Resolves when the process has exited, with the reason when it was not asked to stop. */
  exited: Promise<string | undefined>;
  /** Stops the process; with unregister, also deletes the APIService (else discovery of metrics.k8s.io fails until the next start). */
  stop(options?: { unregister?: boolean }): Promise<void>;
}

async function freePortOn(address: string): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function runKubectl(kubectl: string, kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectl, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      err ? reject(new VkError('VK_CLUSTER', `kubectl ${args.join(' ')}: ${(stderr || err.message).trim()}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

function writeKubeconfig(file: string, info: ClusterInfo): void {
  const pki = (name: string) => path.join(info.pkiDir, name);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'vk-cluster', cluster: { server: info.server, 'certificate-authority': pki('ca.crt') } }],
      users: [{ name: 'metrics-server', user: { 'client-certificate': pki('metrics-server.crt'), 'client-key': pki('metrics-server.key') } }],
      contexts: [{ name: 'vk-cluster', context: { cluster: 'vk-cluster', user: 'metrics-server' } }],
      'current-context': 'vk-cluster',
    }),
    { mode: 0o600 },
  );
}

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

/** Builds (first time) and starts metrics-server, registers it, and waits until its APIService is Available. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { info, kubectl, address } = options;
  const progress = options.progress ?? (() => {});
  if (!net.isIPv4(address) || address.startsWith('127.')) {
    throw new VkError('VK_CLUSTER', `metrics-server needs a host address kube-apiserver reaches that is not loopback, not ${address}`);
  }
  const binary = await ensureMetricsServerBinary(progress);
  const version = metricsServerVersion();
  const stateDir = path.dirname(info.kubeconfig);
  const kubeconfig = path.join(stateDir, 'metrics-server.kubeconfig');
  writeKubeconfig(kubeconfig, info);
  const port = await freePortOn(address);
  const pki = (name: string) => path.join(info.pkiDir, name);
  const manifest = metricsServerManifest({ address, port, caBundlePem: readFileSync(pki('ca.crt'), 'utf8') });
  await runKubectl(kubectl, info.kubeconfig, ['apply', '-f', '-'], JSON.stringify(manifest));

  const log = path.join(info.logDir, 'metrics-server.log');
  const args = [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--bind-address=${address}`,
    `--secure-port=${port}`,
    `--tls-cert-file=${pki('metrics-server-serving.crt')}`,
    `--tls-private-key-file=${pki('metrics-server-serving.key')}`,
    // Virtual nodes' Hostname addresses do not resolve; their kubelet port is the one they publish.
    '--kubelet-preferred-address-types=InternalIP',
    '--kubelet-use-node-status-port',
    `--kubelet-certificate-authority=${pki('ca.crt')}`,
    `--metric-resolution=${options.resolutionSeconds ?? 15}s`,
    // Must be below the resolution (its default, 10 s, equals the shortest allowed resolution).
    '--kubelet-request-timeout=5s',
    '--profiling=false',
  ];
  const logFd = openSync(log, 'a');
  // setpriv --pdeathsig: metrics-server dies with this process even when it is killed with SIGKILL.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', binary, ...args], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let stopping = false;
  const exited = new Promise<string | undefined>((resolve) => {
    child.on('error', (err) => resolve(`metrics-server did not start: ${err.message}`));
    child.on('exit', (code, signal) => resolve(stopping ? undefined : `metrics-server exited (code ${code}, signal ${signal}); see ${log}`));
  });
  const stop = async (stopOptions: { unregister?: boolean } = {}) => {
    if (child.exitCode === null && child.signalCode === null) {
      stopping = true;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (stopOptions.unregister) await runKubectl(kubectl, info.kubeconfig, ['delete', 'apiservice', METRICS_SERVER_APISERVICE, '--ignore-not-found']);
  };
  progress(`metrics-server ${version} starting on https://${address}:${port} (log ${log})`);

  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  let last = 'no answer yet';
  let early: string | undefined;
  void exited.then((reason) => (early = reason));
  while (true) {
    if (early) throw new VkError('VK_CLUSTER', early);
    const out = await runKubectl(kubectl, info.kubeconfig, ['get', 'apiservice', METRICS_SERVER_APISERVICE, '-o', 'json']).catch((err: Error) => {
      last = err.message;
      return undefined;
    });
    const available =
      out === undefined ? undefined : (JSON.parse(out) as { status?: { conditions?: Condition[] } }).status?.conditions?.find((c) => c.type === 'Available');
    if (available?.status === 'True') break;
    if (available) last = `${available.reason}: ${available.message}`;
    if (Date.now() > deadline) {
      await stop();
      throw new VkError(
        'VK_TIMEOUT',
        `APIService ${METRICS_SERVER_APISERVICE} not Available after ${options.startTimeoutMs ?? 90_000} ms (${last}); see ${log}`,
      );
    }
    await sleep(500);
  }
  progress(`metrics-server ${version} serving metrics.k8s.io (kubectl top works once it has scraped twice, ~${2 * (options.resolutionSeconds ?? 15)}s)`);
  return { version, endpoint: `https://${address}:${port}`, log, exited, stop };
}
