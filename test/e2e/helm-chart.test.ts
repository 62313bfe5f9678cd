// The Helm chart (charts/virtual-kubelet) with helm v4 built from its Go module (scripts/helm.ts):
// lint and template for the default values and every example values file; the rendered
// manifests accepted by the real API server (`kubectl apply --dry-run=server`); the values
// schema refusing an unknown key or a wrong type at `helm install`, naming it; and a real
// install: the chart's vk pod runs on a sandbox virtual node of the test cluster (image from
// `npm run image`, pulled from a local registry), reaches kube-apiserver through the
// `kubernetes` Service with its ServiceAccount, registers its own virtual node (mock provider)
// with the pod's IP as InternalIP, runs a Deployment's pods, and serves `kubectl logs` of them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import type { Node, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { parseSandboxConfig } from '../../src/providers/sandbox/config.ts';
import { checkHost, SandboxProvider } from '../../src/providers/sandbox/sandbox-provider.ts';
import type { VirtualKubelet } from '../../src/virtual-kubelet.ts';
import { buildImage, pushBuiltImage } from '../../scripts/image/build.ts';
import { ensureHelm } from '../../scripts/helm.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { adminClient, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { tempDir } from '../harness/temp.ts';
import { startNodeFor } from '../harness/virtual-node.ts';

const CHART = path.resolve(import.meta.dirname, '../../charts/virtual-kubelet');
const EXAMPLES = readdirSync(path.join(CHART, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const progress = (line: string) => process.stderr.write(`[helm] ${line}\n`);
let helmBinary = '';
// helm's (and client-go's) caches and config, for this file only.
const helmHome = mkdtempSync(path.join(os.tmpdir(), 'vk-helm-home-'));
after(() => rmSync(helmHome, { recursive: true, force: true }));

before(async () => {
  helmBinary = await ensureHelm(progress);
});

interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm against the test cluster, with its caches and config in a temp dir. */
function helm(args: string[], allowFailure = false): Promise<HelmResult> {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    KUBECONFIG: kubeconfigPath(),
    HOME: helmHome, // client-go's discovery cache goes to $HOME/.kube
    HELM_CACHE_HOME: path.join(helmHome, 'cache'),
    HELM_CONFIG_HOME: path.join(helmHome, 'config'),
    HELM_DATA_HOME: path.join(helmHome, 'data'),
  };
  return new Promise((resolve, reject) => {
    execFile(helmBinary, args, { env, maxBuffer: 16 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (code !== 0 && !allowFailure) reject(new Error(`helm ${args.join(' ')} exited ${code}:\n${stderr}${stdout}`));
      else resolve({ code, stdout, stderr });
    });
  });
}

function valuesArgs(example: string | undefined): string[] {
  return example ? ['-f', path.join(CHART, 'examples', example)] : [];
}

type Manifest = { kind: string; metadata: { name: string; namespace?: string }; [key: string]: unknown };

async function render(example: string | undefined, namespace = 'vk-system'): Promise<Manifest[]> {
  const { stdout } = await helm(['template', 'vk', CHART, '--namespace', namespace, ...valuesArgs(example)]);
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  assert.ok(found, `no ${kind}${name ? ` ${name}` : ''} rendered`);
  return found;
}

type Container = { args: string[]; env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[] };
function vkContainer(manifests: Manifest[]): Container {
  const deployment = find(manifests, 'Deployment') as unknown as { spec: { template: { spec: { containers: Container[] } } } };
  return deployment.spec.template.spec.containers[0]!;
}

function vkConfig(manifests: Manifest[]): Record<string, unknown> {
  const configMap = find(manifests, 'ConfigMap') as unknown as { data: Record<string, string> };
  return parseAllDocuments(configMap.data['config.yaml']!)[0]!.toJS() as Record<string, unknown>;
}

test('helm lint --strict passes for the default values and for every example values file', async () => {
  assert.ok(EXAMPLES.length >= 5, `examples: ${EXAMPLES.join(', ')}`);
  for (const example of [undefined, ...EXAMPLES]) {
    const result = await helm(['lint', '--strict', CHART, ...valuesArgs(example)]);
    assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `${example ?? 'default values'}: ${result.stdout}`);
  }
});

test('helm template renders what each values file asks for: the pod IP as node IP, taints, OS, TLS, provider config, RBAC by mode', async () => {
  const defaults = await render(undefined);
  const container = vkContainer(defaults);
  assert.deepEqual(container.args, ['run', '--config', '/etc/virtual-kubelet/config/config.yaml']);
  assert.equal(container.env.find((e) => e.name === 'VKUBELET_POD_IP')?.valueFrom?.fieldRef?.fieldPath, 'status.podIP');
  assert.ok(!container.args.includes('--leader-elect'));
  assert.deepEqual(vkConfig(defaults), {
    nodeName: 'vk-virtual-kubelet',
    provider: 'mock',
    kubeletPort: 10250,
    kubeletAuth: 'webhook',
    kubeletServingCert: 'csr',
    logLevel: 'info',
    labels: { 'kubernetes.io/os': 'linux' },
    taints: [{ key: 'virtual-kubelet.io/provider', value: 'mock', effect: 'NoSchedule' }],
  });
  const rules = (find(defaults, 'ClusterRole') as unknown as { rules: { resources: string[]; verbs: string[] }[] }).rules;
  const grants = Object.fromEntries(rules.flatMap((r) => r.resources.map((res) => [res, r.verbs.join(',')])));
  assert.deepEqual(grants, {
    nodes: 'get,create,patch,delete',
    'nodes/status': 'patch',
    pods: 'get,list,watch,delete',
    'pods/status': 'patch',
    events: 'create,patch',
    configmaps: 'get,list,watch',
    secrets: 'get,list,watch',
    services: 'get,list,watch',
    'serviceaccounts/token': 'create',
    tokenreviews: 'create',
    subjectaccessreviews: 'create',
    certificatesigningrequests: 'create,get',
  });
  assert.equal(find(defaults, 'Role').metadata.namespace, 'kube-node-lease');
  assert.equal(find(defaults, 'RoleBinding', 'vk-virtual-kubelet-authentication-reader').metadata.namespace, 'kube-system');

  const windows = await render('windows-no-taint.yaml');
  assert.deepEqual(vkConfig(windows).taints, []);
  assert.deepEqual(vkConfig(windows).labels, { 'kubernetes.io/os': 'windows' });
  assert.match((find(windows, 'ConfigMap') as unknown as { data: Record<string, string> }).data['provider.yaml']!, /operatingSystem: windows/);

  const tls = await render('tls-secret-and-metrics.yaml');
  assert.equal(vkConfig(tls).kubeletTlsCertFile, '/etc/virtual-kubelet/tls/tls.crt');
  assert.deepEqual(vkConfig(tls).taints, [{ key: 'example.com/virtual', value: 'true', effect: 'NoExecute' }]);
  assert.equal(find(tls, 'Service').metadata.name, 'vk-virtual-kubelet-metrics');
  find(tls, 'ServiceMonitor');
  assert.ok(!JSON.stringify(find(tls, 'ClusterRole')).includes('certificatesigningrequests'), 'no CSR rights with a TLS Secret');

  const aci = await render('aci-secret.yaml');
  assert.equal(vkConfig(aci).providerConfig, '/etc/virtual-kubelet/provider/provider.yaml');
  assert.match(JSON.stringify(find(aci, 'Deployment')), /"secretName":"vk-aci-config"/);

  assert.ok(vkContainer(await render('standby.yaml')).args.includes('--leader-elect'));

  const open = await render('webhook-off-self-signed.yaml');
  assert.equal(vkConfig(open).kubeletAuth, 'none');
  assert.ok(!open.some((m) => m.metadata.name.endsWith('-authentication-reader')));
  assert.ok(!/tokenreviews|subjectaccessreviews|certificatesigningrequests/.test(JSON.stringify(find(open, 'ClusterRole'))));
});

test('kubectl apply --dry-run=server accepts the rendered chart for the default values and every example', async (t) => {
  const namespace = await newNamespace(t, 'vk-helm-dry');
  for (const example of [undefined, ...EXAMPLES]) {
    // The ServiceMonitor needs the Prometheus Operator's CRDs, which this cluster does not have.
    const manifests = (await render(example, namespace)).filter((m) => m.kind !== 'ServiceMonitor');
    const input = manifests.map((m) => JSON.stringify(m)).join('\n');
    const result = await kubectl(['apply', '--dry-run=server', '-f', '-'], { input, allowFailure: true });
    assert.equal(result.code, 0, `${example ?? 'default values'}: ${result.stderr}`);
    assert.equal(result.stdout.trim().split('\n').length, manifests.length, result.stdout);
  }
});

test('helm install refuses a values file with an unknown key or a wrong type, naming the key, and creates nothing', async (t) => {
  const namespace = await newNamespace(t, 'vk-helm-bad');
  const dir = tempDir(t, 'vk-helm-values-');
  const cases: [string, string, RegExp][] = [
    ['unknown-key.yaml', 'taint:\n  enabled: true\n  colour: red\n', /at '\/taint': additional properties 'colour' not allowed/],
    ['wrong-type.yaml', 'replicas: two\n', /at '\/replicas': got string, want integer/],
    ['bad-enum.yaml', 'kubelet:\n  servingCert:\n    mode: acme\n', /at '\/kubelet\/servingCert\/mode': value must be one of/],
  ];
  for (const [file, content, expected] of cases) {
    writeFileSync(path.join(dir, file), content);
    const result = await helm(['install', 'bad', CHART, '--namespace', namespace, '-f', path.join(dir, file)], true);
    assert.notEqual(result.code, 0, `${file} was accepted`);
    assert.match(result.stderr, /values don't meet the specifications of the schema/, result.stderr);
    assert.match(result.stderr, expected, result.stderr);
  }
  const releases = await helm(['list', '--namespace', namespace, '--short']);
  assert.equal(releases.stdout.trim(), '');
  const left = await kubectl(['-n', namespace, 'get', 'deployments,configmaps', '-l', 'app.kubernetes.io/instance=bad', '-o', 'name']);
  assert.equal(left.stdout.trim(), '');
});

let sandboxSkip: string | false = false;
try {
  await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
} catch (err) {
  sandboxSkip = (err as Error).message;
}

test(
  "helm install: vk runs in a pod on a sandbox node, registers its node with the pod's IP, runs a Deployment there and serves kubectl logs",
  { skip: sandboxSkip },
  async (t) => {
    // Hooks run in the order registered: the release and its pods go first, while the sandbox
    // node that runs them is still up (else the node would start the pod again as it stops).
    const namespace = await newNamespace(t, 'vk-helm');
    const vkNode = randomName('vk-in-pod');
    t.after(async () => {
      await helm(['uninstall', 'vk', '--namespace', namespace, '--wait', '--timeout', '60s'], true);
      await waitFor(
        `the chart's pods gone from ${namespace}`,
        async () =>
          (await kubectl(['-n', namespace, 'get', 'pods', '-l', 'app.kubernetes.io/instance=vk', '-o', 'name'], { allowFailure: true })).stdout.trim() === '',
        { timeoutMs: 60_000 },
      ).catch(() => undefined);
      await kubectl(['delete', 'node', vkNode, '--ignore-not-found', '--wait=false'], { allowFailure: true });
    });

    // The image, pushed where the sandbox node pulls from.
    const image = await buildImage({ outDir: tempDir(t, 'vk-helm-image-'), tag: 'virtual-kubelet-ts:e2e', progress });
    const registry = await startTestRegistry();
    t.after(() => registry.stop());
    const repository = `${registry.host}/virtual-kubelet-ts`;
    await pushBuiltImage(image, `${repository}:e2e`, [], () => {});

    // The sandbox node the chart's pod lands on, with the node network (Services) on.
    const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
    const hostNode = randomName('vk-host');
    // Removed by the hook that stops the provider, which writes there until it has stopped.
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vk-helm-sandbox-'));
    const provider = await SandboxProvider.open(
      { dataDir },
      { nodeName: hostNode, nodeIP: '127.0.0.1', log, kube: await adminClient(), clusterDomain: 'cluster.local' },
    );
    const hostVk: VirtualKubelet = await startNodeFor(provider, hostNode, { kubeletApi: true, log });
    t.after(async () => {
      for (const pod of await provider.listPods({ signal: AbortSignal.timeout(30_000) })) {
        await provider.deletePod(pod, { signal: AbortSignal.timeout(30_000), reason: 'deleted' }).catch(() => undefined);
      }
      await hostVk.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    const values = path.join(tempDir(t, 'vk-helm-values-'), 'values.yaml');
    writeFileSync(
      values,
      JSON.stringify({
        image: { repository, tag: 'e2e' },
        nodeName: vkNode,
        nodeSelector: { 'kubernetes.io/hostname': hostNode },
        tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
        provider: { name: 'mock', config: { logIntervalMs: 500 } },
      }),
    );
    try {
      await helm(['install', 'vk', CHART, '--namespace', namespace, '-f', values]);

      const vkPod = await waitFor(
        'the chart pod running on the sandbox node',
        async () => {
          const r = await kubectl(['-n', namespace, 'get', 'pods', '-l', 'app.kubernetes.io/instance=vk', '-o', 'json']);
          const pod = (JSON.parse(r.stdout) as { items: Pod[] }).items[0];
          return pod?.status?.phase === 'Running' && pod.status.podIP ? pod : undefined;
        },
        { timeoutMs: 240_000 },
      );
      assert.equal(vkPod.spec?.nodeName, hostNode);
      const podIP = vkPod.status!.podIP!;

      const node = await waitFor(
        `node ${vkNode} Ready`,
        async () => {
          const r = await kubectl(['get', 'node', vkNode, '-o', 'json'], { allowFailure: true });
          const n = r.code === 0 ? (JSON.parse(r.stdout) as Node) : undefined;
          return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? n : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.deepEqual(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, podIP);
      assert.equal(node.metadata?.labels?.['kubernetes.io/os'], 'linux');
      // (The node lifecycle controller's not-ready taint may still be there for a moment.)
      assert.ok(
        node.spec?.taints?.some((x) => `${x.key}=${x.value}:${x.effect}` === 'virtual-kubelet.io/provider=mock:NoSchedule'),
        JSON.stringify(node.spec),
      );

      await kubectl(['-n', namespace, 'apply', '-f', '-'], {
        input: JSON.stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'app' },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'app' } },
            template: {
              metadata: { labels: { app: 'app' } },
              spec: {
                nodeSelector: { 'kubernetes.io/hostname': vkNode },
                tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
                containers: [{ name: 'app', image: 'example.com/app:1' }],
              },
            },
          },
        }),
      });
      const running = await waitFor(
        'both app pods Running on the in-cluster node',
        async () => {
          const r = await kubectl(['-n', namespace, 'get', 'pods', '-l', 'app=app', '-o', 'json']);
          const pods = (JSON.parse(r.stdout) as { items: Pod[] }).items;
          return pods.length === 2 && pods.every((p) => p.status?.phase === 'Running' && p.spec?.nodeName === vkNode) ? pods : undefined;
        },
        { timeoutMs: 120_000 },
      );
      // kube-apiserver → the node's InternalIP (the vk pod's IP) → the kubelet API in the pod.
      const name = running[0]!.metadata!.name!;
      const logs = await waitFor(
        `kubectl logs ${name}`,
        async () => {
          const r = await kubectl(['-n', namespace, 'logs', name, '--tail', '5'], { allowFailure: true });
          return r.code === 0 && r.stdout.trim() !== '' ? r.stdout : undefined;
        },
        { timeoutMs: 60_000 },
      );
      assert.ok(logs.trim().split('\n').length >= 1, logs);
      // The vk pod's own logs, through the sandbox node's kubelet API (it has no kubeconfig: in-cluster config only).
      const own = await kubectl(['-n', namespace, 'logs', vkPod.metadata!.name!]);
      assert.match(own.stdout, /node registered/);
    } catch (err) {
      // (newNamespace's hook prints the namespace's state.) The vk pod's own output, straight from the sandbox (its kubelet API may be what failed).
      for (const pod of await provider.listPods({ signal: AbortSignal.timeout(10_000) })) {
        for (const previous of [true, false]) {
          const options = { follow: false, previous, timestamps: false, tailLines: 40, signal: AbortSignal.timeout(10_000) };
          const stream = await provider.getContainerLogs!(namespace, pod.metadata!.name!, 'virtual-kubelet', options).catch(() => undefined);
          const text = stream ? (await stream.toArray()).join('') : '(none)';
          process.stderr.write(`----- ${pod.metadata!.name} virtual-kubelet${previous ? ' (previous)' : ''} -----\n${text}\n`);
        }
      }
      throw err;
    }
  },
);
