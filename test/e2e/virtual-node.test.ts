// The virtual node end to end: real control plane, real scheduler, real kubectl, mock provider.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lease, Node, Pod } from '../../src/kube/types.ts';
import { kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const TOLERATION = { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' };

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as T;
}

async function pods(namespace: string, selector: string): Promise<Pod[]> {
  return (await getJson<{ items: Pod[] }>(['-n', namespace, 'get', 'pods', '-l', selector])).items;
}

function deployment(name: string, replicas: number, nodeName: string) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { type: 'virtual-kubelet', 'kubernetes.io/hostname': nodeName },
          tolerations: [TOLERATION],
          automountServiceAccountToken: false,
          containers: [{ name: 'web', image: 'nginx:1.27' }],
        },
      },
    },
  };
}

async function apply(namespace: string, manifest: unknown): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

test('a Deployment is scheduled to the virtual node, scales to 5 and to 0; pods without the toleration stay off it', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t);

  await apply(namespace, deployment('web', 2, nodeName));
  const running = async (count: number) =>
    waitFor(`${count} Running pods on ${nodeName}`, async () => {
      const list = await pods(namespace, 'app=web');
      const ok = list.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName === nodeName);
      return ok.length === count && list.length === count ? list : undefined;
    });
  const first = await running(2);
  for (const pod of first) {
    assert.ok(pod.status?.podIP, 'pod has an IP');
    assert.equal(pod.status?.hostIP, '127.0.0.1');
    assert.equal(pod.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);
  }

  await kubectl(['-n', namespace, 'scale', 'deployment/web', '--replicas=5']);
  await running(5);
  assert.equal((await provider.listPods(call)).filter((p) => p.metadata?.namespace === namespace).length, 5);

  await kubectl(['-n', namespace, 'scale', 'deployment/web', '--replicas=0']);
  await waitFor('no pods left in the API', async () => (await pods(namespace, 'app=web')).length === 0);
  await waitFor('no pods left in the provider', async () => (await provider.listPods(call)).filter((p) => p.metadata?.namespace === namespace).length === 0);

  // Without the toleration, the provider taint keeps the scheduler away.
  const intolerant = deployment('intolerant', 1, nodeName);
  intolerant.spec.template.spec.tolerations = [];
  await apply(namespace, intolerant);
  const pending = await waitFor('the scheduler to report the intolerant pod unschedulable', async () => {
    const [pod] = await pods(namespace, 'app=intolerant');
    const scheduled = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled');
    return scheduled?.status === 'False' ? pod : undefined;
  });
  assert.equal(pending.spec?.nodeName, undefined);
  assert.match(pending.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message ?? '', /1 node\(s\) had untolerated taint/);
});

test('the Node is Ready with its version, labels and taint, renews its Lease, and follows provider health', async (t) => {
  const { provider, nodeName } = await startVirtualNode(t);
  const node = await waitFor('the Node to be Ready', async () => {
    const n = await getJson<Node>(['get', 'node', nodeName]);
    return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? n : undefined;
  });
  assert.match(node.status?.nodeInfo?.kubeletVersion ?? '', /^v1\.\d+\.\d+-vk-\d+\.\d+\.\d+$/);
  assert.equal(node.metadata?.labels?.type, 'virtual-kubelet');
  assert.equal(node.metadata?.labels?.['kubernetes.io/role'], 'agent');
  assert.equal(node.metadata?.labels?.['kubernetes.io/os'], 'linux');
  assert.equal(node.metadata?.labels?.['kubernetes.io/hostname'], nodeName);
  assert.deepEqual(
    node.spec?.taints?.find((x) => x.key === 'virtual-kubelet.io/provider'),
    { key: 'virtual-kubelet.io/provider', value: 'mock', effect: 'NoSchedule' },
  );
  assert.equal(node.status?.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
  assert.deepEqual(
    node.status?.addresses?.find((a) => a.type === 'InternalIP'),
    { type: 'InternalIP', address: '127.0.0.1' },
  );
  for (const type of ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable']) {
    assert.equal(node.status?.conditions?.find((c) => c.type === type)?.status, 'False', type);
  }
  const wide = (await kubectl(['get', 'node', nodeName, '--no-headers'])).stdout;
  assert.match(wide, new RegExp(`^${nodeName}\\s+Ready\\s+agent\\s+\\S+\\s+v1\\.\\d+\\.\\d+-vk-`));

  const lease = await getJson<Lease>(['-n', 'kube-node-lease', 'get', 'lease', nodeName]);
  assert.equal(lease.spec?.holderIdentity, nodeName);
  assert.equal(lease.metadata?.ownerReferences?.[0]?.kind, 'Node');
  await waitFor('the Lease to be renewed', async () => {
    const later = await getJson<Lease>(['-n', 'kube-node-lease', 'get', 'lease', nodeName]);
    return later.spec?.renewTime !== lease.spec?.renewTime;
  });

  provider.setHealthy(false, 'backend down for maintenance');
  const notReady = await waitFor('the Node to turn NotReady', async () => {
    const n = await getJson<Node>(['get', 'node', nodeName]);
    const ready = n.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'False' ? ready : undefined;
  });
  assert.equal(notReady.reason, 'ProviderUnhealthy');
  assert.match(notReady.message ?? '', /backend down for maintenance/);
  provider.setHealthy(true);
  await waitFor('the Node to be Ready again', async () => {
    const n = await getJson<Node>(['get', 'node', nodeName]);
    return n.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  });
});

test('env from ConfigMap, Secret, fieldRef and envFrom arrives resolved; a pod waiting on a missing ConfigMap starts once it exists', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t);
  await kubectl(['-n', namespace, 'create', 'configmap', 'settings', '--from-literal=color=blue', '--from-literal=size=L']);
  await kubectl(['-n', namespace, 'create', 'secret', 'generic', 'creds', '--from-literal=password=s3cr3t']);
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'env-pod', labels: { tier: 'front' } },
    spec: {
      nodeName,
      tolerations: [TOLERATION],
      containers: [
        {
          name: 'app',
          image: 'busybox',
          envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
          env: [
            { name: 'COLOR', valueFrom: { configMapKeyRef: { name: 'settings', key: 'color' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
            { name: 'GREETING', value: 'hello $(COLOR) $(POD_NAME)' },
            { name: 'OPTIONAL', valueFrom: { configMapKeyRef: { name: 'absent', key: 'x', optional: true } } },
          ],
        },
      ],
    },
  };
  await apply(namespace, pod);
  await waitFor('env-pod Running', async () => (await getJson<Pod>(['-n', namespace, 'get', 'pod', 'env-pod'])).status?.phase === 'Running');
  const resolved = provider.resolvedPod(namespace, 'env-pod');
  assert.ok(resolved, 'the provider received the pod');
  const env = Object.fromEntries((resolved.pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
  assert.equal(env.CFG_color, 'blue');
  assert.equal(env.CFG_size, 'L');
  assert.equal(env.COLOR, 'blue');
  assert.equal(env.PASSWORD, 's3cr3t');
  assert.equal(env.POD_NAME, 'env-pod');
  assert.equal(env.NODE, nodeName);
  assert.equal(env.TIER, 'front');
  assert.equal(env.GREETING, 'hello blue env-pod');
  assert.ok(env.KUBERNETES_SERVICE_HOST, 'service links for the kubernetes service');
  // The service-account token volume that admission adds is resolved too.
  const tokenVolume = [...resolved.volumes.values()].find((v) => v.name.startsWith('kube-api-access-'));
  assert.ok(tokenVolume && tokenVolume.type === 'files');
  assert.deepEqual(tokenVolume.files.map((f) => f.path).sort(), ['ca.crt', 'namespace', 'token']);

  // A required ConfigMap that does not exist yet keeps the pod Pending with CreateContainerConfigError and an Event.
  const waiting = structuredClone(pod);
  waiting.metadata.name = 'waits-for-config';
  waiting.spec.containers[0]!.env = [{ name: 'LATE', valueFrom: { configMapKeyRef: { name: 'late', key: 'value' } } }] as never;
  waiting.spec.containers[0]!.envFrom = [];
  await apply(namespace, waiting);
  const blocked = await waitFor('CreateContainerConfigError', async () => {
    const p = await getJson<Pod>(['-n', namespace, 'get', 'pod', 'waits-for-config']);
    return p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' ? p : undefined;
  });
  assert.equal(blocked.status?.phase, 'Pending');
  assert.match(blocked.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /late/);
  await waitFor('a Failed event naming the ConfigMap', async () => {
    const events = await getJson<{ items: { reason: string; message: string; involvedObject: { name: string } }[] }>(['-n', namespace, 'get', 'events']);
    return events.items.some((e) => e.involvedObject.name === 'waits-for-config' && e.reason === 'Failed' && /late/.test(e.message));
  });
  await kubectl(['-n', namespace, 'create', 'configmap', 'late', '--from-literal=value=arrived']);
  await waitFor(
    'the waiting pod to start by itself',
    async () => (await getJson<Pod>(['-n', namespace, 'get', 'pod', 'waits-for-config'])).status?.phase === 'Running',
    { timeoutMs: 30_000 },
  );
  assert.equal(provider.resolvedPod(namespace, 'waits-for-config')?.pod.spec?.containers[0]?.env?.find((e) => e.name === 'LATE')?.value, 'arrived');
});

test('kubectl delete pod returns once the provider has deleted it; a re-created pod of the same name is a new one', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t);
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'short-lived' },
    spec: { nodeName, tolerations: [TOLERATION], automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }] },
  };
  await apply(namespace, manifest);
  await waitFor('Running', async () => (await getJson<Pod>(['-n', namespace, 'get', 'pod', 'short-lived'])).status?.phase === 'Running');
  const firstUid = (await provider.getPod(namespace, 'short-lived', call))?.metadata?.uid;
  assert.ok(firstUid);

  await kubectl(['-n', namespace, 'delete', 'pod', 'short-lived', '--timeout=60s']);
  assert.equal(await provider.getPod(namespace, 'short-lived', call), undefined, 'gone from the provider when kubectl returns');
  assert.equal((await kubectl(['-n', namespace, 'get', 'pod', 'short-lived'], { allowFailure: true })).code, 1, 'gone from the API');

  await apply(namespace, manifest);
  await waitFor('the new incarnation Running', async () => (await getJson<Pod>(['-n', namespace, 'get', 'pod', 'short-lived'])).status?.phase === 'Running');
  const second = await provider.getPod(namespace, 'short-lived', call);
  assert.notEqual(second?.metadata?.uid, firstUid);
  assert.equal((await provider.listPods(call)).filter((p) => p.metadata?.name === 'short-lived').length, 1);
});
