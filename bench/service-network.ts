// Benchmark (not a test): TCP connections per second from one sandbox pod to another, directly to
// the server pod's IP and through a ClusterIP Service (the node's nftables DNAT), in the same run,
// interleaved, so the ratio service/direct shows what the Service path costs.
//
//   node bench/service-network.ts [--seconds 3] [--rounds 3] [--concurrency 8] [--out bench/results/service-network.json]
//
// Starts everything itself in a temp dir and removes it at the end: a local control plane (as
// `npm run up`), the test registry with busybox, and a VirtualKubelet with the SandboxProvider (its
// node network on) in this process. The two pods only sleep; the load runs in their network
// namespaces (nsenter --net into each pod's pause process), bench/service-network/load.ts as
// server in one and client in the other: connect, read a 3-byte reply, close. The Service's
// endpoint is the server pod (selector, targetPort 9000). Needs root, nftables and the sandbox's
// host packages plus docker-registry.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startLocalCluster } from '../src/cluster/local.ts';
import { KubeClient } from '../src/kube/client.ts';
import type { Pod } from '../src/kube/types.ts';
import { createLogger } from '../src/log.ts';
import { parseSandboxConfig } from '../src/providers/sandbox/config.ts';
import { checkHost, SandboxProvider } from '../src/providers/sandbox/sandbox-provider.ts';
import type { PodRecordState } from '../src/providers/sandbox/state.ts';
import { run } from '../src/util/command.ts';
import { VirtualKubelet } from '../src/virtual-kubelet.ts';
import { buildBusyboxImage } from '../test/fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../test/fixtures/registry/registry.ts';
import { FAST_TIMINGS } from '../test/harness/timings.ts';
import { waitFor } from '../test/harness/wait.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
    out: { type: 'string', default: 'bench/results/service-network.json' },
    'log-level': { type: 'string', default: 'warn' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: node bench/service-network.ts [--seconds 3] [--rounds 3] [--concurrency 8] [--out file]\n');
  process.exit(2);
}
const log = createLogger(values['log-level'] ?? 'warn');
const say = (line: string) => process.stderr.write(`[service-network] ${line}\n`);
const LOAD = path.join(import.meta.dirname, 'service-network/load.ts');
const NAMESPACE = 'service-network-bench';
const call = { signal: new AbortController().signal };

await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-service-bench-'));
const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
async function cleanup(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      say(`cleanup: ${(err as Error).message}`);
    }
  }
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

function inPodNetwork(pausePid: number, args: string[]): ChildProcess {
  return spawn('nsenter', [`--net=/proc/${pausePid}/ns/net`, '--', process.execPath, LOAD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

async function connectRate(pausePid: number, host: string, port: number): Promise<{ perSecond: number; errors: number }> {
  const child = inPodNetwork(pausePid, ['connect', host, String(port), String(seconds), String(concurrency)]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load client for ${host}:${port} exited ${code}`);
  const result = JSON.parse(out) as { connections: number; errors: number; seconds: number };
  return { perSecond: Math.round(result.connections / result.seconds), errors: result.errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const clusterDir = path.join(dir, 'cluster');
  mkdirSync(clusterDir);
  const cluster = await startLocalCluster({ dir: clusterDir, progress: (line) => log.debug({ line }, 'control plane') });
  cleanups.push(() => cluster.stop());
  const registry = await startTestRegistry();
  cleanups.push(() => registry.stop());
  const image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: 'bench' })).reference;
  const client = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
  cleanups.push(() => client.close());
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  await waitFor('the default service account', () =>
    client.get(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts/default`).then(
      () => true,
      () => false,
    ),
  );

  const nodeName = 'vk-bench-net';
  const dataDir = path.join(dir, 'data');
  const provider = await SandboxProvider.open({ dataDir, network: { egress: false } }, { nodeName, nodeIP: '127.0.0.1', log, kube: client });
  const vk = await VirtualKubelet.start(
    client,
    provider,
    { nodeName, nodeIP: '127.0.0.1', kubeletPort: 0, labels: {}, shutdownMode: 'delete', ...FAST_TIMINGS },
    log,
  );
  cleanups.push(async () => {
    for (const pod of await provider.listPods(call)) await provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
    await vk.stop();
  });

  const podSpec = {
    nodeName,
    automountServiceAccountToken: false,
    terminationGracePeriodSeconds: 1,
    tolerations: [{ operator: 'Exists' }],
    containers: [{ name: 'main', image, command: ['sleep', '3600'] }],
  };
  for (const name of ['server', 'client'])
    await client.create(`/api/v1/namespaces/${NAMESPACE}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } }, spec: podSpec });
  await client.create(`/api/v1/namespaces/${NAMESPACE}/services`, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'server' },
    spec: { selector: { app: 'server' }, ports: [{ port: 80, targetPort: 9000 }] },
  });
  const running = async (name: string) =>
    waitFor(`pod ${name} Ready`, async () => {
      const pod = await client.get<Pod>(`/api/v1/namespaces/${NAMESPACE}/pods/${name}`);
      return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? pod : undefined;
    });
  const [server, clientPod] = [await running('server'), await running('client')];
  const pausePid = (pod: Pod) =>
    (JSON.parse(readFileSync(path.join(dataDir, 'pods', pod.metadata!.uid!, 'pod.json'), 'utf8')) as PodRecordState).sandbox!.pause.pid;
  const serverProcess = inPodNetwork(pausePid(server), ['serve', '9000']);
  cleanups.push(() => serverProcess.kill('SIGKILL'));
  await new Promise<void>((resolve) => createInterface({ input: serverProcess.stdout! }).on('line', (l) => l === 'listening' && resolve()));
  const clusterIP = (await client.get<{ spec: { clusterIP: string } }>(`/api/v1/namespaces/${NAMESPACE}/services/server`)).spec.clusterIP;
  const podIP = server.status!.podIP!;
  // The client's namespace only (its pod's own): reuse ports in TIME_WAIT, use the whole port range.
  await run([
    'nsenter',
    `--net=/proc/${pausePid(clientPod)}/ns/net`,
    '--',
    'sh',
    '-c',
    'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse; echo "1024 65535" > /proc/sys/net/ipv4/ip_local_port_range',
  ]);
  // The Service is in the node's rules once a connection through it succeeds.
  await waitFor('the Service answers', async () => (await connectRate(pausePid(clientPod), clusterIP, 80).catch(() => ({ perSecond: 0 }))).perSecond > 0);

  const direct: number[] = [];
  const viaService: number[] = [];
  const loadBefore = os.loadavg();
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always runs on a warmer machine.
    const order = round % 2 === 0 ? (['direct', 'service'] as const) : (['service', 'direct'] as const);
    for (const path of order) {
      const r = path === 'direct' ? await connectRate(pausePid(clientPod), podIP, 9000) : await connectRate(pausePid(clientPod), clusterIP, 80);
      (path === 'direct' ? direct : viaService).push(r.perSecond);
      say(`round ${round + 1} ${path}: ${r.perSecond} connections/s${r.errors ? ` (${r.errors} errors)` : ''}`);
    }
  }
  const result = {
    benchmark: 'service-network',
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, loadBefore, loadAfter: os.loadavg(), kernel: os.release(), nft: (await run(['nft', '--version'])).trim() },
    settings: { seconds, rounds, concurrency },
    connectionsPerSecond: { direct, viaService, directMedian: median(direct), viaServiceMedian: median(viaService) },
    ratio: Math.round((median(viaService) / median(direct)) * 1000) / 1000,
  };
  mkdirSync(path.dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify(result, null, 2)}\n`);
  say(
    `direct ${result.connectionsPerSecond.directMedian}/s, through the Service ${result.connectionsPerSecond.viaServiceMedian}/s: ratio ${result.ratio} (written to ${values.out})`,
  );
} finally {
  await cleanup();
}
