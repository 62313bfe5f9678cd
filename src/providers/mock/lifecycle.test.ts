// The mock's state machine as pure functions: no provider, no timers, times as plain numbers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ContainerStateError, NotFoundError } from '../../errors.ts';
import type { ResolvedPod } from '../provider.ts';
import { advance, applySpecUpdate, cloneResolved, deadlineAt, dueAt, nextAt, phaseOf, PodRecord, runningContainer, terminate } from './lifecycle.ts';
import { makePod, type PodOptions } from '../../../test/harness/pods.ts';

const T0 = 1_000_000;

function record(o: PodOptions = {}, settings: { runningDelayMs?: number; completeAfterMs?: number; exitCode?: number } = {}): PodRecord {
  const rec = new PodRecord('default/p', 'uid-1', { pod: makePod(o), volumes: new Map() }, T0, 0);
  rec.runningDelayMs = settings.runningDelayMs ?? 0;
  rec.completeAfterMs = settings.completeAfterMs;
  rec.injectedExitCode = settings.exitCode ?? 0;
  return rec;
}

describe('transitions', () => {
  test('creating → running exactly at createdAt + runningDelayMs', () => {
    const rec = record({}, { runningDelayMs: 500 });
    assert.equal(phaseOf(rec), 'Pending');
    assert.equal(dueAt(rec, 0), T0 + 500);
    assert.equal(advance(rec, T0 + 499, 0), false);
    assert.equal(rec.stage, 'creating');
    assert.equal(advance(rec, T0 + 10_000, 0), true);
    assert.equal(rec.stage, 'running');
    assert.equal(phaseOf(rec), 'Running');
    // Stamped with the due time, not the (later) time of the call.
    assert.deepEqual([rec.stageAt, rec.sandboxAt, rec.runStart, rec.readyAt, rec.containers[0]?.startedAt], [T0 + 500, T0 + 500, T0 + 500, T0 + 500, T0 + 500]);
    assert.equal(dueAt(rec, 0), Infinity, 'no completion time: runs forever');
    assert.equal(nextAt(rec, 0), Infinity);
  });

  test('restartPolicy Never: the exit code decides Succeeded or Failed', () => {
    const ok = record({ restartPolicy: 'Never' }, { completeAfterMs: 100 });
    advance(ok, T0 + 100, 0);
    assert.equal(phaseOf(ok), 'Succeeded');
    assert.equal(ok.stageAt, T0 + 100);
    const failed = record({ restartPolicy: 'Never' }, { completeAfterMs: 100, exitCode: 2 });
    advance(failed, T0 + 100, 0);
    assert.equal(phaseOf(failed), 'Failed');
    assert.equal(failed.exitCode, 2);
    assert.equal(failed.endReason, undefined);
  });

  test('OnFailure: exit 0 ends the pod; a failure goes through back-off and restarts', () => {
    const done = record({ restartPolicy: 'OnFailure' }, { completeAfterMs: 100 });
    advance(done, T0 + 100, 1000);
    assert.equal(phaseOf(done), 'Succeeded');

    const rec = record({ restartPolicy: 'OnFailure' }, { completeAfterMs: 100, exitCode: 1 });
    advance(rec, T0 + 100, 1000);
    assert.equal(rec.stage, 'backoff');
    assert.equal(phaseOf(rec), 'Running');
    assert.deepEqual(rec.containers[0]?.last, { exitCode: 1, startedAt: T0, finishedAt: T0 + 100 });
    assert.equal(rec.containers[0]?.startedAt, undefined);
    assert.equal(rec.readyAt, T0 + 100);
    assert.equal(dueAt(rec, 1000), T0 + 1100);
    advance(rec, T0 + 1100, 1000);
    assert.equal(rec.stage, 'running');
    assert.equal(rec.containers[0]?.restartCount, 1);
    assert.equal(rec.containers[0]?.startedAt, T0 + 1100);
    assert.equal(rec.readyAt, T0 + 1100);
  });

  test('a clock jump applies each restart at its due time', () => {
    const rec = record({}, { completeAfterMs: 10_000 });
    assert.equal(advance(rec, T0 + 35_000, 0), true);
    assert.equal(rec.containers[0]?.restartCount, 3);
    assert.equal(rec.runStart, T0 + 30_000);
    assert.deepEqual(rec.containers[0]?.last, { exitCode: 0, startedAt: T0 + 20_000, finishedAt: T0 + 30_000 });
  });

  test('a zero-length run with no back-off restarts once per call, so time can move', () => {
    const rec = record({}, { completeAfterMs: 0 });
    assert.equal(advance(rec, T0, 0), true); // starts, exits at once, restarts: then stops
    assert.equal(rec.containers[0]?.restartCount, 1);
    assert.equal(advance(rec, T0 + 5, 0), true);
    assert.equal(rec.containers[0]?.restartCount, 2);
    assert.equal(advance(rec, T0 + 5, 0), true);
    assert.equal(rec.containers[0]?.restartCount, 3);
  });

  test('activeDeadlineSeconds ends the pod with 137 and DeadlineExceeded, before a transition due at the same time', () => {
    const rec = record({ activeDeadlineSeconds: 2, restartPolicy: 'Never' }, { completeAfterMs: 2000 });
    assert.equal(deadlineAt(rec), T0 + 2000);
    advance(rec, T0 + 60_000, 0);
    assert.equal(phaseOf(rec), 'Failed');
    assert.equal(rec.exitCode, 137);
    assert.equal(rec.endReason, 'DeadlineExceeded');
    assert.equal(rec.stageAt, T0 + 2000);
    assert.equal(deadlineAt(rec), Infinity, 'a terminated pod has no deadline');
    assert.equal(nextAt(rec, 0), Infinity);
  });

  test('terminate moves readyAt only when the pod was ready', () => {
    const pending = record({}, { runningDelayMs: 1000 });
    terminate(pending, T0 + 10, 0, 'Deleted');
    assert.equal(pending.readyAt, T0);
    assert.equal(phaseOf(pending), 'Succeeded');
    const running = record();
    advance(running, T0, 0);
    terminate(running, T0 + 10, 0, 'Deleted');
    assert.equal(running.readyAt, T0 + 10);
    assert.equal(running.endReason, 'Deleted');
  });
});

describe('spec updates', () => {
  const containers = (image: string) => [
    { name: 'app', image },
    { name: 'side', image: 'busybox' },
  ];

  test('a new image restarts that container only, while the pod runs', () => {
    const rec = record({ containers: containers('nginx:1') });
    advance(rec, T0, 0);
    applySpecUpdate(rec, { pod: makePod({ containers: containers('nginx:2') }), volumes: new Map() }, T0 + 50);
    assert.equal(rec.resolved.pod.spec?.containers[0]?.image, 'nginx:2');
    assert.deepEqual(rec.containers[0]?.last, { exitCode: 0, startedAt: T0, finishedAt: T0 + 50 });
    assert.equal(rec.containers[0]?.restartCount, 1);
    assert.equal(rec.containers[0]?.startedAt, T0 + 50);
    assert.equal(rec.containers[1]?.restartCount, 0);
  });

  test('a pod not yet running just takes the new spec', () => {
    const rec = record({ containers: containers('nginx:1') }, { runningDelayMs: 1000 });
    applySpecUpdate(rec, { pod: makePod({ containers: containers('nginx:2') }), volumes: new Map() }, T0 + 50);
    assert.equal(rec.containers[0]?.restartCount, 0);
    assert.equal(rec.containers[0]?.last, undefined);
  });
});

describe('helpers', () => {
  test('runningContainer: the spec of a running container or sidecar, kubelet-like errors otherwise', () => {
    const rec = record(
      {
        initContainers: [
          { name: 'init', image: 'busybox' },
          { name: 'proxy', image: 'envoy', restartPolicy: 'Always' },
        ],
      },
      { runningDelayMs: 100 },
    );
    assert.throws(
      () => runningContainer(rec, 'p', 'app'),
      (err: unknown) => err instanceof ContainerStateError && err.message === 'container "app" in pod "p" is not running',
    );
    assert.throws(() => runningContainer(rec, 'p', 'proxy'), ContainerStateError);
    assert.throws(
      () => runningContainer(rec, 'p', 'init'),
      (err: unknown) => err instanceof NotFoundError && err.message === 'container "init" not found in pod "p"',
    );
    advance(rec, T0 + 100, 0);
    assert.equal(runningContainer(rec, 'p', 'app').name, 'app');
    assert.equal(runningContainer(rec, 'p', 'proxy').name, 'proxy');
  });

  test('cloneResolved copies the pod and the file contents', () => {
    const content = new Uint8Array([1, 2, 3]);
    const original: ResolvedPod = {
      pod: makePod(),
      volumes: new Map([['v', { name: 'v', type: 'files', source: 'secret', files: [{ path: 'k', content, mode: 0o600 }] }]]),
    };
    const copy = cloneResolved(original);
    assert.deepEqual(copy, original);
    content[0] = 9;
    original.pod.metadata!.name = 'changed';
    const file = copy.volumes.get('v');
    assert.equal(file?.type === 'files' && file.files[0]?.content[0], 1);
    assert.equal(copy.pod.metadata?.name, 'p');
  });
});
