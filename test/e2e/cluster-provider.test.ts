// The cluster provider end to end: a second local control plane is the target cluster, its only
// node a virtual node with the sandbox provider (busybox from the test registry), so burst pods
// really run. On the harness's cluster (the source) a virtual node with the cluster provider;
// everything is driven with the source cluster's kubectl.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { before, test } from 'node:test';
import type { ConfigMap, CoreEvent, Node, ObjectList, Pod, Secret } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { ClusterProvider } from '../../src/providers/cluster/cluster-provider.ts';
import { LABEL_NODE, LABEL_UID } from '../../src/providers/cluster/names.ts';
import type { VirtualKubelet } from '../../src/virtual-kubelet.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { adminClient, fileScope, kubeconfigPath, kubectl, randomName, spawnKubectl, waitFor, type Scope } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { startTargetCluster, type TargetCluster } from '../harness/target-cluster.ts';
import { tempDir } from '../harness/temp.ts';
import { startNodeFor } from '../harness/virtual-node.ts';
import { startVkProcess } from '../harness/vk-process.ts';

const scope = fileScope();
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
const skip = sandboxSkip;

let target: TargetCluster;
let image = '';
let nodeName = '';
let namespace = '';
let forbiddenNamespace = '';
let configDir = '';
let sourceVk: VirtualKubelet;

async function startClusterNode(t: Scope, name: string, config: Record<string, unknown>): Promise<VirtualKubelet> {
  const client = await adminClient();
  const provider = await ClusterProvider.open(config, { nodeName: name, nodeIP: '127.0.0.1', log, kube: client });
  const vk = await startNodeFor(provider, name, { kubeletApi: true, log, client });
  t.after(() => vk.stop());
  return vk;
}

before(async () => {
  if (skip) return;
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: '1.36' })).reference;
  target = await startTargetCluster(scope, { provider: 'sandbox', nodeName: randomName('vk-target') });
  configDir = tempDir(scope, 'vk-cluster-provider-');
  namespace = randomName('burst');
  forbiddenNamespace = randomName('no-burst');
  for (const ns of [namespace, forbiddenNamespace]) {
    await kubectl(['create', 'namespace', ns]);
    scope.after(() => kubectl(['delete', 'namespace', ns, '--wait=false'], { allowFailure: true }));
    await waitFor(`ServiceAccount default in ${ns}`, async () => (await kubectl(['-n', ns, 'get', 'sa', 'default'], { allowFailure: true })).code === 0);
  }
  nodeName = randomName('vk-cluster');
  sourceVk = await startClusterNode(scope, nodeName, {
    kubeconfig: target.kubeconfig,
    namespaces: { allow: [namespace] },
    // The target's only node is a virtual node, tainted as such.
    scheduling: { tolerations: [{ operator: 'Exists' }] },
    labels: { 'topology.kubernetes.io/region': 'target-1' },
    capacityRefreshMs: 1000,
    requestTimeoutMs: 5000,
  });
});

function podSpec(containers: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    nodeSelector: { 'kubernetes.io/hostname': nodeName },
    tolerations: [{ operator: 'Exists' }],
    terminationGracePeriodSeconds: 2,
    containers,
    ...extra,
  };
}

async function apply(ns: string, manifest: unknown): Promise<void> {
  await kubectl(['-n', ns, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

async function sourcePods(ns: string, selector: string): Promise<Pod[]> {
  return (JSON.parse((await kubectl(['-n', ns, 'get', 'pods', '-l', selector, '-o', 'json'])).stdout) as ObjectList<Pod>).items;
}

async function targetList<T>(kind: string, selector: string): Promise<T[]> {
  return (JSON.parse((await target.kubectl(['get', kind, '-A', '-l', selector, '-o', 'json'])).stdout) as ObjectList<T>).items;
}

async function sourcePod(ns: string, name: string): Promise<Pod | undefined> {
  const result = await kubectl(['-n', ns, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Pod) : undefined;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function waitRunning(ns: string, name: string): Promise<Pod> {
  let last: Pod | undefined;
  return waitFor(
    () => `pod ${name} Running (last status: ${JSON.stringify(last?.status)})`,
    async () => {
      const pod = (last = await sourcePod(ns, name));
      return pod?.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.state?.running) ? pod : undefined;
    },
  );
}

test(
  'a Deployment of 3 httpd pods runs in the target with its podIPs, volumes, Secret env; a ConfigMap change arrives; scale to 0 leaves nothing',
  { skip },
  async () => {
    const password = `s3cret-${randomName('pw')}`;
    await apply(namespace, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site' }, data: { 'index.html': 'version 1\n' } });
    await apply(namespace, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { password } });
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: podSpec(
            [
              {
                name: 'httpd',
                image,
                // Bound to the pod's address only: $(POD_IP) is expanded by the target's kubelet.
                command: ['httpd', '-f', '-p', '$(ADDR)', '-h', '/site'],
                env: [
                  { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
                  { name: 'PLAIN', value: 'plain-value' },
                  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                  { name: 'ADDR', value: '$(POD_IP):8080' },
                ],
                volumeMounts: [{ name: 'site', mountPath: '/site' }],
              },
            ],
            { volumes: [{ name: 'site', configMap: { name: 'site' } }] },
          ),
        },
      },
    };
    await apply(namespace, deployment);
    const pods = await waitFor(
      '3 web pods Running in the source cluster',
      async () => {
        const items = await sourcePods(namespace, 'app=web');
        return items.length === 3 && items.every((p) => p.status?.phase === 'Running' && p.status.podIP) ? items : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const targets = await targetList<Pod>('pods', `${LABEL_NODE}=${nodeName}`);
    assert.equal(targets.length, 3, 'one target pod per source pod');
    for (const pod of pods) {
      const twin = targets.find((p) => p.metadata?.labels?.[LABEL_UID] === pod.metadata?.uid);
      assert.ok(twin, `target pod for ${pod.metadata?.name}`);
      assert.equal(twin.metadata?.name, pod.metadata?.name);
      assert.equal(twin.metadata?.namespace, namespace);
      assert.equal(pod.status?.podIP, twin.status?.podIP, 'the source pod reports the podIP the target reports');
      assert.equal(twin.spec?.nodeName, target.nodeName);
      // The real process answers on the target's pod IP, serving the ConfigMap volume.
      assert.equal(await get(`http://${twin.status!.podIP}:8080/index.html`), 'version 1\n');
      const text = JSON.stringify(twin.spec);
      assert.ok(!text.includes(password), 'the Secret-backed value is not in the target pod spec');
      const env = twin.spec!.containers[0]!.env!;
      assert.ok(env.find((e) => e.name === 'PASSWORD')?.valueFrom?.secretKeyRef, 'the Secret-backed variable arrives through secretKeyRef');
      assert.equal(env.find((e) => e.name === 'PLAIN')?.value, 'plain-value', 'a literal stays in clear');
      assert.equal(twin.spec?.automountServiceAccountToken, false, "the target's own token is not mounted");
    }
    // The kubernetes Service variables: the container sees the source's; the target pod's spec
    // carries them only when the target kubelet would set other values by itself.
    type ServiceIP = { spec?: { clusterIP?: string } };
    const sourceIP = (await (await adminClient()).get<ServiceIP>('/api/v1/namespaces/default/services/kubernetes')).spec?.clusterIP;
    const targetIP = (await target.client.get<ServiceIP>('/api/v1/namespaces/default/services/kubernetes')).spec?.clusterIP;
    for (const twin of targets) {
      const carried = twin.spec!.containers[0]!.env!.some((e) => e.name === 'KUBERNETES_SERVICE_HOST');
      assert.equal(carried, sourceIP !== targetIP, `KUBERNETES_SERVICE_HOST in the target spec (source ${sourceIP}, target ${targetIP})`);
    }
    const [first] = pods;
    const exec = await kubectl([
      '-n',
      namespace,
      'exec',
      first!.metadata!.name!,
      '--',
      'sh',
      '-c',
      'echo $PASSWORD $PLAIN $KUBERNETES_SERVICE_HOST $POD_IP $ADDR; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace',
    ]);
    // POD_IP (the downward API's status.podIP): the address the pod got in the target, which the source pod reports.
    const ip = first!.status!.podIP;
    assert.equal(exec.stdout, `${password} plain-value ${sourceIP} ${ip} ${ip}:8080\n${namespace}`);
    // The source cluster's ServiceAccount token: its issuer is the source's API server.
    const token = (await kubectl(['-n', namespace, 'exec', first!.metadata!.name!, '--', 'cat', '/var/run/secrets/kubernetes.io/serviceaccount/token'])).stdout;
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { 'kubernetes.io'?: { pod?: { uid?: string } } };
    assert.equal(claims['kubernetes.io']?.pod?.uid, first!.metadata!.uid, 'the token is bound to the source pod');

    await apply(namespace, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site' }, data: { 'index.html': 'version 2\n' } });
    await waitFor(
      'the ConfigMap change in the running pod in the target',
      async () => (await get(`http://${first!.status!.podIP}:8080/index.html`)) === 'version 2\n',
      { timeoutMs: 90_000 },
    );

    await kubectl(['-n', namespace, 'scale', 'deployment', 'web', '--replicas=0']);
    await waitFor('no web pods in the source', async () => (await sourcePods(namespace, 'app=web')).length === 0, { timeoutMs: 90_000 });
    await waitFor(
      'no pods, ConfigMaps or Secrets of the node left in the target',
      async () => {
        const [p, c, s] = await Promise.all([
          targetList<Pod>('pods', `${LABEL_NODE}=${nodeName}`),
          targetList<ConfigMap>('configmaps', `${LABEL_NODE}=${nodeName}`),
          targetList<Secret>('secrets', `${LABEL_NODE}=${nodeName}`),
        ]);
        return p.length + c.length + s.length === 0;
      },
      { timeoutMs: 90_000 },
    );
    await kubectl(['-n', namespace, 'delete', 'deployment', 'web']);
  },
);

test('kubectl logs -f, exec -i with 1 MB of stdin, exec -it, attach and port-forward reach the real processes', { skip }, async (t) => {
  await apply(namespace, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'talk' },
    spec: podSpec([
      { name: 'ticker', image, command: ['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done'] },
      { name: 'echo', image, stdin: true, command: ['sh', '-c', 'while read l; do echo got: $l; done'] },
      { name: 'web', image, command: ['sh', '-c', 'mkdir -p /www && echo hello through port-forward > /www/index.html && exec httpd -f -p 8080 -h /www'] },
    ]),
  });
  await waitRunning(namespace, 'talk');

  const logs = spawnKubectl(t, ['-n', namespace, 'logs', '-f', 'talk', '-c', 'ticker', '--tail=1']);
  await waitFor('kubectl logs -f to stream new lines', () => (logs.out().match(/tick \d+/g) ?? []).length >= 3, { timeoutMs: 30_000 });
  const tail = await kubectl(['-n', namespace, 'logs', 'talk', '-c', 'ticker', '--tail=2', '--timestamps']);
  assert.equal(tail.stdout.trim().split('\n').length, 2);
  assert.match(tail.stdout, /^\d{4}-\d{2}-\d{2}T\S+ tick \d+$/m);

  const input = 'x'.repeat(1 << 20);
  const counted = await kubectl(['-n', namespace, 'exec', '-i', 'talk', '-c', 'web', '--', 'wc', '-c'], { input });
  assert.equal(counted.stdout.trim(), String(1 << 20));
  const failing = await kubectl(['-n', namespace, 'exec', 'talk', '-c', 'web', '--', 'sh', '-c', 'exit 7'], { allowFailure: true });
  assert.equal(failing.code, 7, 'the exit code travels back');

  // util-linux `script` gives kubectl a terminal, so it asks for a TTY.
  const tty = await new Promise<{ out: string; code: number | null }>((resolve) => {
    const command = `${process.env.VK_TEST_KUBECTL} -n ${namespace} exec -it talk -c web -- sh -c 'test -t 0 && test -t 1 && echo is a tty; exit 5'`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, KUBECONFIG: kubeconfigPath(), TERM: 'xterm' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ out, code }));
  });
  assert.match(tty.out, /is a tty\r\n/, 'a pty in the target container, with CRLF line ends');
  assert.equal(tty.code, 5);

  const attach = spawnKubectl(t, ['-n', namespace, 'attach', '-i', 'talk', '-c', 'echo']);
  await waitFor(
    'attach to echo stdin back',
    () => {
      attach.child.stdin!.write('hello attach\n');
      return attach.out().includes('got: hello attach');
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );

  const forward = spawnKubectl(t, ['-n', namespace, 'port-forward', 'pod/talk', ':8080']);
  const port = await waitFor('port-forward to listen', () => /127\.0\.0\.1:(\d+)/.exec(forward.out())?.[1], { timeoutMs: 30_000 });
  assert.equal(await get(`http://127.0.0.1:${port}/index.html`), 'hello through port-forward\n');
  await kubectl(['-n', namespace, 'delete', 'pod', 'talk', '--wait=false']);
});

async function podEvents(ns: string, name: string): Promise<CoreEvent[]> {
  const out = await kubectl(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json']);
  return (JSON.parse(out.stdout) as ObjectList<CoreEvent>).items;
}

test(
  'a name taken in the target by a pod we did not create: the source pod fails with NameCollision and an Event; the other pod is untouched',
  { skip },
  async () => {
    await target.kubectl(['create', 'namespace', namespace], { allowFailure: true });
    await waitFor(
      'default ServiceAccount in the target namespace',
      async () => (await target.kubectl(['-n', namespace, 'get', 'sa', 'default'], { allowFailure: true })).code === 0,
    );
    await target.kubectl([
      '-n',
      namespace,
      'run',
      'taken',
      `--image=${image}`,
      '--restart=Never',
      '--overrides',
      JSON.stringify({ spec: { nodeSelector: { 'kubernetes.io/hostname': 'nowhere' } } }),
    ]);
    const before = JSON.parse((await target.kubectl(['-n', namespace, 'get', 'pod', 'taken', '-o', 'json'])).stdout) as Pod;
    await apply(namespace, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'taken' }, spec: podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]) });
    const failed = await waitFor('the source pod Failed', async () =>
      (await sourcePod(namespace, 'taken'))?.status?.phase === 'Failed' ? sourcePod(namespace, 'taken') : undefined,
    );
    assert.equal(failed?.status?.reason, 'NameCollision');
    assert.match(failed?.status?.message ?? '', /did not create already exists in the target cluster/);
    await waitFor('a NameCollision Event', async () => (await podEvents(namespace, 'taken')).some((e) => e.reason === 'NameCollision' && e.type === 'Warning'));
    const after = JSON.parse((await target.kubectl(['-n', namespace, 'get', 'pod', 'taken', '-o', 'json'])).stdout) as Pod;
    assert.equal(after.metadata?.uid, before.metadata?.uid, 'the target pod was not touched');
    assert.equal(after.metadata?.labels?.[LABEL_NODE], undefined);
  },
);

test('a namespace the config does not let burst: the pod fails with NamespaceNotAllowed and an Event', { skip }, async () => {
  await apply(forbiddenNamespace, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'denied' },
    spec: podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]),
  });
  const failed = await waitFor('the pod Failed', async () => {
    const pod = await sourcePod(forbiddenNamespace, 'denied');
    return pod?.status?.phase === 'Failed' ? pod : undefined;
  });
  assert.equal(failed.status?.reason, 'NamespaceNotAllowed');
  await waitFor('a NamespaceNotAllowed Event', async () => (await podEvents(forbiddenNamespace, 'denied')).some((e) => e.reason === 'NamespaceNotAllowed'));
  assert.equal((await target.kubectl(['get', 'namespace', forbiddenNamespace], { allowFailure: true })).code, 1, 'nothing was made in the target');
});

test('an unreachable target and wrong credentials: the node is NotReady and its TargetClusterReachable condition says why', { skip }, async (t) => {
  const unreachable = path.join(configDir, 'unreachable.kubeconfig');
  writeFileSync(unreachable, kubeconfigFor('https://127.0.0.1:1', { token: 'x' }));
  const server = new URL(target.cluster.info.server).origin;
  const wrong = path.join(configDir, 'wrong.kubeconfig');
  writeFileSync(wrong, kubeconfigFor(server, { token: 'not-a-valid-token' }));
  const cases = [
    { file: unreachable, reason: 'Unreachable', message: /127\.0\.0\.1:1 is unreachable/ },
    { file: wrong, reason: 'Unauthorized', message: /rejected our credentials \(401 Unauthorized/ },
  ];
  for (const c of cases) {
    const name = randomName('vk-bad');
    await startClusterNode(t, name, { kubeconfig: c.file, requestTimeoutMs: 1000 });
    const node = await waitFor(`node ${name} NotReady (${c.reason})`, async () => {
      const n = JSON.parse((await kubectl(['get', 'node', name, '-o', 'json'])).stdout) as Node;
      const ready = n.status?.conditions?.find((x) => x.type === 'Ready');
      const reach = n.status?.conditions?.find((x) => x.type === 'TargetClusterReachable');
      return ready?.status === 'False' && reach?.reason === c.reason ? n : undefined;
    });
    const ready = node.status!.conditions!.find((x) => x.type === 'Ready')!;
    assert.match(ready.message ?? '', c.message);
    assert.equal(node.status!.conditions!.find((x) => x.type === 'TargetClusterReachable')!.status, 'False');
  }
});

test("the virtual node's /stats/summary and /metrics/resource show a burst pod with the CPU and memory the target measures", { skip }, async () => {
  await apply(namespace, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'busy' },
    spec: podSpec([{ name: 'spin', image, command: ['sh', '-c', 'while true; do :; done'] }]),
  });
  const pod = await waitRunning(namespace, 'busy');
  const port = sourceVk.kubeletApi!.port;
  // The source node publishes 127.0.0.1, which kube-apiserver will not proxy to: the kubelet port itself, as kubectl get --raw.
  const raw = async (p: string) => (await kubectl(['--server', `https://127.0.0.1:${port}`, 'get', '--raw', p])).stdout;
  interface Usage {
    podRef: { namespace: string; name: string; uid: string };
    containers: { name: string; cpu?: { usageNanoCores?: number; usageCoreNanoSeconds?: number }; memory?: { workingSetBytes?: number } }[];
  }
  const stats = await waitFor(
    'the pod in the source node summary with non-zero CPU and memory',
    async () => {
      const summary = JSON.parse(await raw('/stats/summary')) as { pods: Usage[] };
      const entry = summary.pods.find((p) => p.podRef.uid === pod.metadata?.uid);
      const c = entry?.containers.find((x) => x.name === 'spin');
      return c && (c.cpu?.usageNanoCores ?? 0) > 0 && (c.memory?.workingSetBytes ?? 0) > 0 ? entry : undefined;
    },
    { timeoutMs: 60_000 },
  );
  assert.equal(stats.podRef.namespace, namespace);
  assert.equal(stats.podRef.name, 'busy');
  assert.ok((stats.containers[0]!.cpu?.usageCoreNanoSeconds ?? 0) > 0, 'cumulative CPU from the target node summary');
  const metrics = await raw('/metrics/resource');
  const line = new RegExp(`^container_memory_working_set_bytes\\{container="spin",namespace="${namespace}",pod="busy"\\} (\\d+)`, 'm').exec(metrics);
  assert.ok(line && Number(line[1]) > 0, `the container's memory in /metrics/resource:\n${metrics}`);
  await kubectl(['-n', namespace, 'delete', 'pod', 'busy', '--wait=false']);
});

function kubeconfigFor(server: string, user: { token: string }): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'c',
  });
}

test('kill -9 of vk while a pod is created and another deleted: after restart exactly one target pod per source pod', { skip }, async (t) => {
  const name = randomName('vk-crash');
  const config = path.join(configDir, 'crash.yaml');
  writeFileSync(
    config,
    JSON.stringify({ kubeconfig: target.kubeconfig, namespaces: { allow: [namespace] }, scheduling: { tolerations: [{ operator: 'Exists' }] } }),
  );
  const args = ['run', '--kubeconfig', kubeconfigPath(), '--node-name', name, '--node-ip', '127.0.0.1', '--kubelet-port', '0', '--kubelet-auth', 'none'];
  args.push('--kubelet-serving-cert', 'self-signed', '--provider', 'cluster', '--provider-config', config, '--resync-interval', '5s', '--log-level', 'info');
  const vk = startVkProcess(t, args);
  t.after(async () => {
    await kubectl(['delete', 'node', name, '--wait=false'], { allowFailure: true });
  });
  const pod = (podName: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, labels: { crash: name } },
    spec: { ...podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]), nodeSelector: { 'kubernetes.io/hostname': name } },
  });
  await apply(namespace, pod('stays'));
  await apply(namespace, pod('goes'));
  await waitRunning(namespace, 'stays');
  await waitRunning(namespace, 'goes');
  // The changes land while vk works on them, then it dies.
  await apply(namespace, pod('arrives'));
  await kubectl(['-n', namespace, 'delete', 'pod', 'goes', '--wait=false']);
  await waitFor('vk to have started on the changes', async () =>
    (await targetList<Pod>('pods', `${LABEL_NODE}=${name}`)).some((p) => p.metadata?.name === 'arrives' || p.metadata?.deletionTimestamp),
  );
  await vk.kill9();
  vk.start();
  await waitRunning(namespace, 'arrives');
  await waitFor('the deleted pod gone from the source', async () => (await sourcePod(namespace, 'goes')) === undefined, { timeoutMs: 60_000 });
  const live = await sourcePods(namespace, `crash=${name}`);
  const twins = await waitFor('exactly one target pod per source pod', async () => {
    const pods = (await targetList<Pod>('pods', `${LABEL_NODE}=${name}`)).filter((p) => !p.metadata?.deletionTimestamp);
    return pods.length === live.length ? pods : undefined;
  });
  assert.deepEqual(twins.map((p) => p.metadata?.labels?.[LABEL_UID]).sort(), live.map((p) => p.metadata?.uid).sort());
  assert.deepEqual(twins.map((p) => p.metadata?.name).sort(), ['arrives', 'stays']);
  for (const p of live) await kubectl(['-n', namespace, 'delete', 'pod', p.metadata!.name!, '--wait=false']);
});

test(
  'the target control plane down for 20 s: the node goes NotReady with the reason and back; statuses resume; nothing lost or duplicated',
  { skip },
  async () => {
    await apply(namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'steady', labels: { outage: 'yes' } },
      spec: podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]),
    });
    const before = await waitRunning(namespace, 'steady');
    const condition = async (type: string) =>
      (JSON.parse((await kubectl(['get', 'node', nodeName, '-o', 'json'])).stdout) as Node).status?.conditions?.find((c) => c.type === type);
    const restarting = target.restart(20_000);
    await waitFor('the node NotReady while the target is down', async () => {
      const [ready, reach] = await Promise.all([condition('Ready'), condition('TargetClusterReachable')]);
      return ready?.status === 'False' && reach?.status === 'False' && reach.reason === 'Unreachable' && /is unreachable/.test(ready.message ?? '');
    });
    // A pod created during the outage waits, then runs once the target is back.
    await apply(namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'during', labels: { outage: 'yes' } },
      spec: podSpec([{ name: 'c', image, command: ['sleep', '3600'] }]),
    });
    await restarting;
    await waitFor(
      'the node Ready again',
      async () => (await condition('Ready'))?.status === 'True' && (await condition('TargetClusterReachable'))?.status === 'True',
      { timeoutMs: 90_000 },
    );
    await waitRunning(namespace, 'during');
    const after = await waitRunning(namespace, 'steady');
    assert.equal(after.metadata?.uid, before.metadata?.uid);
    assert.equal(after.status?.podIP, before.status?.podIP, 'the pod kept running in the target');
    const twins = (await targetList<Pod>('pods', `${LABEL_NODE}=${nodeName}`)).filter((p) => ['steady', 'during'].includes(p.metadata?.name ?? ''));
    assert.equal(twins.length, 2, 'one target pod each, no duplicates');
    // Statuses resume: an exit code in the target shows up in the source.
    await apply(namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'exits', labels: { outage: 'yes' } },
      spec: podSpec([{ name: 'c', image, command: ['sh', '-c', 'sleep 1; exit 3'] }], { restartPolicy: 'Never' }),
    });
    const exited = await waitFor('exits Failed with exit code 3 mirrored', async () => {
      const pod = await sourcePod(namespace, 'exits');
      return pod?.status?.phase === 'Failed' ? pod : undefined;
    });
    assert.equal(exited.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
    await kubectl(['-n', namespace, 'delete', 'pod', '-l', 'outage=yes', '--wait=false']);
  },
);
