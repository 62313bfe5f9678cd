// The cluster provider's own cost: N pods through it against the same N pods created directly in
// the target cluster, in one run on the same two control planes. The target's only node is a
// mock-provider virtual node (`vk run --provider mock`, what bench/run.ts runs as "ours"), so the
// figures are our layer's (source API + our virtual kubelet + the cluster provider + the target
// API), not a container runtime's. See bench/README.md ("The cluster provider").
//
// Each comparison runs twice in one invocation: unpinned (everything shares the machine's two
// cores) and pinned (cgroup v1 cpusets: the target cluster, its node and whatever loads it on
// CPU 0, the source cluster, the burst node and its loader on CPU 1: two one-core "machines").
//
//   node bench/cluster-provider.ts [--pods 1000] [--repeat 3] [--pinning both|pinned|unpinned] [--out bench/results/cluster-provider.json] [--keep-dirs]
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { componentPids } from '../src/cluster/component-pids.ts';
import { KubeClient } from '../src/kube/client.ts';
import { parseQuantity, value } from '../src/kube/quantity.ts';
import { waitFor } from '../test/harness/wait.ts';
import { ensureBenchtool, type BuiltBinary } from './build.ts';
import { Cpuset, cpusetUnavailable, processTree } from './cpuset.ts';
import {
  countsBetween,
  dispatchedByUser,
  eventWrites,
  flowSchemas,
  percentile,
  perPod,
  PodWatch,
  readProcs,
  scrapeApiserver,
  sampleCpus,
  systemBusySeconds,
  type ApiCounts,
} from './measure.ts';
import { ours, REPO_DIR, type PeerProcess } from './peers.ts';

const { values } = parseArgs({
  options: {
    pods: { type: 'string', default: '1000' },
    out: { type: 'string', default: path.join(REPO_DIR, 'bench/results/cluster-provider.json') },
    concurrency: { type: 'string', default: '16' },
    'keep-dirs': { type: 'boolean', default: false },
    pinning: { type: 'string', default: 'both' },
    repeat: { type: 'string', default: '3' },
  },
});
if (!['both', 'pinned', 'unpinned'].includes(values.pinning)) throw new Error(`--pinning: both, pinned or unpinned, not ${values.pinning}`);
const PODS = Number(values.pods);
const CONCURRENCY = Number(values.concurrency);
const REPEAT = Number(values.repeat);
if (!Number.isInteger(REPEAT) || REPEAT < 1) throw new Error(`--repeat: a whole number of rounds, at least 1, not ${values.repeat}`);
const TARGET_NODE = 'bench-target';
const BURST_NODE = 'bench-burst';
/** Identities whose requests kube-apiserver counts (APF FlowSchemas per user, as bench/run.ts does). */
const USERS = { targetNode: 'bench-target-vk', provider: 'bench-cluster-provider', burstNode: 'bench-burst-vk' };
const PHASE_TIMEOUT_MS = Math.max(300_000, PODS * 300);

function log(line: string): void {
  process.stderr.write(`[bench cluster-provider ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

function run(binary: string, args: string[], cpuset?: Cpuset): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = execFile(binary, args, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(binary)} ${args[0]}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim() ? (JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>) : {});
    });
    if (cpuset && child.pid) cpuset.add([child.pid]);
  });
}

/** CPU seconds so far of each process of a control plane, by component (the supervisor holds etcd). */
function controlPlaneCpu(cluster: Cluster): Record<string, number> {
  const supervisor = cluster.local.info.pid;
  const out: Record<string, number> = { 'supervisor+etcd': readProcs([supervisor]).cpuSeconds };
  for (const [name, pid] of Object.entries(componentPids(supervisor))) out[name] = readProcs(processTree(pid)).cpuSeconds;
  return out;
}

const sumValues = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

interface Cluster {
  name: string;
  local: LocalCluster;
  admin: KubeClient;
}

/** A client certificate for `user` (group bench-peers, cluster-admin) and its kubeconfig. */
async function identity(benchtool: BuiltBinary, cluster: Cluster, dir: string, user: string): Promise<string> {
  const stem = path.join(dir, `${cluster.name}-${user}`);
  await run(benchtool.binary, ['mkcert', '--ca-dir', cluster.local.info.pkiDir, '--cn', user, '--org', 'bench-peers', '--out', stem]);
  const file = `${stem}.kubeconfig`;
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: cluster.local.info.server, 'certificate-authority': path.join(cluster.local.info.pkiDir, 'ca.crt') } }],
      users: [{ name: user, user: { 'client-certificate': `${stem}.crt`, 'client-key': `${stem}.key` } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user } }],
      'current-context': 'c',
    }),
  );
  return file;
}

/** RBAC for the bench identities, a namespace, and the users' FlowSchemas in force. */
async function prepare(cluster: Cluster, namespaces: string[], users: string[]): Promise<void> {
  const { admin } = cluster;
  await admin.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: 'bench-peers' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'bench-peers' }],
  });
  for (const name of namespaces) await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  const schemas = users.flatMap((user) => flowSchemas(user) as { metadata: { name: string } }[]);
  for (const fs of schemas) await admin.create('/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas', fs);
  const names = new Set(schemas.map((s) => s.metadata.name));
  await waitFor(
    `${cluster.name}: the FlowSchemas in force and the namespaces' ServiceAccounts made`,
    async () => {
      const list = await admin.list<{ items: { metadata: { name: string }; status?: { conditions?: { type: string; status: string }[] } }[] }>(
        '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas',
      );
      const inForce = list.items.filter((i) => names.has(i.metadata.name) && i.status?.conditions?.some((c) => c.type === 'Dangling' && c.status === 'False'));
      if (inForce.length !== names.size) return false;
      for (const ns of namespaces) if (!(await admin.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`).catch(() => undefined))) return false;
      return true;
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  );
}

async function nodeReady(admin: KubeClient, node: string): Promise<boolean> {
  const n = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>(`/api/v1/nodes/${node}`).catch(() => undefined);
  return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** `vk run --provider cluster` on the source, as its own process with its own identity (log in <dir>/burst.log). */
function startBurstNode(dir: string, kubeconfig: string, providerConfig: string): PeerProcess {
  const fd = openSync(path.join(dir, 'burst.log'), 'a');
  // BENCH_BURST_NODE_ARGS: extra Node flags for the burst node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = (process.env.BENCH_BURST_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeArgs,
      'bin/vk.js',
      'run',
      ...['--kubeconfig', kubeconfig, '--node-name', BURST_NODE, '--node-ip', '127.0.0.1', '--kubelet-port', '0', '--kubelet-address', '127.0.0.1'],
      ...[
        '--kubelet-auth',
        'none',
        '--kubelet-serving-cert',
        'self-signed',
        '--provider',
        'cluster',
        '--provider-config',
        providerConfig,
        '--log-level',
        'warn',
      ],
      // BENCH_BURST_ARGS: extra `vk run` flags for the burst node, e.g. "--pod-workers 100".
      ...(process.env.BENCH_BURST_ARGS ?? '').split(' ').filter(Boolean),
    ],
    { cwd: REPO_DIR, stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  let stopping = false;
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(`burst node exited (code ${code}, signal ${signal})`)));
  const failed = exited.then((reason) => (stopping ? new Promise<never>(() => {}) : Promise.reject(new Error(reason))));
  failed.catch(() => {});
  return {
    pids: [child.pid ?? 0],
    failed,
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface Counter {
  cluster: Cluster;
  user: string;
}

async function snapshot(counters: Counter[]): Promise<Map<string, number>[]> {
  const metrics = new Map<Cluster, string>();
  for (const c of counters)
    if (!metrics.has(c.cluster)) metrics.set(c.cluster, await scrapeApiserver(c.cluster.local.info.server, c.cluster.local.info.pkiDir));
  return counters.map((c) => dispatchedByUser(metrics.get(c.cluster)!, c.user));
}

/** Snapshots every second until no identity has written an Event for QUIET_MS (at most 120 s). */
async function eventsSettled(counters: Counter[]): Promise<{ after: Map<string, number>[]; seconds: number }> {
  const QUIET_MS = 3000;
  const start = Date.now();
  let last = await snapshot(counters);
  let quietSince = Date.now();
  while (Date.now() - quietSince < QUIET_MS && Date.now() - start < 120_000) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await snapshot(counters);
    if (now.some((m, i) => eventWrites(last[i]!, m) > 0)) quietSince = Date.now();
    last = now;
  }
  return { after: last, seconds: round((Date.now() - start) / 1000, 1) };
}

interface SideResult {
  description: string;
  pods: number;
  upPodsPerSecond: number;
  downPodsPerSecond: number;
  loaderCreateSeconds: number;
  /** Pod bound → Running as the watch saw it, ms. */
  latencyMs: { p50: number; p90: number; p99: number };
  /** kube-apiserver's count of each identity's requests over up + down, per pod. */
  apiRequestsPerPod: Record<string, ApiCounts>;
  apiRequestsPerPodTotal: number;
  windowSeconds: number;
  /** From the last pod gone until no identity had written an Event for 3 s (inside the CPU and request window). */
  trailingEventSeconds: number;
  machineBusyCpuSeconds: number;
  /** Each core's busy fraction from the first pod created to the last Running: pinned, which side was saturated. */
  upBusyShareByCpu: number[];
  /** CPU seconds (utime + stime) of each virtual kubelet process over the window. */
  processCpuSeconds: Record<string, number>;
  /** CPU seconds of each control plane (etcd, kube-apiserver, scheduler, controller-manager) over the window. */
  controlPlaneCpuSeconds: Record<string, number>;
  /** The same by process (etcd runs inside the supervisor): shows which part of a control plane a path costs. */
  controlPlaneCpuSecondsByProcess: Record<string, Record<string, number>>;
  /** /proc/loadavg (1, 5, 15 min) when the side began and when it ended. */
  loadavg: { start: number[]; end: number[] };
}

/** Creates PODS pods bound to `node` in `namespace` of `cluster` (the Go loader, admin identity), waits for all Running, deletes them, waits for all gone. */
async function measure(
  benchtool: BuiltBinary,
  cluster: Cluster,
  namespace: string,
  node: string,
  counters: Record<string, Counter>,
  processes: Record<string, PeerProcess>,
  failed: Promise<never>,
  description: string,
  controlPlanes: Cluster[],
  loaderCpuset: Cpuset | undefined,
): Promise<SideResult> {
  const loadStart = loadavg();
  const cpu = () => Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, readProcs(p.pids).cpuSeconds]));
  const cpCpu = () => Object.fromEntries(controlPlanes.map((c) => [c.name, controlPlaneCpu(c)]));
  const watch = new PodWatch(cluster.admin, namespace);
  await watch.start();
  const list = Object.values(counters);
  const before = await snapshot(list);
  const busyBefore = systemBusySeconds();
  const cpus = sampleCpus();
  const cpuBefore = cpu();
  const cpCpuBefore = cpCpu();
  const loader = (action: 'create' | 'delete') =>
    run(
      benchtool.binary,
      [
        'load',
        ...['--kubeconfig', cluster.local.info.kubeconfig, '--action', action, '--namespace', namespace, '--prefix', 'bench'],
        ...['--count', String(PODS), '--nodes', node, '--concurrency', String(CONCURRENCY)],
      ],
      loaderCpuset,
    );
  log(`${description}: creating ${PODS} pods`);
  const created = await loader('create');
  await watch.until(`${PODS} pods Running (${description})`, () => watch.count((t) => t.running !== undefined) >= PODS, PHASE_TIMEOUT_MS, failed);
  log(`${description}: all Running; deleting`);
  await loader('delete');
  await watch.until(`${PODS} pods gone (${description})`, () => watch.count((t) => t.gone !== undefined) >= PODS, PHASE_TIMEOUT_MS, failed);
  // The phase's trailing Events (the nodes' budget spends them after the pods are gone) land in
  // its window, not in the next phase's.
  const { after, seconds: trailingEventSeconds } = await eventsSettled(list);
  const busy = systemBusySeconds() - busyBefore;
  cpus.stop();
  const cpuAfter = cpu();
  const cpCpuAfter = cpCpu();
  await watch.stop();
  const times = [...watch.pods.values()];
  const firstAdded = Math.min(...times.map((t) => t.added));
  const lastRunning = Math.max(...times.map((t) => t.running ?? NaN).filter(Number.isFinite));
  const firstDeleting = Math.min(...times.map((t) => t.deleting ?? t.gone ?? NaN).filter(Number.isFinite));
  const lastGone = Math.max(...times.map((t) => t.gone ?? NaN).filter(Number.isFinite));
  const latencies = times
    .filter((t) => t.running !== undefined && t.bound !== undefined)
    .map((t) => t.running! - t.bound!)
    .sort((a, b) => a - b);
  const apiRequestsPerPod = Object.fromEntries(Object.keys(counters).map((key, i) => [key, perPod(countsBetween(before[i]!, after[i]!), PODS)]));
  return {
    description,
    pods: PODS,
    upPodsPerSecond: round(PODS / ((lastRunning - firstAdded) / 1000)),
    downPodsPerSecond: round(PODS / ((lastGone - firstDeleting) / 1000)),
    loaderCreateSeconds: round(created.seconds as number, 2),
    latencyMs: { p50: round(percentile(latencies, 50), 0), p90: round(percentile(latencies, 90), 0), p99: round(percentile(latencies, 99), 0) },
    apiRequestsPerPod,
    apiRequestsPerPodTotal: round(
      Object.values(apiRequestsPerPod).reduce((sum, c) => sum + c.total, 0),
      3,
    ),
    windowSeconds: round((lastGone - firstAdded) / 1000, 2),
    trailingEventSeconds,
    machineBusyCpuSeconds: round(busy, 1),
    upBusyShareByCpu: cpus.busyShare(firstAdded, lastRunning),
    processCpuSeconds: Object.fromEntries(Object.keys(cpuAfter).map((name) => [name, round(cpuAfter[name]! - cpuBefore[name]!, 1)])),
    controlPlaneCpuSeconds: Object.fromEntries(
      Object.keys(cpCpuAfter).map((name) => [name, round(sumValues(cpCpuAfter[name]!) - sumValues(cpCpuBefore[name]!), 1)]),
    ),
    controlPlaneCpuSecondsByProcess: Object.fromEntries(
      Object.keys(cpCpuAfter).map((name) => [
        name,
        Object.fromEntries(Object.entries(cpCpuAfter[name]!).map(([p, s]) => [p, round(s - (cpCpuBefore[name]![p] ?? 0), 1)])),
      ]),
    ),
    loadavg: { start: loadStart, end: loadavg() },
  };
}

// ------------------------------------------------------------------------------ the run

const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-bench-cluster-provider-'));
const processes: PeerProcess[] = [];
const clusters: Cluster[] = [];
const cpusets: Cpuset[] = [];
let ok = false;
try {
  const benchtool = await ensureBenchtool(log);
  const start = async (name: string): Promise<Cluster> => {
    log(`starting the ${name} control plane`);
    const local = await startLocalCluster({ dir: path.join(dir, name) });
    const cluster = { name, local, admin: await KubeClient.load({ kubeconfig: local.info.kubeconfig }) };
    clusters.push(cluster);
    return cluster;
  };
  const target = await start('target');
  const source = await start('source');
  // "bench-direct": pods created in the target; "bench": the source namespace, the same name in the target.
  await prepare(target, ['bench-direct', 'bench'], [USERS.targetNode, USERS.provider]);
  await prepare(source, ['bench'], [USERS.burstNode]);

  const targetDir = path.join(dir, 'target-node');
  mkdirSync(targetDir);
  const targetNode = await ours.start({
    dir: targetDir,
    kubeconfig: await identity(benchtool, target, dir, USERS.targetNode),
    servingCert: '',
    nodes: [TARGET_NODE],
    podCapacity: Math.max(2 * PODS, 110),
    admin: target.admin,
    binaries: { benchtool },
  });
  processes.push(targetNode);
  await waitFor(`target node ${TARGET_NODE} Ready`, () => nodeReady(target.admin, TARGET_NODE), { timeoutMs: 120_000, intervalMs: 250 });

  const providerConfig = path.join(dir, 'cluster.json');
  writeFileSync(
    providerConfig,
    JSON.stringify({
      kubeconfig: await identity(benchtool, target, dir, USERS.provider),
      namespaces: { create: false },
      // As the direct pods are: bound to the target node (no target scheduler in either path).
      scheduling: { nodeName: TARGET_NODE, tolerations: [{ operator: 'Exists' }] },
    }),
  );
  const burst = startBurstNode(dir, await identity(benchtool, source, dir, USERS.burstNode), providerConfig);
  processes.push(burst);
  await waitFor(`source node ${BURST_NODE} Ready`, () => nodeReady(source.admin, BURST_NODE), { timeoutMs: 120_000, intervalMs: 250 });
  // The burst node's capacity comes from the target's allocatable: wait until it has room for every pod.
  let offered: Record<string, string> | undefined;
  await waitFor(
    () => `${BURST_NODE} to offer ${PODS} pods (allocatable: ${JSON.stringify(offered)})`,
    async () => {
      offered = (await source.admin.get<{ status?: { allocatable?: Record<string, string> } }>(`/api/v1/nodes/${BURST_NODE}`)).status?.allocatable;
      return value(parseQuantity(offered?.pods ?? '0')) >= BigInt(PODS);
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  await new Promise((r) => setTimeout(r, 2000)); // start-up requests settle

  // A control plane that gives up (its controller-manager loses its lease on a starved CPU) fails the run at once.
  const controlPlaneDown = clusters.map((c) =>
    c.local.exited.then((reason) => (reason ? Promise.reject(new Error(`the ${c.name} control plane exited: ${reason}`)) : new Promise<never>(() => {}))),
  );
  const failed = Promise.race([targetNode.failed, burst.failed, ...controlPlaneDown]);
  failed.catch(() => {});
  /** direct, then through the provider; with `pin`, each cluster's processes and loader on a CPU of its own. */
  const compare = async (pin: { target: Cpuset; source: Cpuset } | undefined) => {
    const mode = pin ? 'pinned' : 'unpinned';
    const direct = await measure(
      benchtool,
      target,
      'bench-direct',
      TARGET_NODE,
      { targetNode: { cluster: target, user: USERS.targetNode } },
      // The burst node and the source control plane idle meanwhile: what they cost per second of nothing.
      { targetNode, burstNode: burst },
      failed,
      `${mode} direct: pods created in the target, bound to its mock node`,
      [target, source],
      pin?.target,
    );
    log(`${mode} direct: up ${direct.upPodsPerSecond} pods/s, down ${direct.downPodsPerSecond} pods/s, ${direct.apiRequestsPerPodTotal} API requests/pod`);
    await new Promise((r) => setTimeout(r, 2000));
    const through = await measure(
      benchtool,
      source,
      'bench',
      BURST_NODE,
      {
        burstNode: { cluster: source, user: USERS.burstNode },
        provider: { cluster: target, user: USERS.provider },
        targetNode: { cluster: target, user: USERS.targetNode },
      },
      { burstNode: burst, targetNode },
      failed,
      `${mode} cluster provider: pods created in the source, bound to the burst node, run by the target mock node`,
      [source, target],
      pin?.source,
    );
    log(
      `${mode} cluster provider: up ${through.upPodsPerSecond} pods/s, down ${through.downPodsPerSecond} pods/s, ${through.apiRequestsPerPodTotal} API requests/pod`,
    );
    const ratio = { up: round(through.upPodsPerSecond / direct.upPodsPerSecond, 2), down: round(through.downPodsPerSecond / direct.downPodsPerSecond, 2) };
    log(`${mode}: ratio up ${ratio.up}, down ${ratio.down}`);
    return { direct, clusterProvider: through, ratio };
  };
  /**
   * `repeat` rounds of direct then through the provider: the direct rate alone moves by ±15% from
   * one round to the next on this machine, so the figure is the round with the median up ratio
   * (all of it), and every round's rates and ratios are kept beside it.
   */
  const rounds = async (pin: { target: Cpuset; source: Cpuset } | undefined) => {
    const all: Awaited<ReturnType<typeof compare>>[] = [];
    for (let i = 0; i < REPEAT; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 2000));
      all.push(await compare(pin));
    }
    const median = [...all].sort((a, b) => a.ratio.up - b.ratio.up)[Math.floor(all.length / 2)]!;
    const summary = all.map((r) => ({
      upPodsPerSecond: { direct: r.direct.upPodsPerSecond, clusterProvider: r.clusterProvider.upPodsPerSecond },
      downPodsPerSecond: { direct: r.direct.downPodsPerSecond, clusterProvider: r.clusterProvider.downPodsPerSecond },
      ratio: r.ratio,
    }));
    log(`${pin ? 'pinned' : 'unpinned'}: up ratios ${all.map((r) => r.ratio.up).join(', ')}; median ${median.ratio.up}`);
    return { ...median, medianOf: all.length, rounds: summary };
  };
  const runs: Record<string, unknown> = {};
  let pinning: string;
  if (values.pinning !== 'pinned') runs.unpinned = await rounds(undefined);
  const unavailable = values.pinning === 'unpinned' ? 'not asked for (--pinning unpinned)' : cpusetUnavailable();
  if (unavailable) {
    pinning = `no pinned run: ${unavailable}`;
  } else {
    const pin = { target: Cpuset.create('target', '0'), source: Cpuset.create('source', '1') };
    cpusets.push(pin.target, pin.source);
    // Whole control planes, controller-manager and scheduler included: left out, they ran on
    // whichever CPU was free, the idle one during direct rounds and both during the provider's.
    pin.target.add([...processTree(target.local.info.pid), ...targetNode.pids]);
    pin.source.add([...processTree(source.local.info.pid), ...burst.pids]);
    await new Promise((r) => setTimeout(r, 2000));
    pinning =
      'pinned: cgroup v1 cpusets; CPU 0: the whole target control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager), its mock node and the direct loader; CPU 1: the whole source control plane, the burst node (cluster provider) and its loader; not pinned: the driver (watches, metrics scrapes) and other work on the machine';
    runs.pinned = await rounds(pin);
  }
  const leftInTarget = await target.admin.list<{ items: unknown[] }>('/api/v1/namespaces/bench/pods');
  const result = {
    date: new Date().toISOString(),
    pods: PODS,
    loaderConcurrency: CONCURRENCY,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model },
    method:
      'two local control planes (the repository Kubernetes build); target node: `vk run --provider mock` (bench peer "ours"); burst node: `vk run --provider cluster` with scheduling.nodeName = the target node; the Go loader creates and deletes the pods bound to the node with 16 requests in flight; pods/s from a watch in the cluster the pods were created in; API requests from APF FlowSchemas per identity (bench-target-vk, bench-cluster-provider on the target; bench-burst-vk on the source), over up + down',
    pinning,
    runs,
    targetPodsLeft: leftInTarget.items.length,
  };
  mkdirSync(path.dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  log(`written to ${values.out}`);
  ok = true;
} finally {
  for (const p of processes.reverse()) await p.stop().catch(() => undefined);
  for (const c of cpusets) {
    try {
      c.release();
    } catch (err) {
      log(`cpuset ${c.cpus} not removed: ${(err as Error).message}`);
    }
  }
  for (const c of clusters) {
    c.admin.close();
    await c.local.stop().catch(() => undefined);
  }
  if (values['keep-dirs'] || !ok) log(`scratch directory kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}
