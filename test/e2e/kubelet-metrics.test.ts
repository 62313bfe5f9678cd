// The kubelet's metric names on a virtual node's /metrics, end to end: scraped from the kubelet
// port as Prometheus would (admin client certificate), linted as `promtool check metrics` does,
// and moving when a pod starts. Two nodes in this process: each endpoint has only its own node's series.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VkMetrics } from '../../src/metrics.ts';
import { adminClient, clusterInfo, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { makePod } from '../harness/pods.ts';
import { lintMetrics } from '../harness/promlint.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

const TOLERATION = { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' };
/** pkg/kubelet/metrics podStartupDurationBuckets. */
const KUBELET_POD_STARTUP_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];
/** ExponentialBuckets(.005, 2.5, 14) as Go prints them (strconv.FormatFloat of the kubelet's float64s). */
const KUBELET_RUNTIME_BUCKETS = [
  0.005, 0.0125, 0.03125, 0.078125, 0.1953125, 0.48828125, 1.220703125, 3.0517578125, 7.62939453125, 19.073486328125, 47.6837158203125, 119.20928955078125,
  298.0232238769531, 745.0580596923828,
];

async function scrape(port: number): Promise<string> {
  const { stdout } = await kubectl(['--server', `https://127.0.0.1:${port}`, 'get', '--raw', '/metrics']);
  return stdout;
}

/** The value of one sample (name plus exact label set as exposed), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function bucketBounds(text: string, name: string): number[] {
  const bounds = new Set<number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"`, 'gm'))) if (m[1] !== '+Inf') bounds.add(Number(m[1]));
  return [...bounds].sort((a, b) => a - b);
}

test('a virtual node serves the kubelet-named metrics; they pass promlint and move when a pod starts', async (t) => {
  const namespace = await newNamespace(t);
  const metrics = new VkMetrics();
  metrics.observeClient(await adminClient());
  const node = await startVirtualNode(t, { kubeletApi: true, metrics });
  const other = await startVirtualNode(t, { kubeletApi: true });
  const port = node.kubeletPort!;

  const before = await scrape(port);
  assert.deepEqual(await lintMetrics(before), [], 'promtool check metrics finds no problem');
  assert.equal(sample(before, `kubelet_node_name{node="${node.nodeName}"}`), 1);
  assert.doesNotMatch(before, new RegExp(`kubelet_node_name\\{node="${other.nodeName}"\\}`));
  const startedBefore = sample(before, 'kubelet_started_pods_total');
  assert.equal(startedBefore, 0);
  assert.equal(sample(before, 'kubelet_pod_start_duration_seconds_count'), 0);
  for (const series of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.ok((sample(before, series) ?? 0) > 0, `${series} is exported`);
  }
  const host = new URL(clusterInfo().server).host;
  assert.match(before, new RegExp(`^rest_client_requests_total\\{code="200",method="GET",host="${host.replace(/\./g, '\\.')}"\\} \\d+$`, 'm'));
  assert.match(before, /^rest_client_request_duration_seconds_bucket\{le="0\.005",verb="GET",host="[^"]+"\} \d+$/m);

  const name = randomName('started');
  const pod = makePod({ name, namespace, nodeName: node.nodeName, uid: undefined, phase: null });
  delete pod.metadata!.uid;
  pod.spec!.tolerations = [TOLERATION];
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(pod) });
  const after = await waitFor('the pod start to show on /metrics', async () => {
    const text = await scrape(port);
    return sample(text, 'kubelet_pod_start_duration_seconds_count') === 1 ? text : undefined;
  });

  assert.equal(sample(after, 'kubelet_started_pods_total'), 1);
  assert.equal(sample(after, 'kubelet_started_pods_errors_total'), 0);
  assert.ok((sample(after, 'kubelet_pod_start_duration_seconds_sum') ?? -1) >= 0);
  assert.equal(sample(after, 'kubelet_pod_start_sli_duration_seconds_count{first_with_network="true"}'), 1);
  assert.equal(sample(after, 'kubelet_running_pods'), 1);
  assert.equal(sample(after, 'kubelet_running_containers{container_state="running"}'), 1);
  assert.equal(sample(after, 'kubelet_runtime_operations_total{operation_type="createPod"}'), 1);
  assert.equal(sample(after, 'kubelet_pod_worker_duration_seconds_count{operation_type="create"}'), 1);
  assert.ok((sample(after, 'kubelet_runtime_operations_duration_seconds_count{operation_type="getPod"}') ?? 0) >= 1);
  assert.deepEqual(await lintMetrics(after), [], 'promtool check metrics finds no problem after a pod start');

  // The kubelet API's provider calls count too (a log request: the pod lookup and the log stream).
  await kubectl(['--server', `https://127.0.0.1:${port}`, 'get', '--raw', `/containerLogs/${namespace}/${name}/app`]);
  const logged = await scrape(port);
  assert.equal(sample(logged, 'kubelet_runtime_operations_total{operation_type="getContainerLogs"}'), 1);

  // The kubelet's buckets.
  assert.deepEqual(bucketBounds(after, 'kubelet_pod_start_duration_seconds'), KUBELET_POD_STARTUP_BUCKETS);
  assert.deepEqual(bucketBounds(after, 'kubelet_pod_start_sli_duration_seconds'), KUBELET_POD_STARTUP_BUCKETS);
  assert.deepEqual(bucketBounds(after, 'kubelet_runtime_operations_duration_seconds'), KUBELET_RUNTIME_BUCKETS);
  assert.deepEqual(bucketBounds(after, 'kubelet_pod_worker_duration_seconds'), [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  assert.deepEqual(bucketBounds(after, 'rest_client_request_duration_seconds'), [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60]);
  assert.match(after, /^# HELP kubelet_started_pods_total \[ALPHA\] Cumulative number of pods started$/m);

  // The other node in this process saw none of it.
  const otherText = await scrape(other.kubeletPort!);
  assert.equal(sample(otherText, `kubelet_node_name{node="${other.nodeName}"}`), 1);
  assert.equal(sample(otherText, 'kubelet_started_pods_total'), 0);
  assert.equal(sample(otherText, 'kubelet_running_pods'), 0);
});
