// Crash-loop and image-pull back-off arithmetic and the terminated state of a run, without
// processes or root.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makePod } from '../../../test/harness/pods.ts';
import {
  crashLoopAfterExit,
  crashLoopBackOff,
  imagePullBackOff,
  messageFromLog,
  nextPullBackoff,
  recordExit,
  recordPullFailure,
  shouldRestart,
  terminatedState,
  terminationMessage,
  terminationReason,
} from './container-exit.ts';
import { recordStart } from './container-start.ts';
import { newPodState, type ContainerRecord, type Instance } from './state.ts';

const cfg = { initialMs: 10_000, maxMs: 40_000, resetAfterMs: 600_000 };
const T0 = Date.parse('2026-01-02T03:04:05Z');

function instance(attempt: number): Instance {
  return {
    attempt,
    containerID: `sandbox://c${attempt}`,
    startedAt: '2026-01-02T03:04:05.123456789Z',
    shimPid: 100 + attempt,
    shimStart: 1,
    launchFile: '/nonexistent',
  };
}

function exitRecord(code: number): Parameters<typeof terminatedState>[0] {
  return { exitCode: code, startedAt: '2026-01-02T03:04:05.123456789Z', finishedAt: '2026-01-02T03:04:06.987654321Z' };
}

const noOutput = { terminationLog: () => undefined, log: () => undefined };

test('crash-loop back-off: the first restart is immediate, then initialMs doubling up to maxMs', () => {
  let backoffMs = 0;
  const waits: (number | undefined)[] = [];
  for (let i = 0; i < 6; i++) {
    const next = crashLoopAfterExit(backoffMs, 1000, cfg, T0);
    waits.push(next.backoffUntil === undefined ? undefined : next.backoffUntil - T0);
    backoffMs = next.backoffMs;
  }
  assert.deepEqual(waits, [undefined, 10_000, 20_000, 40_000, 40_000, 40_000]);
  assert.equal(backoffMs, 40_000);
});

test('crash-loop back-off starts over after a run of resetAfterMs, not after a shorter one', () => {
  assert.deepEqual(crashLoopAfterExit(40_000, cfg.resetAfterMs, cfg, T0), { backoffMs: cfg.initialMs, backoffUntil: undefined });
  const short = crashLoopAfterExit(40_000, cfg.resetAfterMs - 1, cfg, T0);
  assert.equal(short.backoffUntil, T0 + 40_000);
  assert.equal(short.backoffWaitMs, 40_000);
});

test('runs and exits on a record: restart count, last state, log attempts and readiness', () => {
  const state = newPodState(makePod({ containers: [{ name: 'app', image: 'busybox', startupProbe: { exec: { command: ['true'] } } }] }), T0);
  const c = state.containers[0]!;
  recordStart(c, instance(0), state.pod.spec!.containers[0]);
  assert.equal(c.attempts, 1);
  assert.equal(c.restartCount, 0);
  assert.equal(c.started, false, 'a startup probe holds started back');
  assert.equal(c.logAttempt, 0);
  recordExit(c, terminatedState(exitRecord(1), instance(0), 'Error', undefined), 1000, cfg, T0);
  assert.equal(c.running, undefined);
  assert.equal(c.terminated?.exitCode, 1);
  assert.equal(c.backoffUntil, undefined, 'the first restart is immediate');
  recordStart(c, instance(1), undefined);
  assert.equal(c.restartCount, 1);
  assert.equal(c.last?.containerID, 'sandbox://c0');
  assert.equal(c.lastAttempt, 0);
  assert.equal(c.logAttempt, 1);
  assert.equal(c.terminated, undefined);
  assert.equal(c.started, true);
  recordExit(c, terminatedState(exitRecord(2), instance(1), 'Error', undefined), 1000, cfg, T0);
  assert.equal(c.backoffUntil, T0 + 10_000);
  assert.equal(c.ready, false);
});

test('the CrashLoopBackOff and ImagePullBackOff waiting states carry the kubelet messages', () => {
  const c: Pick<ContainerRecord, 'name' | 'backoffMs' | 'backoffWaitMs'> = { name: 'app', backoffMs: 20_000, backoffWaitMs: 10_000 };
  assert.deepEqual(crashLoopBackOff(c, { name: 'p', namespace: 'default', uid: 'uid-1' }), {
    reason: 'CrashLoopBackOff',
    message: 'back-off 10s restarting failed container=app pod=p_default(uid-1)',
  });
  assert.deepEqual(imagePullBackOff('nope:1', 'failed to pull image "nope:1": not found'), {
    reason: 'ImagePullBackOff',
    message: 'Back-off pulling image "nope:1": failed to pull image "nope:1": not found',
  });
});

test('image pull back-off doubles up to its maximum; a failure shows the pull error until the retry', () => {
  const pull = { initialMs: 1000, maxMs: 5000 };
  const delays: number[] = [];
  let ms = 0;
  for (let i = 0; i < 5; i++) delays.push((ms = nextPullBackoff(ms, pull)));
  assert.deepEqual(delays, [1000, 2000, 4000, 5000, 5000]);
  const c = newPodState(makePod(), T0).containers[0]!;
  recordPullFailure(c, 'ErrImagePull', 'failed to pull image "nginx:1.27": boom', pull, T0);
  recordPullFailure(c, 'ErrImagePull', 'failed to pull image "nginx:1.27": boom', pull, T0);
  assert.equal(c.pullBackoffMs, 2000);
  assert.equal(c.pullRetryAt, T0 + 2000);
  assert.deepEqual(c.waiting, { reason: 'ErrImagePull', message: 'failed to pull image "nginx:1.27": boom' });
});

test('termination reason: StartError, then OOMKilled, then Completed or Error', () => {
  assert.equal(terminationReason({ exitCode: 127, startError: 'exec: not found' }, true), 'StartError');
  assert.equal(terminationReason({ exitCode: 137 }, true), 'OOMKilled');
  assert.equal(terminationReason({ exitCode: 0 }, false), 'Completed');
  assert.equal(terminationReason({ exitCode: 3 }, false), 'Error');
});

test('terminated state: times to the second, the signal of a killed run, the container ID', () => {
  const t = terminatedState({ ...exitRecord(137), signal: 'SIGKILL' }, instance(2), 'Error', 'killed');
  assert.deepEqual(t, {
    exitCode: 137,
    signal: 9,
    reason: 'Error',
    message: 'killed',
    startedAt: '2026-01-02T03:04:05Z',
    finishedAt: '2026-01-02T03:04:06Z',
    containerID: 'sandbox://c2',
  });
});

test('termination message: a known problem, then the start error, then the termination-log file (4 KiB)', () => {
  const file = { terminationLog: () => 'from the file', log: () => '2026-01-02T03:04:05Z stdout F from the log\n' };
  assert.equal(terminationMessage({ exitCode: 1 }, 'the container monitor exited unexpectedly', 'File', file), 'the container monitor exited unexpectedly');
  assert.equal(terminationMessage({ exitCode: 1, startError: 'no such file' }, undefined, 'File', file), 'no such file');
  assert.equal(terminationMessage({ exitCode: 1 }, undefined, 'FallbackToLogsOnError', file), 'from the file');
  assert.equal(terminationMessage({ exitCode: 0 }, undefined, 'File', { ...noOutput, terminationLog: () => 'x'.repeat(5000) })?.length, 4096);
  const unreadable = {
    terminationLog: () => {
      throw new Error('ENOENT');
    },
    log: () => undefined,
  };
  assert.equal(terminationMessage({ exitCode: 1 }, undefined, 'File', unreadable), undefined);
});

test('FallbackToLogsOnError: the end of the log without CRI prefixes, only for a failed run with an empty termination log', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `2026-01-02T03:04:05.000000000Z stdout F line ${i}`).join('\n');
  const output = { terminationLog: () => '', log: () => `${lines}\n` };
  const message = terminationMessage({ exitCode: 2 }, undefined, 'FallbackToLogsOnError', output);
  assert.equal(message?.split('\n').length, 80);
  assert.ok(message?.startsWith('line 20\n'));
  assert.ok(message?.endsWith('line 99'));
  assert.equal(terminationMessage({ exitCode: 0 }, undefined, 'FallbackToLogsOnError', output), undefined, 'not for a success');
  assert.equal(terminationMessage({ exitCode: 2 }, undefined, 'File', output), undefined, 'not with policy File');
  assert.equal(messageFromLog(`2026-01-02T03:04:05Z stdout F ${'y'.repeat(3000)}\n`)?.length, 2048);
  assert.equal(messageFromLog(''), undefined);
});

test('restart policy: Always and sidecars restart, OnFailure only after a failure, Never not', () => {
  const failed = { sidecar: false, terminated: { exitCode: 1, reason: 'Error', finishedAt: '' } };
  const done = { sidecar: false, terminated: { exitCode: 0, reason: 'Completed', finishedAt: '' } };
  assert.equal(shouldRestart(done, 'Always'), true);
  assert.equal(shouldRestart(failed, 'OnFailure'), true);
  assert.equal(shouldRestart(done, 'OnFailure'), false);
  assert.equal(shouldRestart(failed, 'Never'), false);
  assert.equal(shouldRestart({ ...done, sidecar: true }, 'Never'), true);
});
