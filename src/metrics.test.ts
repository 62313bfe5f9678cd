import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeClient } from './kube/client.ts';
import type { Pod } from './kube/types.ts';
import { ProcessMetrics, VkMetrics, countRunning } from './metrics.ts';

const pod = (phase: string, states: ('running' | 'terminated' | 'waiting' | 'crashloop')[]): Pod => ({
  status: {
    phase,
    containerStatuses: states.map((s, i) => ({
      name: `c${i}`,
      image: 'x',
      imageID: '',
      ready: s === 'running',
      restartCount: 0,
      state:
        s === 'running'
          ? { running: {} }
          : s === 'terminated'
            ? { terminated: { exitCode: 0 } }
            : { waiting: { reason: s === 'crashloop' ? 'CrashLoopBackOff' : 'ContainerCreating' } },
      ...(s === 'crashloop' && { lastState: { terminated: { exitCode: 1 } } }),
    })),
  },
});

test('countRunning: pods with a started container, containers running or exited; finished pods and never-created containers do not count', () => {
  assert.deepEqual(
    countRunning([
      pod('Running', ['running', 'running']),
      pod('Running', ['running', 'crashloop']),
      pod('Pending', ['waiting']),
      pod('Pending', ['terminated', 'waiting']),
      pod('Succeeded', ['terminated']),
      pod('Failed', ['running']),
    ]),
    { pods: 3, running: 3, exited: 2 },
  );
});

test('two nodes in one process: each registry has its own kubelet_* series, the process series are shared and appear on both', async () => {
  const a = new VkMetrics();
  const b = new VkMetrics();
  a.setNodeName('node-a');
  b.setNodeName('node-b');
  a.podController().podCreated!(true, true);
  const textA = await a.scrapeRegistry().metrics();
  const textB = await b.scrapeRegistry().metrics();
  assert.match(textA, /^kubelet_node_name\{node="node-a"\} 1$/m);
  assert.doesNotMatch(textA, /node-b/);
  assert.match(textA, /^kubelet_started_pods_total 1$/m);
  assert.match(textA, /^kubelet_restarted_pods_total\{static="false"\} 1$/m);
  assert.match(textB, /^kubelet_started_pods_total 0$/m);
  assert.equal(a.process, b.process);
  for (const text of [textA, textB]) {
    assert.match(text, /^process_cpu_seconds_total \d/m);
    assert.match(text, /^# TYPE nodejs_heap_size_total_bytes gauge$/m);
    assert.doesNotMatch(text, /^vk_process_|^nodejs_active_handles_total/m);
  }
});

test('rest_client_requests_total: answers by code, method and host; a request without an answer is <error> (as client-go labels it)', async (t) => {
  const server = http.createServer((req, res) => {
    if (req.url === '/drop') req.socket.destroy();
    else res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","message":"nope"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = KubeClient.fromConfig({
    server: new URL(`http://${host}`),
    tls: { rejectUnauthorized: true },
    authorization: async () => undefined,
    source: 'test',
  });
  t.after(() => client.close());
  const node = new VkMetrics({ process: new ProcessMetrics() });
  node.observeClient(client);
  node.observeClient(client);
  await client.get('/missing').catch(() => {});
  await client.get('/drop').catch(() => {});
  const text = await node.scrapeRegistry().metrics();
  assert.match(text, new RegExp(`^rest_client_requests_total\\{code="404",method="GET",host="${host}"\\} 1$`, 'm'), 'counted once although observed twice');
  assert.match(text, new RegExp(`^rest_client_requests_total\\{code="<error>",method="GET",host="${host}"\\} 1$`, 'm'));
  assert.match(text, /^rest_client_request_duration_seconds_count\{verb="GET",host="[^"]+"\} 2$/m);
  assert.doesNotMatch(text, /^vk_api_requests_total\{verb="get",code="0"\}/m, 'vk_api_requests_total counts answers only');
});
