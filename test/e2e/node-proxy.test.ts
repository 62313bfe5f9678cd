// kubectl get --raw /api/v1/nodes/<node>/proxy/...: kube-apiserver proxies to the kubelet API of a
// node that lives at a test host's address (it refuses loopback addresses).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { createTestHost, testHostsSupported } from '../harness/test-host.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

test("stats/summary, metrics/resource and pods through the API server node proxy parse as the kubelet's formats", { skip: testHostsSupported() }, async (t) => {
  const host = await createTestHost(t);
  const port = await freePort(host.hostAddress);
  await host.forward(port);
  const namespace = await newNamespace(t);
  const { nodeName } = await startVirtualNode(t, { kubeletApi: { address: host.hostAddress }, node: { nodeIP: host.address, kubeletPort: port } });
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'measured' },
    spec: { nodeName, automountServiceAccountToken: false, containers: [{ name: 'app', image: 'busybox' }] },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  await waitFor(
    'the pod Running',
    async () => JSON.parse((await kubectl(['-n', namespace, 'get', 'pod', 'measured', '-o', 'json'])).stdout).status?.phase === 'Running',
  );

  const summary = JSON.parse((await kubectl(['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/stats/summary`])).stdout);
  assert.equal(summary.node.nodeName, nodeName);
  const pod = summary.pods.find((p: { podRef: { name: string } }) => p.podRef.name === 'measured');
  assert.ok(pod, 'the pod is in the summary');
  assert.equal(pod.podRef.namespace, namespace);
  assert.equal(pod.containers[0].name, 'app');
  assert.ok(pod.containers[0].cpu.usageNanoCores >= 0);
  assert.ok(pod.containers[0].memory.workingSetBytes > 0);

  const metrics = (await kubectl(['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/metrics/resource`])).stdout;
  for (const name of [
    'node_cpu_usage_seconds_total',
    'node_memory_working_set_bytes',
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'pod_cpu_usage_seconds_total',
    'pod_memory_working_set_bytes',
  ]) {
    assert.match(metrics, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.match(metrics, new RegExp(`^container_memory_working_set_bytes\\{container="app",namespace="${namespace}",pod="measured"\\} \\d+`, 'm'));

  const pods = JSON.parse((await kubectl(['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/pods`])).stdout);
  assert.equal(pods.kind, 'PodList');
  assert.ok(pods.items.some((p: { metadata: { name: string } }) => p.metadata.name === 'measured'));
  assert.equal((await kubectl(['get', '--raw', `/api/v1/nodes/${nodeName}/proxy/healthz`])).stdout, 'ok');
});
