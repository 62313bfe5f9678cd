import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod, PodStatus } from '../kube/types.ts';
import { completeStatus, statusPatch, waitingStatus } from './pod-status.ts';

const now = new Date('2026-01-01T00:00:10Z');
const pod: Pod = {
  metadata: { name: 'p', namespace: 'ns', uid: 'u1' },
  spec: { containers: [{ name: 'a' }, { name: 'b' }] },
  status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
};
const running: PodStatus = {
  phase: 'Running',
  podIP: '10.244.0.9',
  containerStatuses: [
    { name: 'a', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:05Z' } } },
    { name: 'b', image: 'x', imageID: '', ready: false, restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:05Z' } } },
  ],
};

test('completeStatus fills hostIP, podIPs, startTime and the kubelet conditions, keeping PodScheduled', () => {
  const status = completeStatus(pod, running, '192.0.2.1', now);
  assert.equal(status.hostIP, '192.0.2.1');
  assert.deepEqual(status.hostIPs, [{ ip: '192.0.2.1' }]);
  assert.deepEqual(status.podIPs, [{ ip: '10.244.0.9' }]);
  assert.equal(status.startTime, '2026-01-01T00:00:10Z');
  const byType = Object.fromEntries((status.conditions ?? []).map((c) => [c.type, c]));
  assert.equal(byType.Initialized?.status, 'True');
  assert.equal(byType.ContainersReady?.status, 'False');
  assert.equal(byType.Ready?.message, 'containers with unready status: [b]');
  assert.equal(byType.PodScheduled?.lastTransitionTime, '2026-01-01T00:00:00Z');
});

test('Ready needs every container ready and every readiness gate true', () => {
  const allReady = { ...running, containerStatuses: running.containerStatuses!.map((c) => ({ ...c, ready: true })) };
  assert.equal(completeStatus(pod, allReady, 'h', now).conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  const gated: Pod = { ...pod, spec: { ...pod.spec!, readinessGates: [{ conditionType: 'example.com/lb' }] } };
  assert.equal(completeStatus(gated, allReady, 'h', now).conditions?.find((c) => c.type === 'Ready')?.status, 'False');
});

test('statusPatch is empty when nothing but times moved, and holds only changed fields otherwise', () => {
  const first = completeStatus(pod, running, 'h', now);
  const applied: Pod = { ...pod, status: first };
  const again = completeStatus(applied, running, 'h', new Date('2026-01-01T00:05:00Z'));
  assert.equal(statusPatch(first, again), undefined);
  const changed = completeStatus(applied, { ...running, podIP: '10.244.0.10' }, 'h', now);
  assert.deepEqual(Object.keys(statusPatch(first, changed) ?? {}).sort(), ['podIP', 'podIPs']);
});

test('waitingStatus reports the reason on every container', () => {
  const status = waitingStatus(pod, 'CreateContainerConfigError', 'configmap "x" not found');
  assert.equal(status.phase, 'Pending');
  assert.deepEqual(
    status.containerStatuses?.map((c) => c.state?.waiting?.reason),
    ['CreateContainerConfigError', 'CreateContainerConfigError'],
  );
});

test('statusPatch sees no change when the API server returns the same status in Go field order with zero values dropped', () => {
  const desired = completeStatus(pod, running, '192.0.2.1', now);
  // Round trip as kube-apiserver does it: keys in another order, '' and empty objects omitted.
  const reorder = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(reorder)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .filter(([, x]) => x !== '' && !(x && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length === 0))
              .map(([k, x]) => [k, reorder(x)]),
          )
        : v;
  const fromApi = reorder({ ...desired, containerStatuses: desired.containerStatuses?.map((c) => ({ ...c, lastState: {} })) }) as PodStatus;
  assert.equal(
    JSON.stringify(Object.keys(fromApi.containerStatuses![0]!)) === JSON.stringify(Object.keys(desired.containerStatuses![0]!)),
    false,
    'the key order differs',
  );
  assert.equal(statusPatch(fromApi, desired), undefined);
  // A real change still shows.
  const restarted = { ...desired, containerStatuses: desired.containerStatuses?.map((c) => ({ ...c, restartCount: 1 })) };
  assert.deepEqual(Object.keys(statusPatch(fromApi, restarted) ?? {}), ['containerStatuses']);
  const unready = { ...desired, containerStatuses: desired.containerStatuses?.map((c) => ({ ...c, ready: false })) };
  assert.deepEqual(Object.keys(statusPatch(fromApi, unready) ?? {}), ['containerStatuses']);
});

test("Initialized False carries the kubelet reason and the incomplete init containers, or the provider's own", () => {
  const withInits: Pod = { ...pod, spec: { ...pod.spec!, initContainers: [{ name: 'init1' }, { name: 'init2' }] } };
  const pending: PodStatus = {
    phase: 'Pending',
    initContainerStatuses: [
      { name: 'init1', image: 'x', imageID: '', ready: true, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } },
      { name: 'init2', image: 'x', imageID: '', ready: false, restartCount: 1, state: { running: { startedAt: '2026-01-01T00:00:05Z' } } },
    ],
  };
  const initialized = completeStatus(withInits, pending, 'h', now).conditions?.find((c) => c.type === 'Initialized');
  assert.deepEqual(
    [initialized?.status, initialized?.reason, initialized?.message],
    ['False', 'ContainersNotInitialized', 'containers with incomplete status: [init2]'],
  );
  const fromProvider: PodStatus = {
    ...pending,
    conditions: [{ type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [init1 init2]' }],
  };
  const kept = completeStatus(withInits, fromProvider, 'h', now).conditions?.find((c) => c.type === 'Initialized');
  assert.equal(kept?.message, 'containers with incomplete status: [init1 init2]');
});

test("observedGeneration follows the pod's generation, on the status and the kubelet conditions, and a new generation is a change to write", () => {
  const first = completeStatus({ ...pod, metadata: { ...pod.metadata, generation: 1 } }, running, 'h', now);
  assert.equal(first.observedGeneration, 1);
  assert.equal(first.conditions?.find((c) => c.type === 'Ready')?.observedGeneration, 1);
  const updated: Pod = { ...pod, metadata: { ...pod.metadata, generation: 2 }, status: first };
  const second = completeStatus(updated, running, 'h', now);
  assert.equal(second.observedGeneration, 2);
  assert.deepEqual(Object.keys(statusPatch(first, second) ?? {}).sort(), ['conditions', 'observedGeneration']);
});
