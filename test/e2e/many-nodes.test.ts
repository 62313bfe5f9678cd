// Node-level features of `vk run` end to end, each against the real control plane: many virtual
// nodes in one process (--nodes 50), upstream virtual-kubelet's flags and environment, the OS
// image / kernel / runtime every node shows in `kubectl get nodes -o wide`, and DaemonSet pods
// rejected at admission without churn.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import type { Node, Pod } from '../../src/kube/types.ts';
import { adminClient, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { tempDir } from '../harness/temp.ts';
import { localKubeletApiArgs } from '../harness/vk-args.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

interface Vk {
  child: ChildProcess;
  output: () => string;
  /** SIGTERM, then waits for the exit (SIGKILL after 30 s). */
  stop: () => Promise<void>;
}

function startVk(args: string[], env: NodeJS.ProcessEnv = {}): Vk {
  const child = spawn(process.execPath, [VK, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function dumpOnFailure(t: { after(fn: () => unknown): void }, vk: Vk): void {
  t.after(() => {
    if ((t as { passed?: boolean }).passed === false) process.stderr.write(`----- vk output -----\n${vk.output().slice(-8000)}\n`);
  });
}

async function nodesLabelled(selector: string): Promise<Node[]> {
  const result = await kubectl(['get', 'nodes', '-l', selector, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as { items: Node[] }).items : [];
}

const isReady = (node: Node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** `kubectl get nodes -o wide` rows of these nodes: OS-IMAGE, KERNEL-VERSION and CONTAINER-RUNTIME must be set. */
async function assertWideColumns(names: string[]): Promise<void> {
  const { stdout } = await kubectl(['get', 'nodes', ...names, '-o', 'wide']);
  const lines = stdout.trim().split('\n');
  assert.match(lines[0]!, /OS-IMAGE\s+KERNEL-VERSION\s+CONTAINER-RUNTIME/);
  assert.equal(lines.length, names.length + 1, stdout);
  for (const line of lines.slice(1)) assert.doesNotMatch(line, /<unknown>|<none>\s*$/, `no unknown column: ${line}`);
}

function rssMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

function getInsecure(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

test('--nodes 50: one process registers 50 Ready nodes, runs a pod on each, labels metrics per node; RSS reported', async (t) => {
  const namespace = await newNamespace(t);
  const group = randomName('many');
  const dir = tempDir(t, 'vk-many-');
  writeFileSync(path.join(dir, 'mock.yaml'), 'logIntervalMs: 0\n');
  const started = Date.now();
  const vk = startVk([
    '--kubeconfig',
    kubeconfigPath(),
    '--nodes',
    '50',
    '--node-name',
    `${group}-{i}`,
    '--label',
    `vk-test-group=${group}`,
    ...localKubeletApiArgs(),
    '--provider',
    'mock',
    '--provider-config',
    path.join(dir, 'mock.yaml'),
    '--shutdown',
    'delete',
    '--log-level',
    'warn',
  ]);
  dumpOnFailure(t, vk);
  t.after(() => vk.stop());
  let seen = 0;
  const nodes = await waitFor(
    '50 Ready nodes',
    async () => {
      const ready = (await nodesLabelled(`vk-test-group=${group}`)).filter(isReady);
      if (ready.length !== seen) process.stderr.write(`${ready.length} Ready after ${Date.now() - started} ms\n`);
      seen = ready.length;
      return ready.length === 50 ? ready : undefined;
    },
    { timeoutMs: 180_000 },
  );
  const readyMs = Date.now() - started;
  const names = nodes.map((n) => n.metadata!.name!).sort();
  assert.deepEqual(names, Array.from({ length: 50 }, (_, i) => `${group}-${i}`).sort());

  const pods = names.map((nodeName, i) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `p-${i}` },
    spec: { nodeName, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'c', image: 'busybox' }] },
  }));
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: pods }) });
  const running = await waitFor('a pod Running on each of the 50 nodes', async () => {
    const list = JSON.parse((await kubectl(['-n', namespace, 'get', 'pods', '-o', 'json'])).stdout) as { items: Pod[] };
    const on = new Set(list.items.filter((p) => p.status?.phase === 'Running').map((p) => p.spec?.nodeName));
    return on.size === 50 ? on : undefined;
  });
  assert.deepEqual([...running].sort(), names);
  await assertWideColumns(names);

  // Each node serves its own /metrics, its series labelled with its name.
  const node7 = nodes.find((n) => n.metadata?.name === `${group}-7`)!;
  const metrics = await getInsecure(`https://127.0.0.1:${node7.status?.daemonEndpoints?.kubeletEndpoint?.Port}/metrics`);
  assert.match(metrics, new RegExp(`vk_pod_sync_duration_seconds_count\\{[^}]*node="${group}-7"`));

  const { rss, peak } = rssMiB(vk.child.pid!);
  process.stderr.write(
    `--nodes 50: 50 nodes Ready after ${(readyMs / 1000).toFixed(1)} s; RSS ${rss.toFixed(0)} MiB (peak ${peak.toFixed(0)} MiB) with a pod on each\n`,
  );
  assert.ok(rss < 1024, `RSS ${rss.toFixed(0)} MiB for 50 nodes`);

  await vk.stop();
  await waitFor('the 50 nodes deleted on shutdown (--shutdown delete)', async () => (await nodesLabelled(`vk-test-group=${group}`)).length === 0);
});

test("an upstream virtual-kubelet container's flags and env run as they are: --os Windows, the mock's config, the taint env, --metrics-addr", async (t) => {
  const nodeName = randomName('vkubelet-mock');
  const dir = tempDir(t, 'vk-upstream-');
  const providerConfig = path.join(dir, 'cfg.json');
  // Upstream's mock config format (hack/skaffold/virtual-kubelet/vkubelet-mock-0-cfg.json).
  writeFileSync(providerConfig, JSON.stringify({ [nodeName]: { cpu: '2', memory: '32Gi', pods: '128' } }));
  const metricsPort = await freePort();
  const vk = startVk(
    [
      '--nodename',
      nodeName,
      '--provider',
      'mock',
      '--provider-config',
      providerConfig,
      '--startup-timeout',
      '10s',
      '--klog.v',
      '2',
      '--klog.logtostderr',
      '--log-level',
      'debug',
      '--os',
      'Windows',
      '--pod-sync-workers=10',
      '--full-resync-period=1m0s',
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      '--kubeconfig',
      kubeconfigPath(),
    ],
    {
      KUBELET_PORT: String(await freePort()),
      VKUBELET_POD_IP: '127.0.0.1',
      VKUBELET_TAINT_KEY: 'example.com/virtual',
      VKUBELET_TAINT_EFFECT: 'NoExecute',
    },
  );
  dumpOnFailure(t, vk);
  t.after(async () => {
    await vk.stop();
    await kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true });
  });
  const node = await waitFor('the upstream-configured node Ready', async () => {
    const [found] = await nodesLabelled(`kubernetes.io/hostname=${nodeName}`);
    return found && isReady(found) ? found : undefined;
  });
  assert.equal(node.metadata?.labels?.['kubernetes.io/os'], 'windows');
  assert.equal(node.metadata?.labels?.['beta.kubernetes.io/os'], 'windows');
  assert.equal(node.status?.nodeInfo?.operatingSystem, 'windows');
  assert.equal(node.status?.capacity?.pods, '128');
  assert.equal(node.status?.capacity?.cpu, '2');
  assert.deepEqual(
    node.spec?.taints?.filter((taint) => taint.key === 'example.com/virtual'),
    [{ key: 'example.com/virtual', value: 'mock', effect: 'NoExecute' }],
  );
  assert.ok(!node.spec?.taints?.some((taint) => taint.key === 'virtual-kubelet.io/provider'), 'the env taint replaces the default one');
  assert.equal(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, '127.0.0.1');
  const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /^vk_api_requests_total\{/m);
  assert.match(vk.output(), /--klog\.v 2 ignored: vk logs at --log-level/);
  await assertWideColumns([nodeName]);
});

test('an upstream flag vk does not support is a one-line error naming it', async () => {
  const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [VK, 'run', '--nodename', 'x', '--trace-exporter', 'jaeger'], (err, _stdout, stderr) =>
      resolve({ code: err ? Number(err.code) : 0, stderr }),
    );
  });
  assert.equal(result.code, 2);
  assert.deepEqual(result.stderr.trim().split('\n'), [
    'vk: --trace-exporter: upstream virtual-kubelet flag not supported by vk run: tracing (jaeger, ocagent) is not built in',
  ]);
});

test('--daemonset-pods reject (the default): a tolerate-everything DaemonSet pod fails at admission with a reason and an Event, and the DaemonSet controller backs off', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-ds');
  const vk = startVk([
    '--kubeconfig',
    kubeconfigPath(),
    '--node-name',
    nodeName,
    '--node-ip',
    '127.0.0.1',
    '--kubelet-port',
    '0',
    '--kubelet-address',
    '127.0.0.1',
    '--kubelet-serving-cert',
    'self-signed',
    '--shutdown',
    'delete',
    '--log-level',
    'warn',
  ]);
  dumpOnFailure(t, vk);
  t.after(() => vk.stop());
  await waitFor('the node Ready', async () => (await nodesLabelled(`kubernetes.io/hostname=${nodeName}`)).some(isReady));

  // Every pod created for this node, counted from a watch (a poll could miss a short-lived one).
  const client = await adminClient();
  const watchStop = new AbortController();
  t.after(() => watchStop.abort());
  const created = new Map<string, number>();
  const watching = (async () => {
    try {
      for await (const event of client.watch<Pod>(`/api/v1/namespaces/${namespace}/pods`, { fieldSelector: `spec.nodeName=${nodeName}` }, watchStop.signal))
        if (event.type === 'ADDED' && !created.has(event.object.metadata!.uid!)) created.set(event.object.metadata!.uid!, Date.now());
    } catch (err) {
      if (!watchStop.signal.aborted) throw err;
    }
  })();

  const daemonSet = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'node-agent' },
    spec: {
      selector: { matchLabels: { app: 'node-agent' } },
      template: {
        metadata: { labels: { app: 'node-agent' } },
        spec: {
          // Like kube-proxy or a CNI agent: tolerates every taint. Pinned to the test's node so
          // other tests' nodes do not count.
          tolerations: [{ operator: 'Exists' }],
          nodeSelector: { 'kubernetes.io/hostname': nodeName },
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'busybox' }],
        },
      },
    },
  };
  const start = Date.now();
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(daemonSet) });
  const rejected = await waitFor('a DaemonSet pod Failed at admission', async () => {
    const list = JSON.parse((await kubectl(['-n', namespace, 'get', 'pods', '-o', 'json'])).stdout) as { items: Pod[] };
    return list.items.find((p) => p.status?.phase === 'Failed');
  });
  assert.equal(rejected.status?.reason, 'DaemonSetPodRejected');
  assert.match(rejected.status?.message ?? '', new RegExp(`virtual node ${nodeName} does not run DaemonSet pods \\(DaemonSet node-agent\\)`));
  await waitFor('the Warning Event', async () => {
    const { stdout } = await kubectl([
      '-n',
      namespace,
      'get',
      'events',
      '--field-selector',
      `reason=DaemonSetPodRejected,involvedObject.name=${rejected.metadata!.name}`,
      '-o',
      'name',
    ]);
    return stdout.trim() !== '';
  });

  // Two minutes of the DaemonSet controller's retries: its failed-pod backoff (1 s doubling) keeps creations rare.
  await waitFor('two minutes of DaemonSet retries', () => Date.now() >= start + 120_000, { timeoutMs: 130_000, intervalMs: 1000 });
  watchStop.abort();
  await watching;
  const times = [...created.values()];
  const firstMinute = times.filter((at) => at < start + 60_000).length;
  const secondMinute = times.length - firstMinute;
  process.stderr.write(`DaemonSet churn on a virtual node: ${firstMinute} pod creations in the first minute, ${secondMinute} in the second\n`);
  assert.ok(firstMinute >= 1 && firstMinute <= 10, `first minute: ${firstMinute} creations`);
  assert.ok(secondMinute <= 3, `second minute: ${secondMinute} creations`);
  const { stdout } = await kubectl(['-n', namespace, 'get', 'pods', '-o', 'json']);
  assert.ok(
    (JSON.parse(stdout) as { items: Pod[] }).items.every((p) => p.status?.phase !== 'Running'),
    'no DaemonSet pod ever runs on the virtual node',
  );
});
