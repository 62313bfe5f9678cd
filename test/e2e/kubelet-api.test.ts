// The kubelet API end to end: a virtual node in this process serving its kubelet port, reached
// by real kubectl through the real kube-apiserver (which presents its kubelet client
// certificate), and straight on the port with tokens and certificates.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import type { Node, Pod } from '../../src/kube/types.ts';
import { selfSignedServingCert } from '../../src/kubelet-api/certificates.ts';
import { adminClient, clusterInfo, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

const TOLERATION = { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' };

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as T;
}

async function runPod(
  namespace: string,
  nodeName: string,
  name: string,
  o: { annotations?: Record<string, string>; restartPolicy?: string } = {},
): Promise<Pod> {
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(o.annotations && { annotations: o.annotations }) },
    spec: {
      nodeName,
      tolerations: [TOLERATION],
      automountServiceAccountToken: false,
      restartPolicy: o.restartPolicy ?? 'Always',
      containers: [{ name: 'app', image: 'busybox:1.36' }],
    },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  return waitFor(`${name} Running`, async () => {
    const pod = await getJson<Pod>(['-n', namespace, 'get', 'pod', name]);
    return pod.status?.phase === 'Running' ? pod : undefined;
  });
}

interface DirectReply {
  status: number;
  body: string;
  peer?: X509Certificate;
}

/**
 * kubectl talking straight to the kubelet port with the admin kubeconfig: it verifies the serving
 * certificate against the cluster CA and presents the admin client certificate (CN admin, O
 * system:masters). kube-apiserver's node proxy (/api/v1/nodes/<node>/proxy/...) cannot be used
 * here: it refuses to proxy to loopback addresses ("address not allowed"), and test nodes live on
 * 127.0.0.1. (kubectl logs/exec go through the pod subresources, which have no such rule.)
 */
function kubeletRaw(port: number, requestPath: string) {
  return kubectl(['--server', `https://127.0.0.1:${port}`, 'get', '--raw', requestPath], { allowFailure: true });
}

/** A request straight to the kubelet port (not through kube-apiserver). */
function direct(
  port: number,
  requestPath: string,
  o: { token?: string; cert?: string | Buffer; key?: string | Buffer; method?: string } = {},
): Promise<DirectReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: requestPath,
        method: o.method ?? 'GET',
        rejectUnauthorized: false,
        cert: o.cert,
        key: o.key,
        agent: false,
        headers: o.token ? { Authorization: `Bearer ${o.token}` } : {},
      },
      (res) => {
        const raw = (res.socket as TLSSocket).getPeerX509Certificate?.();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(raw && { peer: raw }) }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('kubectl logs through kube-apiserver: plain, --tail, --timestamps, --since, --limit-bytes, -f and --previous', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName } = await startVirtualNode(t, { kubeletApi: true, mockConfig: { logIntervalMs: 200 } });
  await runPod(namespace, nodeName, 'talker', { annotations: { 'mock.vk.io/log-lines': 'hello from the annotation\nsecond line' } });
  const logs = async (...args: string[]) => (await kubectl(['-n', namespace, 'logs', 'talker', ...args])).stdout;

  // Let it print a while, so --since and --tail have something to cut.
  await waitFor('10 ticks in the log', async () => / tick 10\n/.test(await logs()), { timeoutMs: 30_000 });
  const all = await logs();
  const lines = all.trimEnd().split('\n');
  assert.equal(lines[0], 'mock talker/app: started (image busybox:1.36, restart 0)');
  assert.deepEqual(lines.slice(1, 3), ['hello from the annotation', 'second line']);
  assert.match(lines[3]!, /^mock talker\/app: tick 1$/);

  const tail = (await logs('--tail=2')).trimEnd().split('\n');
  assert.equal(tail.length, 2);
  assert.match(tail[1]!, /tick (\d+)$/);
  assert.equal(Number(/tick (\d+)$/.exec(tail[1]!)![1]) - Number(/tick (\d+)$/.exec(tail[0]!)![1]), 1);

  const stamped = (await logs('--timestamps', '--tail=3')).trimEnd().split('\n');
  for (const line of stamped) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z mock talker\/app: tick \d+$/);

  const recent = (await logs('--since=1s')).trimEnd().split('\n');
  assert.ok(recent.length >= 3 && recent.length <= 7, `about 5 lines in the last second, got ${recent.length}`);
  assert.ok(
    recent.every((l) => / tick \d+$/.test(l)),
    'no start lines in the last second',
  );

  assert.equal(await logs('--limit-bytes=20'), 'mock talker/app: sta');

  // -f: new lines arrive while we read; we stop after three of them.
  const follower = spawn(process.env.VK_TEST_KUBECTL!, ['-n', namespace, 'logs', '-f', '--tail=0', 'talker'], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
  });
  t.after(() => follower.kill('SIGKILL'));
  const followed = await new Promise<string>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`follow saw only: ${JSON.stringify(seen)}`)), 30_000);
    follower.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if ((seen.match(/tick \d+\n/g) ?? []).length >= 3) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
    follower.on('exit', (code) => reject(new Error(`kubectl logs -f exited ${code} early: ${seen}`)));
  });
  follower.removeAllListeners('exit');
  follower.kill('SIGTERM');
  const ticks = followed.match(/tick (\d+)/g)!.map((m) => Number(m.slice(5)));
  assert.deepEqual(ticks.slice(0, 3), [ticks[0]!, ticks[0]! + 1, ticks[0]! + 2], 'consecutive new lines');

  // --previous: none yet; then a container that exits with an error and restarts.
  const none = await kubectl(['-n', namespace, 'logs', 'talker', '--previous'], { allowFailure: true });
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /previous terminated container "app" in pod "talker" not found/);
  await runPod(namespace, nodeName, 'crasher', { annotations: { 'mock.vk.io/complete-after-ms': '1500', 'mock.vk.io/exit-code': '1' } });
  await waitFor(
    'crasher restarted',
    async () => ((await getJson<Pod>(['-n', namespace, 'get', 'pod', 'crasher'])).status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
    { timeoutMs: 30_000 },
  );
  const previous = await kubectl(['-n', namespace, 'logs', 'crasher', '--previous']);
  assert.match(previous.stdout, /^mock crasher\/app: started \(image busybox:1\.36, restart 0\)\n/);
  assert.match(previous.stdout, /tick 7\n$/, 'the first run printed 7 lines in its 1.5 s');
  assert.match(await kubectl(['-n', namespace, 'logs', 'crasher']).then((r) => r.stdout), /restart [1-9]/);
});

test('stats/summary, metrics/resource, pods, healthz and metrics, for kubectl with the admin certificate and for a metrics reader', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName, kubeletPort } = await startVirtualNode(t, { kubeletApi: true });
  await runPod(namespace, nodeName, 'busy');
  const raw = async (p: string) => {
    const result = await kubeletRaw(kubeletPort!, p);
    assert.equal(result.code, 0, `kubectl get --raw ${p}: ${result.stderr}`);
    return result.stdout;
  };

  const summary = JSON.parse(await raw('/stats/summary')) as {
    node: {
      nodeName: string;
      startTime: string;
      cpu: { time: string; usageNanoCores: number; usageCoreNanoSeconds: number };
      memory: { workingSetBytes: number; availableBytes: number };
    };
    pods: {
      podRef: { name: string; namespace: string; uid: string };
      startTime: string;
      containers: {
        name: string;
        startTime: string;
        cpu: { usageNanoCores: number; usageCoreNanoSeconds: number };
        memory: { workingSetBytes: number; usageBytes: number };
      }[];
      cpu: { usageNanoCores: number };
      memory: { workingSetBytes: number };
    }[];
  };
  assert.equal(summary.node.nodeName, nodeName);
  assert.match(summary.node.startTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(summary.node.cpu.usageNanoCores > 0 && summary.node.memory.workingSetBytes > 0 && summary.node.memory.availableBytes > 0);
  const pod = summary.pods.find((p) => p.podRef.name === 'busy' && p.podRef.namespace === namespace);
  assert.ok(pod, 'the pod is in the summary');
  const apiPod = await getJson<Pod>(['-n', namespace, 'get', 'pod', 'busy']);
  assert.equal(pod.podRef.uid, apiPod.metadata?.uid);
  assert.equal(pod.containers[0]?.name, 'app');
  assert.equal(pod.containers[0]?.startTime, apiPod.status?.containerStatuses?.[0]?.state?.running?.startedAt);
  assert.ok(pod.containers[0]!.cpu.usageNanoCores > 0 && pod.containers[0]!.memory.workingSetBytes > 0);
  assert.equal(pod.cpu.usageNanoCores, pod.containers[0]!.cpu.usageNanoCores);

  const metrics = await raw('/metrics/resource');
  const samples = metrics.split('\n').filter((l) => l && !l.startsWith('#'));
  for (const line of samples) assert.match(line, /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+\d.eE]+( \d+)?$/, `a Prometheus sample line: ${line}`);
  const names = new Set(samples.map((l) => l.split(/[{ ]/)[0]));
  for (const name of [
    'node_cpu_usage_seconds_total',
    'node_memory_working_set_bytes',
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'container_start_time_seconds',
    'pod_cpu_usage_seconds_total',
    'pod_memory_working_set_bytes',
    'resource_scrape_error',
  ]) {
    assert.ok(names.has(name), `${name} is exported`);
  }
  assert.match(metrics, new RegExp(`^container_cpu_usage_seconds_total\\{container="app",namespace="${namespace}",pod="busy"\\} `, 'm'));
  assert.match(metrics, /^# TYPE node_cpu_usage_seconds_total counter$/m);
  assert.match(metrics, /^resource_scrape_error 0$/m);

  const list = JSON.parse(await raw('/pods')) as { kind: string; items: Pod[] };
  assert.equal(list.kind, 'PodList');
  assert.ok(list.items.some((p) => p.metadata?.name === 'busy'));
  assert.equal(await raw('/healthz'), 'ok');
  assert.match(await raw('/metrics'), /^vk_kubelet_api_requests_total\{method="GET",path="stats",code="200"\} \d+$/m);

  // What metrics-server does: a ServiceAccount with get on nodes/metrics and nodes/stats scrapes the kubelet port.
  await kubectl(['-n', namespace, 'create', 'serviceaccount', 'scraper']);
  const role = randomName('kubelet-metrics-reader');
  await kubectl(['create', 'clusterrole', role, '--verb=get', '--resource=nodes/metrics,nodes/stats']);
  t.after(() => kubectl(['delete', 'clusterrole', role, '--ignore-not-found']).then(() => undefined));
  await kubectl(['create', 'clusterrolebinding', role, `--clusterrole=${role}`, `--serviceaccount=${namespace}:scraper`]);
  t.after(() => kubectl(['delete', 'clusterrolebinding', role, '--ignore-not-found']).then(() => undefined));
  const token = (await kubectl(['-n', namespace, 'create', 'token', 'scraper'])).stdout.trim();
  const scraped = await waitFor('the scraper to be allowed', async () => {
    const reply = await direct(kubeletPort!, '/metrics/resource', { token });
    return reply.status === 200 ? reply : undefined;
  });
  assert.match(scraped.body, /^container_memory_working_set_bytes\{container="app",/m);
  assert.equal((await direct(kubeletPort!, '/stats/summary', { token })).status, 200);
  assert.equal(
    (await direct(kubeletPort!, `/containerLogs/${namespace}/busy/app`, { token })).status,
    403,
    'nodes/metrics and nodes/stats do not give nodes/proxy',
  );
});

test('the kubelet port authenticates and authorizes: 401 without credentials, 403 without rights, 200 once nodes/proxy is granted', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName, kubeletPort } = await startVirtualNode(t, { kubeletApi: { authCache: { denyTtlMs: 1000 } } });
  assert.ok(kubeletPort);
  await runPod(namespace, nodeName, 'guarded');
  const logsPath = `/containerLogs/${namespace}/guarded/app?tailLines=1`;

  // The Node publishes the port the server really listens on.
  const node = await getJson<Node>(['get', 'node', nodeName]);
  assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, kubeletPort);

  assert.deepEqual(await direct(kubeletPort, logsPath).then((r) => [r.status, r.body]), [401, 'Unauthorized\n']);
  assert.equal((await direct(kubeletPort, logsPath, { token: 'not-a-real-token' })).status, 401);
  // A certificate the client CA did not sign does not authenticate either.
  const stranger = selfSignedServingCert({ nodeName: 'stranger', nodeIP: '127.0.0.1' });
  assert.equal((await direct(kubeletPort, logsPath, { cert: stranger.cert, key: stranger.key })).status, 401);

  await kubectl(['-n', namespace, 'create', 'serviceaccount', 'reader']);
  const token = (await kubectl(['-n', namespace, 'create', 'token', 'reader'])).stdout.trim();
  const user = `system:serviceaccount:${namespace}:reader`;
  const forbidden = await direct(kubeletPort, logsPath, { token });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body, `Forbidden (user=${user}, verb=get, resource=nodes, subresource(s)=[proxy])\n`);
  assert.equal((await direct(kubeletPort, '/stats/summary', { token })).body, `Forbidden (user=${user}, verb=get, resource=nodes, subresource(s)=[stats])\n`);

  const role = randomName('kubelet-proxy-reader');
  await kubectl(['create', 'clusterrole', role, '--verb=get', '--resource=nodes/proxy']);
  t.after(() => kubectl(['delete', 'clusterrole', role, '--ignore-not-found']).then(() => undefined));
  await kubectl(['create', 'clusterrolebinding', role, `--clusterrole=${role}`, `--serviceaccount=${namespace}:reader`]);
  t.after(() => kubectl(['delete', 'clusterrolebinding', role, '--ignore-not-found']).then(() => undefined));
  const allowed = await waitFor('the grant to take effect (the deny is cached for 1 s here)', async () => {
    const reply = await direct(kubeletPort, logsPath, { token });
    return reply.status === 200 ? reply : undefined;
  });
  assert.match(allowed.body, /^mock guarded\/app: /);
  // get on nodes/proxy is not create: exec's POST stays forbidden.
  const exec = await direct(kubeletPort, `/exec/${namespace}/guarded/app?command=ls&output=1`, { token, method: 'POST' });
  assert.equal(exec.body, `Forbidden (user=${user}, verb=create, resource=nodes, subresource(s)=[proxy])\n`);

  // The cluster admin's client certificate (CN admin, O system:masters, signed by the cluster CA) authenticates directly.
  const { tls } = (await adminClient()).config;
  const admin = await direct(kubeletPort, '/pods', { cert: tls.cert!, key: tls.key! });
  assert.equal(admin.status, 200);
  assert.equal((JSON.parse(admin.body) as { kind: string }).kind, 'PodList');
});

test('bad requests get clear errors (404 unknown pod or container, 400 bad options, 400 without upgrade) and the server keeps serving', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName, kubeletPort } = await startVirtualNode(t, { kubeletApi: true });
  await runPod(namespace, nodeName, 'target');
  const raw = (p: string) => kubeletRaw(kubeletPort!, p);

  const ghostPod = await raw(`/containerLogs/${namespace}/ghost/app`);
  assert.notEqual(ghostPod.code, 0);
  assert.match(ghostPod.stderr, /NotFound/);
  assert.match(ghostPod.stderr, new RegExp(`pod \\\\?"ghost\\\\?" does not exist in namespace \\\\?"${namespace}\\\\?"`));
  const ghostContainer = await raw(`/containerLogs/${namespace}/target/ghost`);
  assert.match(ghostContainer.stderr, /container \\?"ghost\\?" not found in pod \\?"target\\?"/);
  const negative = await raw(`/containerLogs/${namespace}/target/app?tailLines=-1`);
  assert.match(negative.stderr, /BadRequest/);
  assert.match(negative.stderr, /invalid tailLines -1: must be greater than or equal to 0/);
  const both = await raw(`/containerLogs/${namespace}/target/app?sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z`);
  assert.match(both.stderr, /at most one of sinceTime or sinceSeconds may be specified/);
  const noUpgrade = await raw(`/exec/${namespace}/target/app?command=ls&output=1`);
  assert.match(noUpgrade.stderr, /Upgrade request required/);
  const unknown = await raw('/no/such/path');
  assert.match(unknown.stderr, /NotFound/);

  // kubectl's own checks come first for unknown containers; through the pod log API the kubelet answers the rest.
  const notFound = await kubectl(['-n', namespace, 'logs', 'target', '-c', 'ghost'], { allowFailure: true });
  assert.match(notFound.stderr, /container ghost is not valid for pod target/);

  assert.equal((await raw('/healthz')).stdout, 'ok');
  assert.match((await kubectl(['-n', namespace, 'logs', 'target'])).stdout, /started/);
});

test('the serving certificate comes from a kubelet-serving CSR signed by the cluster CA', async (t) => {
  const { nodeName, kubeletPort } = await startVirtualNode(t, { kubeletApi: true });
  const reply = await direct(kubeletPort!, '/healthz');
  assert.equal(reply.status, 401);
  const served = reply.peer;
  assert.ok(served, 'a peer certificate');
  const ca = new X509Certificate(readFileSync(path.join(clusterInfo().pkiDir, 'ca.crt')));
  assert.ok(served.checkIssued(ca) && served.verify(ca.publicKey), 'issued by the cluster CA');
  assert.equal(served.subject, `O=system:nodes\nCN=system:node:${nodeName}`);
  assert.equal(served.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(served.checkHost(nodeName), nodeName);
  const csrs = await getJson<{
    items: {
      metadata: { name: string; labels?: Record<string, string> };
      spec: { signerName: string; usages: string[] };
      status: { conditions?: { type: string }[] };
    }[];
  }>(['get', 'csr', '-l', `virtual-kubelet.io/node=${nodeName}`]);
  assert.equal(csrs.items.length, 1);
  assert.equal(csrs.items[0]!.spec.signerName, 'kubernetes.io/kubelet-serving');
  assert.deepEqual(
    csrs.items[0]!.status.conditions?.map((c) => c.type),
    ['Approved'],
  );
});
