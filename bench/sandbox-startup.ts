// Benchmark (not a test): how long the sandbox provider takes from a pod's creation (bound with
// spec.nodeName) to Running, for a small busybox image, with a cold image cache (a fresh dataDir
// each run: resolve, download, unpack, then the pod) and a warm one (the image already pulled).
//
//   node bench/sandbox-startup.ts [--runs 7] [--settle-ms 500] [--burst 100] [--pod-workers 50] [--before old.json] [--out bench/results/sandbox-startup.json] [--log-level warn]
//
// Starts everything itself, in a temp dir, and removes it all at the end: a local control plane
// (startLocalCluster, as `npm run up`), the test registry on loopback with the busybox image
// (test/fixtures/registry), and VirtualKubelets with the SandboxProvider in this process. Each
// cold run gets a new node and a new dataDir (the old ones are removed at the end, not between
// runs: see stopNode); the last cold run's node then serves the warm runs.
// Pods run one at a time, each after --settle-ms of quiet (the previous pod gone, a new node
// started), so that one sample's background work (teardown, status writes, the provider's spare
// root filesystem) does not land in the next. Times are taken here: just before the POST that
// creates the pod, and when this driver's pod watch first shows it Running with every container
// running. The machine's load average is recorded with the result: the samples are only as
// quiet as the machine was.
// The burst (--burst N, 0 skips it) then creates N pods on the warm node at once (all POSTs in
// flight together) and times the first POST to the last pod seen Running; with all of them
// running it records each pod's memory from /proc (pod-memory.ts: its processes' anonymous
// memory and PSS, monitor included, with averages per process name), then deletes them.
// --before <result.json> copies an earlier run's figures (e.g. before a change) into the result.
// Needs root and the sandbox's host packages (bubblewrap, catatonit, busybox-static, iproute2,
// util-linux) plus docker-registry for the registry fixture.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { KubeClient } from '../src/kube/client.ts';
import type { Pod } from '../src/kube/types.ts';
import { createLogger } from '../src/log.ts';
import { parseSandboxConfig } from '../src/providers/sandbox/config.ts';
import { checkHost, SandboxProvider } from '../src/providers/sandbox/sandbox-provider.ts';
import { VirtualKubelet } from '../src/virtual-kubelet.ts';
import { buildBusyboxImage, buildImage } from '../test/fixtures/registry/image-builder.ts';
import { startTestRegistry, type TestRegistry } from '../test/fixtures/registry/registry.ts';
import { NODE_DEFAULTS } from '../src/cli/options.ts';
import { FAST_TIMINGS } from '../test/harness/timings.ts';
import { memoryByCommand, podMemory } from './pod-memory.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '7' },
    'settle-ms': { type: 'string', default: '500' },
    out: { type: 'string', default: 'bench/results/sandbox-startup.json' },
    'log-level': { type: 'string', default: 'warn' },
    'timeout-s': { type: 'string', default: '120' },
    burst: { type: 'string', default: '100' },
    'pod-workers': { type: 'string', default: String(NODE_DEFAULTS.podWorkers) },
    before: { type: 'string' },
  },
});
const runs = Number(values.runs);
const settleMs = Number(values['settle-ms']);
const burst = Number(values.burst);
const podWorkers = Number(values['pod-workers']);
if (
  !Number.isInteger(runs) ||
  runs < 1 ||
  !Number.isFinite(settleMs) ||
  settleMs < 0 ||
  !Number.isInteger(burst) ||
  burst < 0 ||
  !Number.isInteger(podWorkers) ||
  podWorkers < 1
) {
  process.stderr.write(
    'usage: node bench/sandbox-startup.ts [--runs 7] [--settle-ms 500] [--burst 100] [--pod-workers 50] [--before old.json] [--out bench/results/sandbox-startup.json]\n',
  );
  process.exit(2);
}
const timeoutMs = Number(values['timeout-s']) * 1000;
const log = createLogger(values['log-level'] ?? 'warn');
// Read now: a wrong path should not cost a whole run.
const before = values.before ? (JSON.parse(readFileSync(values.before, 'utf8')) as Record<string, unknown>) : undefined;
const NAMESPACE = 'sandbox-bench';

const say = (line: string) => process.stderr.write(`[sandbox-startup] ${line}\n`);

await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));

const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-sandbox-bench-'));
const cleanups: (() => Promise<unknown> | unknown)[] = [() => rmSync(dir, { recursive: true, force: true })];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        say(`cleanup: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`${signal}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

interface Node {
  name: string;
  dataDir: string;
  provider: SandboxProvider;
  vk: VirtualKubelet;
}

const nearestRank = (sorted: number[], q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
function summarize(samples: number[]): { samplesMs: number[]; p50Ms: number; maxMs: number; minMs: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samplesMs: samples.map((s) => Math.round(s * 10) / 10),
    p50Ms: round(nearestRank(sorted, 0.5)),
    maxMs: round(sorted.at(-1)!),
    minMs: round(sorted[0]!),
  };
}
const round = (ms: number) => Math.round(ms * 10) / 10;

try {
  const started = performance.now();
  let cluster: LocalCluster;
  {
    const clusterDir = path.join(dir, 'cluster');
    mkdirSync(clusterDir);
    cluster = await startLocalCluster({ dir: clusterDir, progress: (line) => log.debug({ line }, 'control plane') });
    cleanups.push(() => cluster.stop());
    say(`control plane ${cluster.info.version} up in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }
  const registry: TestRegistry = await startTestRegistry();
  cleanups.push(() => registry.stop());
  const built = await buildImage(await buildBusyboxImage());
  const pushed = await registry.pushImage('library/busybox', built, { tag: 'bench' });
  const imageBytes = built.layers.reduce((sum, l) => sum + l.size, 0) + built.config.length;
  say(`image ${pushed.reference}: ${built.layers.length} layer(s), ${(imageBytes / 1024 / 1024).toFixed(2)} MiB compressed`);

  const client = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
  cleanups.push(() => client.close());
  await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
  // The ServiceAccount admission plugin refuses pods until the namespace's default account exists.
  await waitUntil('the default service account', timeoutMs, async () => {
    try {
      await client.get(`/api/v1/namespaces/${NAMESPACE}/serviceaccounts/default`);
      return true;
    } catch {
      return false;
    }
  });

  // One watch over the namespace for the whole run; the first time each pod is seen Running.
  const runningAt = new Map<string, number>();
  const waiters = new Map<string, () => void>();
  const watchAbort = new AbortController();
  cleanups.push(() => watchAbort.abort());
  const list = await client.list<{ metadata: { resourceVersion: string } }>(`/api/v1/namespaces/${NAMESPACE}/pods`);
  let resourceVersion = list.metadata.resourceVersion;
  void (async () => {
    while (!watchAbort.signal.aborted) {
      try {
        for await (const event of client.watch<Pod>(
          `/api/v1/namespaces/${NAMESPACE}/pods`,
          { resourceVersion, allowWatchBookmarks: true },
          watchAbort.signal,
        )) {
          const now = performance.now();
          resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
          if (event.type !== 'ADDED' && event.type !== 'MODIFIED') continue;
          const pod = event.object;
          const name = pod.metadata!.name!;
          const statuses = pod.status?.containerStatuses ?? [];
          if (!runningAt.has(name) && pod.status?.phase === 'Running' && statuses.length > 0 && statuses.every((c) => c.state?.running)) {
            runningAt.set(name, now);
            waiters.get(name)?.();
          }
        }
      } catch (err) {
        if (watchAbort.signal.aborted) return;
        say(`watch ended (${(err as Error).message}); reopening`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  })();

  const nodes: Node[] = [];
  async function startNode(name: string): Promise<Node> {
    const dataDir = path.join(dir, `data-${name}`);
    const provider = await SandboxProvider.open({ dataDir }, { nodeName: name, nodeIP: '127.0.0.1', log });
    const vk = await VirtualKubelet.start(
      client,
      provider,
      // The pod workers of `vk run` (the tests' 4 would queue a burst): pods are started this many at a time.
      { nodeName: name, nodeIP: '127.0.0.1', kubeletPort: 10250, labels: {}, shutdownMode: 'delete', ...FAST_TIMINGS, podWorkers },
      log,
    );
    const node = { name, dataDir, provider, vk };
    nodes.push(node);
    return node;
  }
  async function stopNode(node: Node): Promise<void> {
    nodes.splice(nodes.indexOf(node), 1);
    for (const pod of await node.provider.listPods(call)) await node.provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
    await node.vk.stop();
    // Its data directory stays until the end (with the rest of `dir`): ext4 without a journal, as
    // here, skips inodes freed in the last 60-360 s when it allocates new ones, so removing a cold
    // run's ~600 files made the next cold run's unpack pay ~1 ms per new file (~0.01 ms on tmpfs).
  }
  cleanups.push(async () => {
    for (const node of [...nodes]) await stopNode(node);
  });

  const podManifest = (node: Node, podName: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName },
    spec: {
      nodeName: node.name,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'main', image: pushed.reference, command: ['sleep', '3600'] }],
    },
  });

  /** Creates the pod on `node`, waits for Running, deletes it (and waits until it is gone); returns creation→Running in ms. */
  async function measure(node: Node, podName: string): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const running = new Promise<void>((resolve) => waiters.set(podName, resolve));
    const t0 = performance.now();
    await client.create(`/api/v1/namespaces/${NAMESPACE}/pods`, podManifest(node, podName));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      running,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`pod ${podName} not Running after ${timeoutMs / 1000}s`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    waiters.delete(podName);
    const elapsed = runningAt.get(podName)! - t0;
    await client.delete(`/api/v1/namespaces/${NAMESPACE}/pods/${podName}`, { gracePeriodSeconds: 1 });
    await waitUntil(`pod ${podName} gone`, timeoutMs, async () => {
      try {
        await client.get(`/api/v1/namespaces/${NAMESPACE}/pods/${podName}`);
        return false;
      } catch {
        return true;
      }
    });
    return elapsed;
  }

  const cold: number[] = [];
  const warm: number[] = [];
  const loadBefore = os.loadavg();
  let warmNode: Node | undefined;
  for (let i = 1; i <= runs; i++) {
    if (warmNode) await stopNode(warmNode);
    const node = await startNode(`sandbox-bench-${i}`);
    const ms = await measure(node, `cold-${i}`);
    cold.push(ms);
    say(`cold ${i}/${runs}: ${ms.toFixed(0)} ms (node ${node.name}, fresh dataDir)`);
    warmNode = node;
  }
  for (let i = 1; i <= runs; i++) {
    const ms = await measure(warmNode!, `warm-${i}`);
    warm.push(ms);
    say(`warm ${i}/${runs}: ${ms.toFixed(0)} ms (node ${warmNode!.name}, image in the store)`);
  }

  /** `count` pods created at once on `node`: time to all Running, then each pod's memory; deletes them. */
  async function measureBurst(node: Node, count: number) {
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const names = Array.from({ length: count }, (_, i) => `burst-${i + 1}`);
    const allRunning = Promise.all(names.map((name) => new Promise<void>((resolve) => waiters.set(name, resolve))));
    const load = os.loadavg();
    const t0 = performance.now();
    await Promise.all(names.map((name) => client.create(`/api/v1/namespaces/${NAMESPACE}/pods`, podManifest(node, name))));
    const postedMs = performance.now() - t0;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allRunning,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`burst: not all ${count} pods Running after ${timeoutMs / 1000}s`)), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    const times = names.map((name) => runningAt.get(name)! - t0).sort((a, b) => a - b);
    const loadRunning = os.loadavg();
    const pods = podMemory(node.dataDir);
    const anon = pods.map((p) => p.anonKiB).sort((a, b) => a - b);
    const pss = pods.map((p) => p.pssKiB).sort((a, b) => a - b);
    const mean = (v: number[]) => round(v.reduce((a, b) => a + b, 0) / Math.max(v.length, 1));
    const d0 = performance.now();
    await Promise.all(names.map((name) => client.delete(`/api/v1/namespaces/${NAMESPACE}/pods/${name}`, { gracePeriodSeconds: 1 })));
    // The figures above are kept when the deletions are slow (the node's cleanup at the end waits for them anyway).
    let allGoneMs: number | undefined;
    try {
      await waitUntil('the burst pods gone', timeoutMs * 2, async () => {
        const left = await client.list<{ items: unknown[] }>(`/api/v1/namespaces/${NAMESPACE}/pods`);
        return left.items.length === 0;
      });
      allGoneMs = round(performance.now() - d0);
    } catch (err) {
      say(`burst: ${(err as Error).message}`);
    }
    return {
      pods: count,
      podWorkers,
      // 1-minute load average when the POSTs began, and once every pod ran (the burst's own work is in the second).
      loadavg: { before: load.map((l) => Math.round(l * 100) / 100), allRunning: loadRunning.map((l) => Math.round(l * 100) / 100) },
      postsMs: round(postedMs),
      firstRunningMs: round(times[0]!),
      p50RunningMs: round(nearestRank(times, 0.5)),
      allRunningMs: round(times.at(-1)!),
      ...(allGoneMs !== undefined && { allGoneMs }),
      memory: {
        podsMeasured: pods.length,
        anonKiBPerPod: { mean: mean(anon), p50: nearestRank(anon, 0.5), max: anon.at(-1) },
        pssKiBPerPod: { mean: mean(pss), p50: nearestRank(pss, 0.5), max: pss.at(-1) },
        byProcess: memoryByCommand(pods),
      },
    };
  }
  const burstResult = burst > 0 ? await measureBurst(warmNode!, burst) : undefined;
  if (burstResult)
    say(`burst of ${burst}: all Running in ${burstResult.allRunningMs.toFixed(0)} ms, ${burstResult.memory.anonKiBPerPod.mean} KiB anonymous per pod`);

  const result = {
    benchmark: 'sandbox-startup',
    description:
      "sandbox provider: pod creation (spec.nodeName) to Running as seen by the driver's watch; cold = fresh dataDir (image pulled from a loopback registry), warm = image already in the store",
    date: new Date().toISOString(),
    commit: gitCommit(),
    runs,
    settleMs,
    // 1-, 5- and 15-minute load averages when the measurements began and ended (2 CPUs: above ~1 something else ran too).
    loadavg: { before: loadBefore.map((l) => Math.round(l * 100) / 100), after: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    host: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
    },
    kubernetes: cluster.info.version,
    image: { reference: pushed.reference, layers: built.layers.length, compressedBytes: imageBytes },
    cold: summarize(cold),
    warm: summarize(warm),
    ...(burstResult && { burst: burstResult }),
    ...(before && {
      before: {
        date: before.date,
        commit: before.commit,
        loadavg: before.loadavg,
        cold: before.cold,
        warm: before.warm,
        burst: before.burst,
        notes: before.notes,
      },
    }),
  };
  process.stdout.write(
    [
      '',
      `sandbox provider, creation → Running, ${runs} run(s) each; load average ${result.loadavg.before.join(' ')} before, ${result.loadavg.after.join(' ')} after`,
      '| cache | min (ms) | p50 (ms) | max (ms) |',
      '|---|---:|---:|---:|',
      `| cold | ${result.cold.minMs.toFixed(0)} | ${result.cold.p50Ms.toFixed(0)} | ${result.cold.maxMs.toFixed(0)} |`,
      `| warm | ${result.warm.minMs.toFixed(0)} | ${result.warm.p50Ms.toFixed(0)} | ${result.warm.maxMs.toFixed(0)} |`,
      '',
      ...(burstResult
        ? [
            `burst: ${burst} pods created at once, all Running after ${burstResult.allRunningMs.toFixed(0)} ms (p50 ${burstResult.p50RunningMs.toFixed(0)} ms); load average ${burstResult.loadavg.before.join(' ')} before, ${burstResult.loadavg.allRunning.join(' ')} when all ran`,
            `memory per running pod (${burstResult.memory.podsMeasured} pods): anonymous ${burstResult.memory.anonKiBPerPod.mean} KiB mean, PSS ${burstResult.memory.pssKiBPerPod.mean} KiB mean`,
            '| process | per pod | anonymous (KiB) | PSS (KiB) |',
            '|---|---:|---:|---:|',
            ...Object.entries(burstResult.memory.byProcess).map(([comm, m]) => `| ${comm} | ${m.processesPerPod} | ${m.anonKiB} | ${m.pssKiB} |`),
            '',
          ]
        : []),
    ].join('\n'),
  );
  if (values.out) {
    mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
    say(`wrote ${values.out}`);
  }
} catch (err) {
  process.exitCode = 1;
  say(`failed: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}

async function waitUntil(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
