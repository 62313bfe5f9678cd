// Pod lifecycle edge cases through the real API: completion, rejection, provider failures, poll-only providers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CoreEvent, Pod } from '../../src/kube/types.ts';
import { adminClient, kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { VkMetrics } from '../../src/metrics.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

async function getPod(namespace: string, name: string): Promise<Pod> {
  return JSON.parse((await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'])).stdout) as Pod;
}

async function events(namespace: string, podName: string): Promise<CoreEvent[]> {
  const list = JSON.parse((await kubectl(['-n', namespace, 'get', 'events', '-o', 'json'])).stdout) as { items: CoreEvent[] };
  return list.items.filter((e) => e.involvedObject.name === podName);
}

function podManifest(name: string, nodeName: string, extra: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations: extra.annotations ?? {} },
    spec: { nodeName, automountServiceAccountToken: false, containers: [{ name: 'main', image: 'busybox' }], ...extra.spec },
  };
}

/** The sum of a prom-client metric's samples with these labels. */
async function count(
  metric: { get(): Promise<{ values: { metricName?: string; labels: Record<string, string | number | undefined>; value: number }[] }> },
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  return (await metric.get()).values
    .filter((v) => (v.metricName ?? name) === name && Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Pod syncs that ended without error. */
function okSyncs(metrics: VkMetrics): Promise<number> {
  return count(metrics.syncLatency, 'vk_pod_sync_duration_seconds_count', { outcome: 'ok' });
}

async function create(namespace: string, manifest: unknown): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

test('a pod that runs to completion Succeeds with its exit status and is released in the provider', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t);
  await create(namespace, podManifest('job', nodeName, { annotations: { 'mock.vk.io/complete-after-ms': '300' }, spec: { restartPolicy: 'Never' } }));
  const done = await waitFor('Succeeded', async () => {
    const pod = await getPod(namespace, 'job');
    return pod.status?.phase === 'Succeeded' ? pod : undefined;
  });
  const terminated = done.status?.containerStatuses?.[0]?.state?.terminated;
  assert.equal(terminated?.exitCode, 0);
  assert.equal(terminated?.reason, 'Completed');
  assert.equal(done.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
  await waitFor('the provider to release the finished pod', async () => (await provider.getPod(namespace, 'job', call)) === undefined);
  const reasons = (await events(namespace, 'job')).map((e) => e.reason);
  assert.ok(reasons.includes('Created') && reasons.includes('Started'), `events: ${reasons.join(', ')}`);
  // Still in the API, as with a real kubelet, and never re-created.
  assert.equal((await getPod(namespace, 'job')).status?.phase, 'Succeeded');
  assert.equal(provider.stats().created, 1);
});

test('a failing pod with restartPolicy Never ends Failed with exit code and reason Error', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName } = await startVirtualNode(t);
  await create(
    namespace,
    podManifest('crasher', nodeName, { annotations: { 'mock.vk.io/complete-after-ms': '200', 'mock.vk.io/exit-code': '3' }, spec: { restartPolicy: 'Never' } }),
  );
  const failed = await waitFor('Failed', async () => {
    const pod = await getPod(namespace, 'crasher');
    return pod.status?.phase === 'Failed' ? pod : undefined;
  });
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'Error');
});

test('an unsupported volume ends Failed with a clear reason and an Event, and the provider never sees it', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t);
  await create(namespace, podManifest('host-path', nodeName, { spec: { volumes: [{ name: 'host', hostPath: { path: '/etc' } }] } }));
  const rejected = await waitFor('Failed', async () => {
    const pod = await getPod(namespace, 'host-path');
    return pod.status?.phase === 'Failed' ? pod : undefined;
  });
  assert.equal(rejected.status?.reason, 'UnsupportedVolume');
  assert.match(rejected.status?.message ?? '', /host.*hostPath/);
  await waitFor('a Warning event', async () => (await events(namespace, 'host-path')).some((e) => e.type === 'Warning' && /hostPath/.test(e.message ?? '')));
  assert.equal(await provider.getPod(namespace, 'host-path', call), undefined);
});

test('a provider that fails to create keeps the pod Pending with the reason, Events, and retries with backoff until it works', async (t) => {
  const namespace = await newNamespace(t);
  const { nodeName } = await startVirtualNode(t);
  await create(namespace, podManifest('flaky', nodeName, { annotations: { 'mock.vk.io/fail-create': 'quota exceeded in region' } }));
  const pending = await waitFor('ProviderCreateFailed', async () => {
    const pod = await getPod(namespace, 'flaky');
    return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ProviderCreateFailed' ? pod : undefined;
  });
  assert.equal(pending.status?.phase, 'Pending');
  assert.match(pending.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /quota exceeded in region/);
  await waitFor('Failed and BackOff events', async () => {
    const reasons = (await events(namespace, 'flaky')).map((e) => e.reason);
    return reasons.includes('Failed') && reasons.includes('BackOff');
  });
  // The fault clears: the next retry creates the pod.
  await kubectl(['-n', namespace, 'annotate', 'pod', 'flaky', 'mock.vk.io/fail-create-']);
  await waitFor('Running after the fault clears', async () => (await getPod(namespace, 'flaky')).status?.phase === 'Running', { timeoutMs: 30_000 });
});

test('a provider that only answers polls (no push) still gets its pods Running and their status updated', async (t) => {
  const namespace = await newNamespace(t);
  const { provider, nodeName } = await startVirtualNode(t, { mockConfig: { notify: false, lifecycle: { runningDelayMs: 300 } } });
  assert.equal(provider.notifyPods, undefined, 'poll-only provider');
  await create(namespace, podManifest('polled', nodeName, { annotations: { 'mock.vk.io/complete-after-ms': '1500' }, spec: { restartPolicy: 'Never' } }));
  await waitFor('Running through polling', async () => (await getPod(namespace, 'polled')).status?.phase === 'Running');
  await waitFor('Succeeded through polling', async () => (await getPod(namespace, 'polled')).status?.phase === 'Succeeded');
});

test('resyncs of a Running pod write nothing: the status read back from the API server equals what was written', async (t) => {
  const namespace = await newNamespace(t);
  const metrics = new VkMetrics();
  // Counts this file's in-process client: only this test's node uses it while the test runs.
  metrics.observeClient(await adminClient());
  const { nodeName } = await startVirtualNode(t, { metrics, node: { resyncIntervalMs: 200 } });
  await create(namespace, podManifest('steady', nodeName));
  const running = await waitFor('Running', async () => {
    const pod = await getPod(namespace, 'steady');
    return pod.status?.phase === 'Running' ? pod : undefined;
  });
  const syncs = () => okSyncs(metrics);
  const patches = () => count(metrics.apiRequests, 'vk_api_requests_total', { verb: 'patch' });
  const [syncsBefore, patchesBefore] = [await syncs(), await patches()];
  await waitFor('ten more syncs of the pod', async () => (await syncs()) >= syncsBefore + 10, { intervalMs: 50 });
  assert.equal(await patches(), patchesBefore, 'no status patch after Running');
  assert.equal((await getPod(namespace, 'steady')).metadata?.resourceVersion, running.metadata?.resourceVersion);
});

test('a running pod gets new ConfigMap volume contents; an env-only change updates nothing; a deleted ConfigMap keeps the last contents with a FailedMount Warning', async (t) => {
  const namespace = await newNamespace(t);
  const metrics = new VkMetrics();
  const { provider, nodeName } = await startVirtualNode(t, { metrics });
  const configMap = (name: string, data: Record<string, string>) =>
    kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data }) });
  await configMap('files', { 'app.conf': 'v1' });
  await configMap('env', { MODE: 'a' });
  await create(
    namespace,
    podManifest('follows', nodeName, {
      spec: {
        volumes: [{ name: 'cfg', configMap: { name: 'files' } }],
        containers: [{ name: 'main', image: 'busybox', envFrom: [{ configMapRef: { name: 'env' } }], volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }] }],
      },
    }),
  );
  await waitFor('Running', async () => (await getPod(namespace, 'follows')).status?.phase === 'Running');
  const content = () => {
    const volume = provider.resolvedPod(namespace, 'follows')?.volumes.get('cfg');
    return volume?.type === 'files' ? Buffer.from(volume.files.find((f) => f.path === 'app.conf')?.content ?? []).toString() : undefined;
  };
  assert.equal(content(), 'v1');
  const updatesBefore = provider.stats().updated;

  await configMap('files', { 'app.conf': 'v2' });
  await waitFor('the new contents in the provider', () => content() === 'v2');
  assert.equal(provider.stats().updated, updatesBefore + 1);

  // Env of a running container never changes: the pod is synced again, but not updated.
  const syncs = () => okSyncs(metrics);
  const syncsBefore = await syncs();
  await configMap('env', { MODE: 'b' });
  await waitFor('a sync after the env ConfigMap changed', async () => (await syncs()) > syncsBefore, { intervalMs: 50 });
  assert.equal(provider.stats().updated, updatesBefore + 1);
  assert.equal(provider.resolvedPod(namespace, 'follows')?.pod.spec?.containers[0]?.env?.find((e) => e.name === 'MODE')?.value, 'a');

  await kubectl(['-n', namespace, 'delete', 'configmap', 'files']);
  await waitFor('a FailedMount Warning', async () =>
    (await events(namespace, 'follows')).some((e) => e.reason === 'FailedMount' && /files/.test(e.message ?? '')),
  );
  assert.equal(content(), 'v2');
  assert.equal((await getPod(namespace, 'follows')).status?.phase, 'Running');
});
