import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from './kube/types.ts';
import { VkMetrics, countRunning } from './metrics.ts';

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
