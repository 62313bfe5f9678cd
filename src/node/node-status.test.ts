import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultTaint, desiredConditions, desiredLabels, desiredStatus, labelPatch, mergeTaints, statusFingerprint, type NodeIdentity } from './node-status.ts';

const id: NodeIdentity = {
  nodeName: 'vk-1',
  providerName: 'mock',
  nodeIP: '10.0.0.5',
  kubeletPort: 10250,
  kubeletVersion: 'v1.36.3-vk-0.1.0',
  labels: { team: 'x' },
};

test('labels: defaults, then provider labels, then flags win', () => {
  const labels = desiredLabels(id, { capacity: {}, labels: { team: 'provider', zone: 'z1' }, operatingSystem: 'linux', architecture: 'arm64' });
  assert.equal(labels.type, 'virtual-kubelet');
  assert.equal(labels['kubernetes.io/role'], 'agent');
  assert.equal(labels['kubernetes.io/hostname'], 'vk-1');
  assert.equal(labels['kubernetes.io/arch'], 'arm64');
  assert.equal(labels.zone, 'z1');
  assert.equal(labels.team, 'x');
});

test("mergeTaints replaces the taints we manage and keeps everyone else's", () => {
  const current = [defaultTaint('old'), { key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }, { key: 'mine/stale', effect: 'NoExecute' }];
  const merged = mergeTaints(current, ['virtual-kubelet.io/provider', 'mine/stale'], [defaultTaint('mock')]);
  assert.deepEqual(merged, [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }, defaultTaint('mock')]);
});

test('labelPatch removes labels we set before and no longer want', () => {
  assert.deepEqual(labelPatch({ a: '1' }, ['a', 'b']), { a: '1', b: null });
});

test('condition transition times move only when the status changes', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:01:00Z');
  const ready = { ready: true, reason: 'KubeletReady', message: 'ok' };
  const first = desiredConditions(ready, { capacity: {} }, undefined, t0);
  const same = desiredConditions(ready, { capacity: {} }, first, t1);
  assert.equal(same.find((c) => c.type === 'Ready')?.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(same.find((c) => c.type === 'Ready')?.lastHeartbeatTime, '2026-01-01T00:01:00Z');
  const down = desiredConditions({ ready: false, reason: 'ProviderUnhealthy', message: 'down' }, { capacity: {} }, first, t1);
  assert.equal(down.find((c) => c.type === 'Ready')?.lastTransitionTime, '2026-01-01T00:01:00Z');
  assert.deepEqual(
    down.map((c) => c.type),
    ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'],
  );
});

test('status carries capacity, addresses, the kubelet port and version; the fingerprint ignores heartbeats', () => {
  const ready = { ready: true, reason: 'KubeletReady', message: 'ok' };
  const a = desiredStatus(id, { capacity: { pods: '500' } }, ready, undefined, new Date('2026-01-01T00:00:00Z'));
  assert.equal(a.capacity?.pods, '500');
  assert.equal(a.capacity?.cpu, '20');
  assert.equal(a.allocatable?.pods, '500');
  assert.deepEqual(a.addresses, [
    { type: 'InternalIP', address: '10.0.0.5' },
    { type: 'Hostname', address: 'vk-1' },
  ]);
  assert.equal(a.daemonEndpoints?.kubeletEndpoint?.Port, 10250);
  assert.equal(a.nodeInfo?.kubeletVersion, 'v1.36.3-vk-0.1.0');
  const b = desiredStatus(id, { capacity: { pods: '500' } }, ready, a, new Date('2026-01-01T00:05:00Z'));
  assert.equal(statusFingerprint(a), statusFingerprint(b));
  const c = desiredStatus(id, { capacity: { pods: '500' } }, { ...ready, ready: false }, a, new Date('2026-01-01T00:05:00Z'));
  assert.notEqual(statusFingerprint(a), statusFingerprint(c));
});

test('--os windows labels the GA and beta OS keys and sets nodeInfo, over the provider', () => {
  const windows = { ...id, operatingSystem: 'windows' };
  const config = { capacity: {}, labels: { 'kubernetes.io/os': 'linux' }, operatingSystem: 'linux', nodeInfo: { operatingSystem: 'linux' } };
  const labels = desiredLabels(windows, config);
  assert.equal(labels['kubernetes.io/os'], 'windows');
  assert.equal(labels['beta.kubernetes.io/os'], 'windows');
  const ready = { ready: true, reason: 'KubeletReady', message: 'ok' };
  assert.equal(desiredStatus(windows, config, ready, undefined, new Date()).nodeInfo?.operatingSystem, 'windows');
  assert.equal(desiredLabels(id, config)['beta.kubernetes.io/os'], undefined, 'no beta label without --os');
});

test('nodeInfo always names an OS image, kernel and runtime; empty provider values keep the defaults', () => {
  const ready = { ready: true, reason: 'KubeletReady', message: 'ok' };
  const info = desiredStatus(id, { capacity: {}, nodeInfo: { kernelVersion: '', osImage: 'Backend OS' } }, ready, undefined, new Date()).nodeInfo!;
  assert.equal(info.osImage, 'Backend OS');
  assert.equal(info.kernelVersion, 'virtual');
  assert.equal(info.containerRuntimeVersion, 'mock://v1.36.3-vk-0.1.0');
});
