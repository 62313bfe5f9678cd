import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../../kube/types.ts';
import type { Summary } from '../../kubelet-api/stats.ts';
import { ownership } from './names.ts';
import { fromPodMetrics, fromSummaries } from './stats.ts';

function targetPod(name: string, uid: string, source: { namespace: string; name: string; uid: string }, nodeName = 'vk'): Pod {
  const { labels, annotations } = ownership(nodeName, source);
  return { metadata: { namespace: 'mapped', name, uid, labels, annotations }, spec: { nodeName: 't1', containers: [] }, status: { phase: 'Running' } };
}

const ours = targetPod('web-abc', 't-uid-1', { namespace: 'team', name: 'web', uid: 's-uid-1' });
const someoneElses = targetPod('other', 't-uid-2', { namespace: 'team', name: 'other', uid: 's-uid-2' }, 'another-node');

test("a target node's summary: our pods (by target UID) come back under their source namespace, name and UID; others are left out", () => {
  const time = '2026-01-01T00:00:00Z';
  const summary: Summary = {
    node: { nodeName: 't1', startTime: time },
    pods: [
      {
        podRef: { namespace: 'mapped', name: 'web-abc', uid: 't-uid-1' },
        containers: [
          {
            name: 'app',
            startTime: time,
            cpu: { time, usageNanoCores: 5_000_000, usageCoreNanoSeconds: 9e9 },
            memory: { time, workingSetBytes: 4096, usageBytes: 8192 },
          },
        ],
      },
      { podRef: { namespace: 'mapped', name: 'other', uid: 't-uid-2' }, containers: [{ name: 'app', startTime: time }] },
      { podRef: { namespace: 'x', name: 'unrelated', uid: 't-uid-3' }, containers: [] },
    ],
  };
  assert.deepEqual(fromSummaries([summary], [ours, someoneElses], 'vk'), [
    {
      namespace: 'team',
      name: 'web',
      uid: 's-uid-1',
      containers: [{ name: 'app', cpuUsageNanoCores: 5_000_000, cpuUsageCoreNanoSeconds: 9e9, memoryWorkingSetBytes: 4096, memoryUsageBytes: 8192 }],
    },
  ]);
});

test('metrics.k8s.io PodMetrics: quantities become nano-cores and bytes, matched by target namespace and name', () => {
  const items = [
    { metadata: { namespace: 'mapped', name: 'web-abc' }, containers: [{ name: 'app', usage: { cpu: '1500000n', memory: '2Mi' } }] },
    { metadata: { namespace: 'mapped', name: 'gone' }, containers: [{ name: 'app', usage: { cpu: '1m', memory: '1Ki' } }] },
  ];
  assert.deepEqual(fromPodMetrics(items, [ours], 'vk'), [
    { namespace: 'team', name: 'web', uid: 's-uid-1', containers: [{ name: 'app', cpuUsageNanoCores: 1_500_000, memoryWorkingSetBytes: 2 << 20 }] },
  ]);
});
