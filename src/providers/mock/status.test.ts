// Status rendering as pure functions of a record: no provider, no clock.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rfc3339 } from '../../version.ts';
import { advance, PodRecord, terminate } from './lifecycle.ts';
import { containerID, imageID, renderPod, renderStatus, stamp, terminatedState } from './status.ts';
import { makePod, type PodOptions } from '../../../test/harness/pods.ts';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const ctx = { hostIP: '192.0.2.1', restartDelayMs: 10_000 };
const IP = (10 << 24) + (244 << 16) + 7; // 10.244.0.7

function record(o: PodOptions = {}, ip = IP): PodRecord {
  return new PodRecord('default/p', 'uid-1', { pod: makePod(o), volumes: new Map() }, T0, ip);
}

describe('stamps and ids', () => {
  test('stamp is rfc3339 from src/version.ts, to the second', () => {
    assert.equal(stamp(T0 + 999), rfc3339(new Date(T0)));
    assert.equal(stamp(T0 + 999), '2025-01-01T12:00:00Z');
    assert.equal(stamp(T0 + 1000), '2025-01-01T12:00:01Z');
  });

  test('imageID: repository without the tag, a stable fake digest, a given digest kept', () => {
    assert.match(imageID('nginx:1.27'), /^docker-pullable:\/\/nginx@sha256:[0-9a-f]{64}$/);
    assert.equal(imageID('nginx:1.27'), imageID('nginx:1.27'));
    assert.notEqual(imageID('nginx:1.27'), imageID('nginx:1.28'));
    assert.match(imageID('localhost:5000/app'), /^docker-pullable:\/\/localhost:5000\/app@sha256:/, 'a registry port is not a tag');
    assert.equal(imageID('busybox@sha256:abc'), 'docker-pullable://busybox@sha256:abc');
  });

  test('terminatedState: Completed for 0, Error otherwise; optional start and id', () => {
    assert.deepEqual(terminatedState(0, T0, T0 + 1000, 'mock://x'), {
      terminated: { exitCode: 0, reason: 'Completed', startedAt: '2025-01-01T12:00:00Z', finishedAt: '2025-01-01T12:00:01Z', containerID: 'mock://x' },
    });
    assert.deepEqual(terminatedState(3, undefined, T0, undefined), { terminated: { exitCode: 3, reason: 'Error', finishedAt: '2025-01-01T12:00:00Z' } });
    assert.equal(containerID(record(), 'app'), 'mock://uid-1-app');
  });
});

describe('renderStatus', () => {
  test('creating: Pending, no pod IP yet, ContainerCreating, conditions with observedGeneration', () => {
    const rec = record();
    const status = renderStatus(rec, ctx);
    assert.equal(status.phase, 'Pending');
    assert.equal(status.podIP, undefined);
    assert.equal(status.hostIP, '192.0.2.1');
    assert.equal(status.observedGeneration, 1);
    assert.equal(status.startTime, '2025-01-01T12:00:00Z');
    assert.deepEqual(status.containerStatuses?.[0]?.state, { waiting: { reason: 'ContainerCreating' } });
    assert.equal(status.containerStatuses?.[0]?.imageID, '');
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual(ready, {
      type: 'Ready',
      status: 'False',
      observedGeneration: 1,
      lastTransitionTime: '2025-01-01T12:00:00Z',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [app]',
    });
    assert.equal(status.qosClass, 'BestEffort');
  });

  test('running: pod IP from the record, host IP for host-network pods, containers sorted by name', () => {
    const rec = record({
      containers: [
        { name: 'b', image: 'x' },
        { name: 'a', image: 'y' },
      ],
    });
    advance(rec, T0, 0);
    const status = renderStatus(rec, ctx);
    assert.equal(status.phase, 'Running');
    assert.equal(status.podIP, '10.244.0.7');
    assert.deepEqual(status.podIPs, [{ ip: '10.244.0.7' }]);
    assert.deepEqual(
      status.containerStatuses?.map((c) => c.name),
      ['a', 'b'],
    );
    assert.deepEqual(status.containerStatuses?.[0]?.state, { running: { startedAt: '2025-01-01T12:00:00Z' } });
    const host = record({ hostNetwork: true }, 0);
    advance(host, T0, 0);
    assert.equal(renderStatus(host, ctx).podIP, '192.0.2.1');
  });

  test('back-off: CrashLoopBackOff with the configured delay in the message, the last run in lastState', () => {
    const rec = record({ restartPolicy: 'Always' });
    rec.completeAfterMs = 2000;
    rec.injectedExitCode = 1;
    advance(rec, T0 + 2000, ctx.restartDelayMs);
    const app = renderStatus(rec, ctx).containerStatuses?.[0];
    assert.deepEqual(app?.state, { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=app pod=p_default(uid-1)' } });
    assert.equal(app?.lastState?.terminated?.exitCode, 1);
    assert.equal(app?.ready, false);
  });

  test('deadline: Failed with reason and message; sidecars end with 137; init containers Completed', () => {
    const rec = record({
      activeDeadlineSeconds: 5,
      initContainers: [
        { name: 'init', image: 'i' },
        { name: 'proxy', image: 'envoy', restartPolicy: 'Always' },
      ],
    });
    advance(rec, T0 + 5000, 0);
    const status = renderStatus(rec, ctx);
    assert.equal(status.phase, 'Failed');
    assert.equal(status.reason, 'DeadlineExceeded');
    assert.equal(status.message, 'Pod was active on the node longer than the specified deadline');
    const [init, proxy] = status.initContainerStatuses ?? [];
    assert.equal(init?.state?.terminated?.reason, 'Completed');
    assert.equal(proxy?.state?.terminated?.exitCode, 137);
    assert.equal(status.containerStatuses?.[0]?.state?.terminated?.exitCode, 137);
    assert.equal(status.conditions?.find((c) => c.type === 'PodReadyToStartContainers')?.status, 'False');
  });

  test('a pod deleted before it ran: Succeeded, containers terminated without start or id', () => {
    const rec = record();
    rec.runningDelayMs = 60_000;
    terminate(rec, T0 + 10, 0, 'Deleted');
    const app = renderStatus(rec, ctx).containerStatuses?.[0];
    assert.deepEqual(app?.state, { terminated: { exitCode: 0, reason: 'Completed', finishedAt: '2025-01-01T12:00:00Z' } });
    assert.equal(app?.containerID, undefined);
    assert.equal(app?.imageID, '');
  });

  test("the API's PodScheduled condition is kept; no generation, no observedGeneration", () => {
    const pod = makePod();
    delete pod.metadata!.generation;
    pod.status!.conditions = [{ type: 'PodScheduled', status: 'True', lastTransitionTime: '2024-12-31T00:00:00Z' }];
    const rec = new PodRecord('default/p', 'uid-1', { pod, volumes: new Map() }, T0, IP);
    const status = renderStatus(rec, ctx);
    assert.equal(status.observedGeneration, undefined);
    assert.deepEqual(
      status.conditions?.find((c) => c.type === 'PodScheduled'),
      { type: 'PodScheduled', status: 'True', lastTransitionTime: '2024-12-31T00:00:00Z' },
    );
    assert.ok(status.conditions?.every((c) => c.observedGeneration === undefined));
  });

  test('renderPod is the stored pod with the rendered status', () => {
    const rec = record();
    const pod = renderPod(rec, ctx);
    assert.equal(pod.metadata, rec.resolved.pod.metadata);
    assert.deepEqual(pod.status, renderStatus(rec, ctx));
  });
});
