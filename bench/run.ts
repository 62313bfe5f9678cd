// The benchmark suite: our virtual kubelet against the physical limit (the ceiling client) and the
// Go peers (upstream virtual-kubelet, kwok), each on a fresh local control plane, measured the
// same way. See README.md ("Benchmarks") and bench/README.md.
//
//   node bench/run.ts [--pods 1000,10000] [--nodes-x-pods 100x100] [--deployment-pods 1000]
//                     [--peers ours,upstream,kwok,ceiling] [--repeat 1] [--out bench/results] [--merge] [--smoke]
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { KubeClient } from '../src/kube/client.ts';
import { ensureBenchtool, ensureKwok, ensureUpstreamVk, goVersion, type BuiltBinary } from './build.ts';
import {
  countsBetween,
  dispatchedByUser,
  EventWatch,
  eventWrites,
  flowSchemas,
  percentile,
  perPod,
  PodWatch,
  readProcs,
  scrapeApiserver,
  systemBusySeconds,
  type ApiCounts,
} from './measure.ts';
import { ceiling, kwok, ours, oursFrom, REPO_DIR, upstream, type Peer, type PeerProcess } from './peers.ts';
import { VK_VERSION } from '../src/version.ts';
import { medianRound, renderMarkdown, renderSvg, type BenchResult, type PacedRound, type RunResult, type Scenario } from './report.ts';
import { waitFor } from '../test/harness/wait.ts';

const NAMESPACE = 'bench';
/** Names of the paced round's pods: <prefix>-<index>. */
const PACED_PREFIX = 'paced';
const ALL_PEERS = ['ours', 'baseline', 'upstream', 'kwok', 'ceiling'];
/** A one-process-per-node peer is not started when its expected memory is above this share of the machine's. */
const MEMORY_SHARE = 0.8;

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

const { values } = parseArgs({
  options: {
    pods: { type: 'string' },
    'nodes-x-pods': { type: 'string' },
    'deployment-pods': { type: 'string' },
    peers: { type: 'string' },
    out: { type: 'string' },
    merge: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
    smoke: { type: 'boolean', default: false },
    'loader-concurrency': { type: 'string', default: '16' },
    'paced-rate': { type: 'string', default: '100' },
    'paced-pods': { type: 'string' },
    'phase-timeout': { type: 'string' },
    'keep-dirs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`usage: npm run bench -- [options]
  --pods 1000,10000          pods bound to one node with spec.nodeName (default 1000,10000; smoke 50)
  --nodes-x-pods 100x100     many nodes in one run: nodes x pods per node (default 100x100; "" for none; smoke none)
  --deployment-pods 1000     one Deployment through the scheduler (default: the smallest --pods; "" for none)
  --peers ours,upstream,kwok,ceiling   (smoke: ours,ceiling); baseline: ours from BENCH_BASELINE_DIR (another checkout)
  --out bench/results        where latest.json/.md/.svg go (smoke: a temporary directory)
  --merge                    keep the runs already in <out>/latest.json that this invocation does not redo
  --repeat 1                 rounds of every peer per scenario, interleaved; the round with the median up rate is reported
  --loader-concurrency 16    pod create/delete requests in flight
  --paced-rate 100           the paced round's offered rate, pods/s: the same for every peer
  --paced-pods 1000          pods in the paced round after each direct run (at most the run's pods; smoke 50; 0 for none)
  --phase-timeout SECONDS    give up on a run whose up or down phase takes longer (default max(300, pods x 0.3))
`);
  process.exit(0);
}

const smoke = values.smoke;
const list = (s: string | undefined, fallback: string): string[] =>
  (s ?? fallback)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const podCounts = list(values.pods, smoke ? '50' : '1000,10000').map(Number);
const multi = list(values['nodes-x-pods'], smoke ? '' : '100x100').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s);
  if (!m) throw new Error(`--nodes-x-pods: expected NODESxPODS such as 100x100, got ${s}`);
  return { nodes: Number(m[1]), podsPerNode: Number(m[2]) };
});
const deploymentPods = list(values['deployment-pods'], smoke || podCounts.length === 0 ? '' : String(Math.min(...podCounts))).map(Number);
const peerNames = list(values.peers, smoke ? 'ours,ceiling' : ALL_PEERS.join(','));
for (const p of peerNames) if (!ALL_PEERS.includes(p)) throw new Error(`--peers: unknown peer ${p} (known: ${ALL_PEERS.join(', ')})`);
const outDir = path.resolve(values.out ?? (smoke ? mkdtempSync(path.join(os.tmpdir(), 'vk-bench-smoke-')) : path.join(REPO_DIR, 'bench/results')));
const loaderConcurrency = Number(values['loader-concurrency']);
const pacedRate = Number(values['paced-rate']);
const pacedPods = Number(values['paced-pods'] ?? (smoke ? '50' : '1000'));
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat: expected a whole number of rounds, at least 1, got ${values.repeat}`);
if (!(pacedRate > 0)) throw new Error(`--paced-rate: expected pods/s above 0, got ${values['paced-rate']}`);
if (!Number.isInteger(pacedPods) || pacedPods < 0) throw new Error(`--paced-pods: expected a whole number of pods, got ${values['paced-pods']}`);

const scenarios: Scenario[] = [
  ...podCounts.map((n): Scenario => ({ id: `direct-1x${n}`, kind: 'direct', nodes: 1, podsPerNode: n, pods: n })),
  ...deploymentPods.map((n): Scenario => ({ id: `deployment-1x${n}`, kind: 'deployment', nodes: 1, podsPerNode: n, pods: n })),
  ...multi.map(({ nodes, podsPerNode }): Scenario => ({ id: `direct-${nodes}x${podsPerNode}`, kind: 'direct', nodes, podsPerNode, pods: nodes * podsPerNode })),
];

// ------------------------------------------------------------------------------ builds

log(`building what the peers need (${peerNames.join(', ')}); cached under ~/.cache/virtual-kubelet-ts/bench/`);
const binaries: Record<string, BuiltBinary> = { benchtool: await ensureBenchtool(log) };
if (peerNames.includes('upstream')) binaries.upstream = await ensureUpstreamVk(log);
if (peerNames.includes('kwok')) binaries.kwok = await ensureKwok(log);
const peers: Peer[] = peerNames.map((name) => {
  switch (name) {
    case 'ours':
      return ours;
    case 'baseline': {
      const dir = process.env.BENCH_BASELINE_DIR;
      if (!dir)
        throw new Error('--peers baseline: set BENCH_BASELINE_DIR to the checkout to run (e.g. git archive <commit> | tar -x -C DIR, with node_modules)');
      return oursFrom('baseline', path.resolve(dir), `${VK_VERSION} (${path.basename(dir)})`);
    }
    case 'upstream':
      return upstream(binaries.upstream!);
    case 'kwok':
      return kwok(binaries.kwok!);
    default:
      return ceiling(binaries.benchtool!);
  }
});

// ------------------------------------------------------------------------------ one run

function benchtool(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(binaries.benchtool!.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(out.trim() ? (JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>) : {});
      else reject(new Error(`benchtool ${args[0]} exited ${code}: ${err.trim() || out.trim()}`));
    });
  });
}

/** A signal that fires with the peer's error when its process fails: waits on the peer end at once. */
/** Percentiles of sorted latencies, ms. */
function latencySummary(sorted: number[]): { p50: number; p90: number; p99: number; max: number; samples: number } {
  return {
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) ?? NaN),
    samples: sorted.length,
  };
}

function abortWhen(failed: Promise<never>): AbortSignal {
  const controller = new AbortController();
  failed.catch((err: unknown) => controller.abort(err));
  return controller.signal;
}

function writeKubeconfig(file: string, server: string, pkiDir: string, stem: string, user: string): void {
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: bench
  cluster: {server: ${server}, certificate-authority: ${path.join(pkiDir, 'ca.crt')}}
users:
- name: ${user}
  user: {client-certificate: ${stem}.crt, client-key: ${stem}.key}
contexts:
- name: bench
  context: {cluster: bench, user: ${user}}
current-context: bench
`,
  );
}

/** Namespace, RBAC and APF FlowSchemas for the peer's identity; resolves when the FlowSchemas are in force. */
async function prepareCluster(admin: KubeClient, user: string): Promise<void> {
  await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'bench-peers' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'bench-peers' }],
  });
  const schemas = flowSchemas(user) as { metadata: { name: string } }[];
  for (const fs of schemas) await admin.create('/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', fs);
  // The APF controller marks each FlowSchema Dangling=False once it uses it.
  await waitFor(
    'the FlowSchemas to be in force',
    async () => {
      const list = await admin.list<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>(
        '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas',
      );
      const ours = list.items.filter((i) => i.metadata.name.startsWith(`${user}.`));
      return ours.length === schemas.length && ours.every((i) => i.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False'));
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
  await waitFor(
    `ServiceAccount ${NAMESPACE}/default`,
    async () => {
      try {
        await admin.get(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts/default`);
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

async function nodesReady(admin: KubeClient, nodes: string[]): Promise<boolean> {
  const list = await admin.list<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>('/api/v1/nodes');
  const ready = new Set(list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata.name));
  return nodes.every((n) => ready.has(n));
}

/** The repository commit the run measured, with "+dirty" when src/ or bin/ had uncommitted changes (ours runs from the work tree). */
function sourceState(): string | undefined {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'bin'], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return undefined;
  }
}

function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function runOne(peer: Peer, scenario: Scenario): Promise<RunResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `vk-bench-${peer.name}-`));
  const nodes = scenario.nodes === 1 ? ['bench-node'] : Array.from({ length: scenario.nodes }, (_, i) => `bench-node-${String(i).padStart(3, '0')}`);
  const podNames = Array.from({ length: scenario.pods }, (_, i) => `bench-${String(i).padStart(6, '0')}`);
  const user = `bench-${peer.name}`;
  const phaseTimeoutMs = values['phase-timeout'] ? Number(values['phase-timeout']) * 1000 : Math.max(300_000, scenario.pods * 300);
  let cluster: LocalCluster | undefined;
  let admin: KubeClient | undefined;
  let peerProcess: PeerProcess | undefined;
  let watch: PodWatch | undefined;
  let eventWatch: EventWatch | undefined;
  let keepDir = values['keep-dirs'];
  const result: RunResult = {
    scenario: scenario.id,
    peer: peer.name,
    version: peer.version,
    how: peer.describe(scenario.nodes),
    pods: scenario.pods,
    nodes: scenario.nodes,
    ok: false,
    // The baseline runs from another checkout (BENCH_BASELINE_DIR), often not a git one: its commit is given as BENCH_BASELINE_COMMIT.
    commit: peer.name === 'baseline' ? process.env.BENCH_BASELINE_COMMIT : sourceState(),
  };
  const expectedMiB = peer.expectedMiB?.(scenario.nodes);
  const availableMiB = (os.totalmem() / 2 ** 20) * MEMORY_SHARE;
  if (expectedMiB !== undefined && expectedMiB > availableMiB) {
    result.notRun = `${scenario.nodes} nodes would need about ${Math.round(expectedMiB / 1024)} GiB (${peer.name} runs one process per node), more than ${Math.round(MEMORY_SHARE * 100)}% of this machine's ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
    log(`${scenario.id} / ${peer.name}: not run: ${result.notRun}`);
    rmSync(dir, { recursive: true, force: true });
    return result;
  }
  try {
    log(`${scenario.id} / ${peer.name}: starting a fresh control plane in ${dir}`);
    cluster = await startLocalCluster({ dir: path.join(dir, 'cluster') });
    admin = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
    await prepareCluster(admin, user);
    const pki = cluster.info.pkiDir;
    await benchtool(['mkcert', '--ca-dir', pki, '--cn', user, '--org', 'bench-peers', '--out', path.join(dir, user)]);
    await benchtool(['mkcert', '--ca-dir', pki, '--cn', 'bench-serving', '--out', path.join(dir, 'serving')]);
    const kubeconfig = path.join(dir, `${user}.kubeconfig`);
    writeKubeconfig(kubeconfig, cluster.info.server, pki, path.join(dir, user), user);

    const startedPeer = performance.now();
    const peerContext = {
      dir,
      kubeconfig,
      servingCert: path.join(dir, 'serving'),
      nodes,
      podCapacity: Math.max(2 * scenario.podsPerNode, 110),
      admin,
      binaries,
    };
    peerProcess = await peer.start(peerContext);
    const failed = peerProcess.failed;
    await waitFor(`node(s) Ready (${peer.name})`, () => nodesReady(admin!, nodes), {
      timeoutMs: Math.max(180_000, nodes.length * 300),
      intervalMs: nodes.length > 100 ? 1000 : 250,
      signal: abortWhen(failed),
    });
    result.startupSeconds = round((performance.now() - startedPeer) / 1000, 2);
    log(
      `${scenario.id} / ${peer.name}: ${nodes.length} node(s) Ready after ${result.startupSeconds}s; pids ${peerProcess.pids.slice(0, 5).join(',')}${peerProcess.pids.length > 5 ? ',...' : ''}`,
    );
    await new Promise((r) => setTimeout(r, 2000)); // let start-up requests (sweeps, first status) settle

    watch = new PodWatch(admin, NAMESPACE);
    await watch.start();
    eventWatch = new EventWatch(admin, NAMESPACE);
    await eventWatch.start();
    const before = {
      api: dispatchedByUser(await scrapeApiserver(cluster.info.server, pki), user),
      proc: readProcs(peerProcess.pids),
      busy: systemBusySeconds(),
      load: os.loadavg()[0]!,
    };

    const kubeconfigFile = cluster.info.kubeconfig;
    /**
     * The Go loader creating or deleting the scenario's pods (spec.nodeName set), as fast as kube-apiserver takes
     * them; or the paced round's pods, created at `rate` pods/s when one is given.
     */
    const loader = (action: 'create' | 'delete', paced?: { count: number; rate?: number }) =>
      benchtool([
        'load',
        '--kubeconfig',
        kubeconfigFile,
        '--action',
        action,
        '--namespace',
        NAMESPACE,
        '--prefix',
        paced ? PACED_PREFIX : 'bench',
        '--count',
        String(paced?.count ?? scenario.pods),
        '--nodes',
        nodes.join(','),
        '--concurrency',
        // Paced: enough creates in flight that a slow answer never holds back the schedule.
        String(paced ? 4 * loaderConcurrency : loaderConcurrency),
        ...(paced?.rate ? ['--rate', String(paced.rate)] : []),
      ]);

    // ---- up: creation to Running
    const upStart = performance.now();
    let loaderSeconds: number | undefined;
    if (scenario.kind === 'direct') {
      const load = await loader('create');
      loaderSeconds = load.seconds as number;
    } else {
      await admin.create(`/apis/apps/v1/namespaces/${NAMESPACE}/deployments`, deployment(scenario.pods));
    }
    const expected = scenario.pods;
    await watch.until(`${expected} pods Running (${peer.name})`, () => watch!.count((t) => t.running !== undefined) >= expected, phaseTimeoutMs, failed);
    const mid = { api: dispatchedByUser(await scrapeApiserver(cluster.info.server, pki), user), proc: readProcs(peerProcess.pids) };
    {
      // Kept if the down phase fails: the up figures stand on their own.
      const running = [...watch.pods.values()].map((t) => t.running ?? NaN).filter(Number.isFinite);
      const firstCreated = Math.min(...[...watch.pods.values()].map((t) => t.added));
      const seconds = (Math.max(...running) - Math.max(firstCreated, upStart)) / 1000;
      result.up = {
        seconds: round(seconds, 3),
        podsPerSecond: round(expected / seconds),
        loaderSeconds: loaderSeconds === undefined ? undefined : round(loaderSeconds, 3),
      };
      log(`${scenario.id} / ${peer.name}: up ${result.up.podsPerSecond} pods/s (${result.up.seconds}s)`);
    }

    // ---- down: deletion to gone
    const downStart = performance.now();
    if (scenario.kind === 'direct') {
      await loader('delete');
    } else {
      await admin.patch(`/apis/apps/v1/namespaces/${NAMESPACE}/deployments/bench`, { spec: { replicas: 0 } });
    }
    await watch.until(`${expected} pods gone (${peer.name})`, () => watch!.count((t) => t.gone !== undefined) >= expected, phaseTimeoutMs, failed);
    const downEnd = performance.now();
    // Trailing requests (events, status) land in the window: 2 s, or until the peer's Events have been quiet for 2 s (at most the phase timeout).
    const quietSince = () => Math.max(downEnd, eventWatch!.last ?? 0);
    await waitFor("the peer's Events to be quiet for 2 s", () => performance.now() - quietSince() >= 2000, {
      timeoutMs: phaseTimeoutMs,
      intervalMs: 100,
    }).catch((err: unknown) => log(`${scenario.id} / ${peer.name}: ${(err as Error).message}`));
    const dropped = await peer.eventsDropped?.(peerContext).catch((err: unknown) => {
      log(`${scenario.id} / ${peer.name}: could not read the Events it dropped: ${(err as Error).message}`);
      return undefined;
    });
    const after = {
      api: dispatchedByUser(await scrapeApiserver(cluster.info.server, pki), user),
      proc: readProcs(peerProcess.pids),
      busy: systemBusySeconds(),
    };

    // ---- figures
    const times = [...watch.pods.values()];
    // BENCH_POD_TIMES_DIR: each pod's watch times (performance.now(), with this process's timeOrigin) for latency analysis.
    const timesDir = process.env.BENCH_POD_TIMES_DIR;
    if (timesDir) {
      const pods = [...watch.pods].map(([name, t]) => ({ name, ...t }));
      writeFileSync(path.join(timesDir, `${scenario.id}-${peer.name}.json`), JSON.stringify({ timeOrigin: performance.timeOrigin, pods }));
    }
    if (scenario.kind === 'direct') for (const name of podNames) if (!watch.pods.has(name)) throw new Error(`pod ${name} was never seen`);
    const firstAdded = Math.min(...times.map((t) => t.added));
    const lastRunning = Math.max(...times.map((t) => t.running ?? NaN).filter(Number.isFinite));
    const firstDeleting = Math.min(...times.map((t) => t.deleting ?? t.gone ?? NaN).filter(Number.isFinite));
    const lastGone = Math.max(...times.map((t) => t.gone ?? NaN).filter(Number.isFinite));
    const latencies = times
      .filter((t) => t.running !== undefined && t.bound !== undefined)
      .map((t) => t.running! - t.bound!)
      .sort((a, b) => a - b);
    const deleteLatencies = times
      .filter((t) => t.gone !== undefined && t.deleting !== undefined)
      .map((t) => t.gone! - t.deleting!)
      .sort((a, b) => a - b);
    const upSeconds = (lastRunning - Math.max(firstAdded, upStart)) / 1000;
    const downSeconds = (lastGone - Math.max(firstDeleting, downStart)) / 1000;
    const apiUp: ApiCounts = countsBetween(before.api, mid.api);
    const apiAll: ApiCounts = countsBetween(before.api, after.api);
    const finalProc = readProcs(peerProcess.pids);
    const written = eventWrites(before.api, after.api);
    Object.assign(result, {
      ok: true,
      up: {
        seconds: round(upSeconds, 3),
        podsPerSecond: round(expected / upSeconds),
        loaderSeconds: loaderSeconds === undefined ? undefined : round(loaderSeconds, 3),
      },
      down: { seconds: round(downSeconds, 3), podsPerSecond: round(expected / downSeconds) },
      latencyMs: latencySummary(latencies),
      deleteLatencyMs: {
        p50: round(percentile(deleteLatencies, 50)),
        p90: round(percentile(deleteLatencies, 90)),
        p99: round(percentile(deleteLatencies, 99)),
        samples: deleteLatencies.length,
      },
      process: {
        count: peerProcess.pids.length,
        peakRssMiB: round(finalProc.hwmKiB / 1024),
        cpuSeconds: round(after.proc.cpuSeconds - before.proc.cpuSeconds, 2),
        cpuSecondsUp: round(mid.proc.cpuSeconds - before.proc.cpuSeconds, 2),
        cpuSecondsTotal: round(finalProc.cpuSeconds, 2),
        cpuMsPerPod: round(((after.proc.cpuSeconds - before.proc.cpuSeconds) * 1000) / expected, 3),
      },
      api: { perPod: perPod(apiAll, expected), perPodUp: perPod(apiUp, expected), total: apiAll.total },
      events: {
        written,
        perPod: round(written / expected, 3),
        dropped,
        lastSeconds: eventWatch.last === undefined ? undefined : round((eventWatch.last - firstAdded) / 1000, 2),
        lastAfterGoneSeconds: eventWatch.last === undefined ? undefined : round((eventWatch.last - lastGone) / 1000, 2),
      },
      windowSeconds: round((downEnd - upStart) / 1000, 2),
      // Everything on the machine (control plane, loader, driver, peer, and anything else running) over the window.
      machineBusyCpuSeconds: round(after.busy - before.busy, 1),
      loadAverageAtStart: round(before.load, 2),
      watchEvents: watch.events,
      watchResumes: watch.rewatches,
    } satisfies Partial<RunResult>);
    log(
      `${scenario.id} / ${peer.name}: nodes Ready ${result.startupSeconds}s, up ${result.up!.podsPerSecond} pods/s, down ${result.down!.podsPerSecond} pods/s, p50/p99 ${result.latencyMs!.p50}/${result.latencyMs!.p99} ms, RSS ${result.process!.peakRssMiB} MiB, CPU ${result.process!.cpuSeconds}s, ${result.api!.perPod.total} API requests/pod, Events ${written} written, ${dropped ?? '?'} dropped, last ${result.events!.lastSeconds ?? '-'}s`,
    );

    // ---- paced: pods offered at the same fixed rate to every peer. The closed-loop loader above offers each
    // peer a different rate (and a burst into an idle kube-apiserver at the start), so its latency is not comparable.
    if (scenario.kind === 'direct' && pacedPods > 0) {
      const count = Math.min(pacedPods, scenario.pods);
      const paced: PacedRound = { rate: pacedRate, pods: count };
      result.paced = paced;
      const names = Array.from({ length: count }, (_, i) => `${PACED_PREFIX}-${String(i).padStart(6, '0')}`);
      const seen = (what: 'running' | 'gone') => names.reduce((n, name) => n + (watch!.pods.get(name)?.[what] !== undefined ? 1 : 0), 0);
      try {
        const load = await loader('create', { count, rate: pacedRate });
        paced.loaderSeconds = round(load.seconds as number, 3);
        await watch.until(`${count} paced pods Running (${peer.name})`, () => seen('running') >= count, phaseTimeoutMs, failed);
        const latencies = names
          .map((name) => watch!.pods.get(name)!)
          .map((t) => t.running! - t.bound!)
          .sort((a, b) => a - b);
        paced.latencyMs = latencySummary(latencies);
        if (timesDir) {
          const pods = names.map((name) => ({ name, ...watch!.pods.get(name) }));
          writeFileSync(path.join(timesDir, `${scenario.id}-${peer.name}-paced.json`), JSON.stringify({ timeOrigin: performance.timeOrigin, pods }));
        }
        log(
          `${scenario.id} / ${peer.name}: paced ${count} pods at ${pacedRate}/s (loader ${paced.loaderSeconds}s): p50/p90/p99 ${paced.latencyMs.p50}/${paced.latencyMs.p90}/${paced.latencyMs.p99} ms`,
        );
        await loader('delete', { count });
        await watch.until(`${count} paced pods gone (${peer.name})`, () => seen('gone') >= count, phaseTimeoutMs, failed);
      } catch (err) {
        // The main figures stand; the paced round says why it has none.
        paced.error = (err as Error).message.split('\n')[0];
        log(`${scenario.id} / ${peer.name}: paced round FAILED: ${paced.error}`);
      }
    }
  } catch (err) {
    result.error = (err as Error).message.split('\n').slice(0, 5).join(' | ');
    if (watch) {
      // What the peer cost up to then: a lower bound for the figures it did not reach.
      const proc = peerProcess ? readProcs(peerProcess.pids) : undefined;
      const cost = proc ? `; peak RSS ${round(proc.hwmKiB / 1024)} MiB, CPU ${round(proc.cpuSeconds, 1)} s since start` : '';
      result.error += ` (when it gave up: ${watch.count((t) => t.running !== undefined)} of ${scenario.pods} pods seen Running, ${watch.count((t) => t.gone !== undefined)} gone${cost})`;
    }
    log(`${scenario.id} / ${peer.name}: FAILED: ${result.error}`);
    keepDir = true;
  } finally {
    await watch?.stop().catch(() => {});
    await eventWatch?.stop().catch(() => {});
    await peerProcess?.stop().catch(() => {});
    admin?.close();
    await cluster?.stop().catch(() => {});
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
  return result;
}

function deployment(replicas: number): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'bench' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'bench' } },
      template: {
        metadata: { labels: { app: 'bench' } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          containers: [{ name: 'app', image: 'registry.invalid/bench:1' }],
          tolerations: [
            { key: 'virtual-kubelet.io/provider', operator: 'Exists' },
            { key: 'kwok.x-k8s.io/node', operator: 'Exists' },
          ],
        },
      },
    },
  };
}

// ------------------------------------------------------------------------------ facts and output

function facts(kubernetesVersion: string): BenchResult['machine'] {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    go: goVersion().replace(/^go version /, ''),
    kubernetes: kubernetesVersion,
    etcdFsync: false,
  };
}

const startedAt = new Date().toISOString();
mkdirSync(outDir, { recursive: true });
const latestJson = path.join(outDir, 'latest.json');
const previousResult: BenchResult | undefined =
  values.merge && existsSync(latestJson) ? (JSON.parse(readFileSync(latestJson, 'utf8')) as BenchResult) : undefined;
const previous: RunResult[] = previousResult?.runs ?? [];
const runs: RunResult[] = [];
let kubernetesVersion = 'unknown';
try {
  kubernetesVersion = /k8s\.io\/kubernetes (v[\d.]+)/.exec(readFileSync(path.join(REPO_DIR, 'controlplane/go.mod'), 'utf8'))?.[1] ?? 'unknown';
} catch {
  // no controlplane/
}

function currentResult(): BenchResult {
  const redone = new Set(runs.map((r) => `${r.scenario}/${r.peer}`));
  const merged = [...previous.filter((r) => !redone.has(`${r.scenario}/${r.peer}`)), ...runs];
  const command = `node bench/run.ts ${process.argv
    .slice(2)
    .map((a) => (a === '' ? "''" : a))
    .join(' ')}`.trim();
  const peerVersions: Record<string, string> = {};
  for (const r of merged) peerVersions[r.peer] = r.version;
  return {
    schema: 1,
    startedAt: previousResult?.startedAt ?? startedAt,
    finishedAt: new Date().toISOString(),
    commands: [...(previousResult?.commands ?? []), command],
    machine: facts(kubernetesVersion),
    peers: peerVersions,
    settings: {
      loaderConcurrency,
      repeat,
      pacedRate,
      pacedPods,
      namespace: NAMESPACE,
      podSpec: 'one container, automountServiceAccountToken false, enableServiceLinks false; direct pods carry spec.nodeName',
    },
    ...(previousResult?.notes && { notes: previousResult.notes }),
    runs: merged,
  };
}

function writeOutputs(final: boolean): BenchResult {
  const result = currentResult();
  writeFileSync(latestJson, `${JSON.stringify(result, null, 2)}\n`);
  if (final) {
    writeFileSync(path.join(outDir, 'latest.md'), renderMarkdown(result));
    writeFileSync(path.join(outDir, 'latest.svg'), renderSvg(result));
  }
  return result;
}

let gitCommit = '';
try {
  gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8' }).trim();
} catch {
  // not a git checkout
}
log(`scenarios: ${scenarios.map((s) => s.id).join(', ')}; peers: ${peerNames.join(', ')}; results in ${outDir}${gitCommit ? ` (commit ${gitCommit})` : ''}`);
for (const scenario of scenarios) {
  // Rounds interleave the peers, each round starting one peer later, so a machine that slows down or speeds
  // up during a scenario (±15% from run to run here) weighs on every peer alike.
  const rounds = new Map<string, RunResult[]>(peers.map((p) => [p.name, []]));
  for (let round = 0; round < repeat; round++) {
    for (let i = 0; i < peers.length; i++) {
      const peer = peers[(i + round) % peers.length]!;
      if (repeat > 1) log(`${scenario.id}: round ${round + 1} of ${repeat}, ${peer.name}`);
      const done = rounds.get(peer.name)!;
      if (done[0]?.notRun !== undefined) continue; // it would not fit in any round
      done.push(await runOne(peer, scenario));
    }
  }
  for (const peer of peers) {
    const all = rounds.get(peer.name)!;
    runs.push(all.length > 1 ? medianRound(all) : all[0]!);
    writeOutputs(false);
  }
}
const result = writeOutputs(true);
process.stdout.write(`\n${renderMarkdown(result)}\nresults: ${outDir}/latest.{json,md,svg}\n`);
process.exit(runs.some((r) => !r.ok) ? 1 : 0);
