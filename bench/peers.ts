// The peers the benchmark runs, each as its own process(es) with its own client identity:
//   ours      this repository's `vk run` (one node, or many nodes in one process from a `nodes` list)
//   upstream  the upstream Go virtual-kubelet's cmd/virtual-kubelet with its built-in mock provider;
//             one process per node, which is its model
//   kwok      kwok with kwokctl's default stages; one process for all nodes, which is its model
//   ceiling   bench/go/ceiling: only writes the status updates, as fast as kube-apiserver accepts
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { KubeClient } from '../src/kube/client.ts';
import { VK_VERSION } from '../src/version.ts';
import type { BuiltBinary } from './build.ts';
import { freePorts } from '../test/harness/net.ts';
import { localKubeletApiArgs } from '../test/harness/vk-args.ts';

export const REPO_DIR = path.resolve(import.meta.dirname, '..');

export interface PeerContext {
  /** This run's scratch directory (logs, configs). */
  dir: string;
  /** The peer's own kubeconfig (its own client certificate, user bench-<peer>). */
  kubeconfig: string;
  /** Serving certificate and key for peers that need one (stem: .crt, .key). */
  servingCert: string;
  nodes: string[];
  podCapacity: number;
  admin: KubeClient;
  binaries: Record<string, BuiltBinary>;
}

export interface PeerProcess {
  pids: number[];
  /** Rejects when a process exits before stop() was called. */
  failed: Promise<never>;
  stop(): Promise<void>;
}

export interface Peer {
  name: string;
  version: string;
  /** How it runs, for the report. */
  describe(nodes: number): string;
  start(ctx: PeerContext): Promise<PeerProcess>;
  /** Peak memory it is expected to need for `nodes` nodes, MiB, where that grows with the nodes (one process per node). */
  expectedMiB?(nodes: number): number;
  /** Events the peer dropped so far, when it says (read while it still runs). */
  eventsDropped?(ctx: PeerContext): Promise<number | undefined>;
}

/** Starts processes with their output in <dir>/<log>; stop() sends SIGTERM, then SIGKILL after 10 s. */
function processes(children: { child: ChildProcess; name: string }[]): PeerProcess {
  let stopping = false;
  const exits = children.map(({ child, name }) => ({
    name,
    child,
    exited: new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`${name} exited (code ${code}, signal ${signal})`))),
  }));
  const failed = Promise.race(exits.map((e) => e.exited)).then((reason) => {
    if (stopping) return new Promise<never>(() => {});
    throw new Error(reason);
  });
  failed.catch(() => {});
  return {
    pids: children.map(({ child }) => child.pid ?? 0),
    failed,
    async stop() {
      stopping = true;
      for (const { child } of exits) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => exits.forEach(({ child }) => child.kill('SIGKILL')), 10_000);
      await Promise.all(exits.map((e) => e.exited));
      clearTimeout(timer);
    },
  };
}

function spawnLogged(
  ctx: PeerContext,
  logName: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = REPO_DIR,
): { child: ChildProcess; name: string } {
  const fd = openSync(path.join(ctx.dir, logName), 'a');
  const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return { child, name: logName.replace(/\.log$/, '') };
}

/** A counter's value from a Prometheus text exposition (summed over its series). */
function counterValue(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+([0-9.e+-]+)$`, 'gm'))) sum = (sum ?? 0) + Number(m[1]);
  return sum;
}

/** vk_events_dropped_total from the first node's kubelet API (/metrics, auth none, self-signed). */
async function oursEventsDropped(ctx: PeerContext): Promise<number | undefined> {
  const node = await ctx.admin.get<{ status?: { daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } } }>(`/api/v1/nodes/${ctx.nodes[0]}`);
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
  if (!port) return undefined;
  const text = await new Promise<string>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/metrics', rejectUnauthorized: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`GET /metrics: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
  });
  return counterValue(text, 'vk_events_dropped_total');
}

/**
 * `vk run` from a checkout: this repository (`ours`), or another one (`baseline`: BENCH_BASELINE_DIR, e.g. an
 * earlier commit unpacked with `git archive`, so before and after run in one invocation).
 */
export function oursFrom(name: string, repoDir: string, version: string): Peer {
  return {
    name,
    version,
    describe: (nodes) =>
      (nodes === 1
        ? '`vk run` (Node, mock provider: no delays, logIntervalMs 0), kubelet API on 127.0.0.1 (auth none, self-signed)'
        : `\`vk run\` with a ${nodes}-node \`nodes\` list in one Node process (mock provider, one shared API client, a kubelet API per node on 127.0.0.1, auth none, self-signed)`) +
      (repoDir === REPO_DIR ? '' : `; from ${repoDir}`),
    eventsDropped: oursEventsDropped,
    start: (ctx) => Promise.resolve(startOurs(ctx, name, repoDir)),
  };
}

export const ours: Peer = oursFrom('ours', REPO_DIR, VK_VERSION);

function startOurs(ctx: PeerContext, name: string, repoDir: string): PeerProcess {
  const providerConfig = path.join(ctx.dir, 'mock.json');
  writeFileSync(providerConfig, JSON.stringify({ capacity: { pods: String(ctx.podCapacity) }, logIntervalMs: 0 }));
  const node = process.execPath;
  // BENCH_OURS_NODE_ARGS: extra Node flags for ours only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_OURS_NODE_ARGS ?? '').split(' ').filter(Boolean);
  // Many nodes: one `vk run` process serving the config file's `nodes` list (one API client).
  const nodesConfig = path.join(ctx.dir, 'nodes.json');
  writeFileSync(nodesConfig, JSON.stringify({ nodes: ctx.nodes.map((nodeName) => ({ nodeName })) }));
  return processes([
    spawnLogged(
      ctx,
      `${name}.log`,
      node,
      [
        ...nodeArgs,
        'bin/vk.js',
        'run',
        '--kubeconfig',
        ctx.kubeconfig,
        ...(ctx.nodes.length === 1 ? ['--node-name', ctx.nodes[0]!] : ['--config', nodesConfig]),
        ...localKubeletApiArgs(),
        '--provider',
        'mock',
        '--provider-config',
        providerConfig,
        '--log-level',
        'warn',
        // BENCH_OURS_ARGS: extra `vk run` flags for experiments, e.g. "--pod-workers 50".
        ...(process.env.BENCH_OURS_ARGS ?? '').split(' ').filter(Boolean),
      ],
      {},
      repoDir,
    ),
  ]);
}

/** Peak RSS of one upstream process with its node's pods, MiB (6,593 MiB for 100 processes in direct-100x100). */
const UPSTREAM_MIB_PER_PROCESS = 66;

export function upstream(binary: BuiltBinary): Peer {
  return {
    name: 'upstream',
    version: binary.version,
    describe: (nodes) =>
      `upstream virtual-kubelet ${binary.version}: its node/nodeutil library with cmd/virtual-kubelet's settings (10 pod sync workers, 1 min resync, kubelet API with TLS, no auth) ` +
      `and a locked copy of the built-in mock's behaviour (bench/go/upstream-vk; the cmd's own mock crashes with concurrent map writes under load); client without rate limit` +
      (nodes > 1 ? `; one process per node (${nodes} processes), its model` : ''),
    // Measured: 100 processes peaked at 6,593 MiB in all (direct-100x100, bench/results/latest.json, 2026-11-23).
    expectedMiB: (nodes) => nodes * UPSTREAM_MIB_PER_PROCESS,
    async start(ctx) {
      const children = [];
      const ports = await freePorts(ctx.nodes.length);
      for (const [i, node] of ctx.nodes.entries()) {
        const port = ports[i]!;
        children.push(
          spawnLogged(ctx, ctx.nodes.length === 1 ? 'upstream.log' : `upstream-${i}.log`, binary.binary, [
            '--kubeconfig',
            ctx.kubeconfig,
            '--nodename',
            node,
            '--pod-capacity',
            String(ctx.podCapacity),
            '--listen',
            `127.0.0.1:${port}`,
            '--tls-cert-file',
            `${ctx.servingCert}.crt`,
            '--tls-key-file',
            `${ctx.servingCert}.key`,
          ]),
        );
      }
      return processes(children);
    },
  };
}

export function kwok(binary: BuiltBinary): Peer {
  return {
    name: 'kwok',
    version: binary.version,
    describe: (nodes) =>
      `kwok ${binary.version} with kwokctl's default stages (pod-ready, pod-delete, node heartbeat with lease), one process for ${nodes === 1 ? 'the node' : `all ${nodes} nodes`}; the bench creates the Node objects`,
    async start(ctx) {
      // kwok manages Nodes someone else created: register them as kwokctl does.
      for (const node of ctx.nodes) {
        const capacity = { cpu: '20', memory: '100Gi', pods: String(ctx.podCapacity), 'ephemeral-storage': '1Ti' };
        await ctx.admin.create('/api/v1/nodes', {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: {
            name: node,
            annotations: { 'kwok.x-k8s.io/node': 'fake' },
            labels: { type: 'kwok', 'kubernetes.io/hostname': node, 'kubernetes.io/os': 'linux' },
          },
          spec: { taints: [{ key: 'kwok.x-k8s.io/node', value: 'fake', effect: 'NoSchedule' }] },
          status: { capacity, allocatable: capacity },
        });
      }
      return processes([
        spawnLogged(ctx, 'kwok.log', binary.binary, [
          '--kubeconfig',
          ctx.kubeconfig,
          '--config',
          binary.config!,
          '--manage-nodes-with-annotation-selector',
          'kwok.x-k8s.io/node=fake',
          '--node-lease-duration-seconds',
          '40',
          '--cidr',
          '10.0.0.1/16',
          '--node-ip',
          '127.0.0.1',
          '--v',
          'WARN',
        ]),
      ]);
    },
  };
}

export function ceiling(binary: BuiltBinary): Peer {
  return {
    name: 'ceiling',
    version: binary.version,
    describe: () =>
      "bench/go/ceiling: client-go informer per node + 32 workers that only merge-patch pods/status to Running and delete deleted pods with grace 0, each node's Lease renewed every 10 s by a loop of its own; no rate limit, protobuf",
    async start(ctx) {
      return processes([
        spawnLogged(ctx, 'ceiling.log', binary.binary, [
          'ceiling',
          '--kubeconfig',
          ctx.kubeconfig,
          '--nodes',
          ctx.nodes.join(','),
          '--pod-capacity',
          String(ctx.podCapacity),
        ]),
      ]);
    },
  };
}
