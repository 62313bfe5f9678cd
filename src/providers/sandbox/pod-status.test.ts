// The status a sandbox pod reports, rendered from its record alone: no processes, no root.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makePod } from '../../../test/harness/pods.ts';
import type { Container } from '../../kube/types.ts';
import { crashLoopAfterExit, crashLoopBackOff, imagePullBackOff, recordExit, recordPullFailure, terminatedState } from './container-exit.ts';
import { recordStart } from './container-start.ts';
import { podIP, podPhase, renderPodStatus } from './pod-status.ts';
import { newPodState, type ContainerRecord, type Instance, type PodRecordState } from './state.ts';

const HOST_IP = '192.0.2.10';
const T0 = Date.parse('2026-01-02T03:04:05.678Z');
const sandbox: NonNullable<PodRecordState['sandbox']> = {
  pause: { pid: 4242, startTicks: 1, unsharePid: 4241 },
  network: { index: 1, podIP: '10.215.0.6', gateway: '10.215.0.5', hostLink: 'vk1' },
  readyAt: T0,
};
const cfg = { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 };

function app(name: string, extra: Partial<Container> = {}): Container {
  return { name, image: 'busybox', ...extra };
}

function instance(name: string, attempt: number): Instance {
  return {
    attempt,
    containerID: `sandbox://${name}-${attempt}`,
    startedAt: '2026-01-02T03:04:06.111222333Z',
    shimPid: 1000 + attempt,
    shimStart: 1,
    childPid: 2000 + attempt,
    launchFile: '/nonexistent',
  };
}

function start(state: PodRecordState, c: ContainerRecord): Instance {
  const inst = instance(c.name, c.attempts);
  recordStart(c, inst, state.pod.spec?.containers.find((x) => x.name === c.name) ?? state.pod.spec?.initContainers?.find((x) => x.name === c.name));
  return inst;
}

function exit(c: ContainerRecord, code: number, message?: string): void {
  const inst = c.running!;
  recordExit(
    c,
    terminatedState({ exitCode: code, startedAt: inst.startedAt, finishedAt: '2026-01-02T03:04:09.5Z' }, inst, code === 0 ? 'Completed' : 'Error', message),
    1000,
    cfg,
    T0,
  );
}

function condition(state: PodRecordState, type: string) {
  return renderPodStatus(state, HOST_IP).conditions?.find((c) => c.type === type);
}

test('a new pod is Pending with ContainerCreating, no pod IP, and the start time in whole seconds', () => {
  const state = newPodState(makePod({ containers: [app('a'), app('b')] }), T0);
  const status = renderPodStatus(state, HOST_IP);
  assert.equal(status.phase, 'Pending');
  assert.equal(status.startTime, '2026-01-02T03:04:05Z');
  assert.equal(status.hostIP, HOST_IP);
  assert.equal(status.podIP, undefined);
  assert.deepEqual(
    status.containerStatuses?.map((c) => [c.name, c.state?.waiting?.reason, c.ready, c.started, c.restartCount]),
    [
      ['a', 'ContainerCreating', false, false, 0],
      ['b', 'ContainerCreating', false, false, 0],
    ],
  );
  assert.equal(status.initContainerStatuses, undefined);
  assert.deepEqual(
    status.conditions?.map((c) => [c.type, c.status, c.reason]),
    [
      ['PodReadyToStartContainers', 'False', undefined],
      ['Initialized', 'True', undefined],
      ['ContainersReady', 'False', 'ContainersNotReady'],
      ['Ready', 'False', 'ContainersNotReady'],
    ],
  );
  assert.equal(condition(state, 'Ready')?.message, 'containers with unready status: [a b]');
});

test('init containers: PodInitializing, Initialized False naming the incomplete ones, then Running when they are done', () => {
  const state = newPodState(makePod({ initContainers: [app('setup'), app('migrate')], containers: [app('main')] }), T0);
  state.sandbox = sandbox;
  let status = renderPodStatus(state, HOST_IP);
  assert.equal(status.phase, 'Pending');
  assert.deepEqual(
    status.initContainerStatuses?.map((c) => c.state?.waiting?.reason),
    ['PodInitializing', 'PodInitializing'],
  );
  assert.equal(status.containerStatuses?.[0]?.state?.waiting?.reason, 'PodInitializing');
  assert.equal(condition(state, 'Initialized')?.message, 'containers with incomplete status: [setup migrate]');
  const setup = state.containers[0]!;
  start(state, setup);
  exit(setup, 0);
  assert.equal(condition(state, 'Initialized')?.message, 'containers with incomplete status: [migrate]');
  status = renderPodStatus(state, HOST_IP);
  assert.equal(status.initContainerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
  assert.equal(status.initContainerStatuses?.[0]?.ready, true, 'a completed init container is ready, as the kubelet reports it');
  assert.equal(status.initContainerStatuses?.[1]?.ready, false);
  state.initDone = true;
  start(state, state.containers[2]!);
  assert.equal(podPhase(state), 'Running');
  assert.equal(condition(state, 'Initialized')?.status, 'True');
});

test('a running, ready pod: Running, Ready, its pod IP, running since a whole second', () => {
  const state = newPodState(makePod({ containers: [app('web')] }), T0);
  state.sandbox = sandbox;
  const c = state.containers[0]!;
  start(state, c);
  assert.equal(condition(state, 'Ready')?.status, 'False', 'not ready before its readiness is known');
  c.ready = true;
  const status = renderPodStatus(state, HOST_IP);
  assert.equal(status.phase, 'Running');
  assert.equal(status.podIP, '10.215.0.6');
  assert.deepEqual(status.podIPs, [{ ip: '10.215.0.6' }]);
  const web = status.containerStatuses![0]!;
  assert.deepEqual(web.state, { running: { startedAt: '2026-01-02T03:04:06Z' } });
  assert.equal(web.containerID, 'sandbox://web-0');
  assert.equal(web.ready, true);
  assert.equal(web.started, true);
  assert.deepEqual(
    status.conditions?.map((x) => [x.type, x.status]),
    [
      ['PodReadyToStartContainers', 'True'],
      ['Initialized', 'True'],
      ['ContainersReady', 'True'],
      ['Ready', 'True'],
    ],
  );
});

test("hostNetwork: the pod IP is the node's once the sandbox exists", () => {
  const state = newPodState(makePod({ hostNetwork: true }), T0);
  assert.equal(podIP(state, HOST_IP), undefined);
  state.sandbox = { ...sandbox, network: undefined };
  assert.equal(renderPodStatus(state, HOST_IP).podIP, HOST_IP);
});

test('a crash-looping container: CrashLoopBackOff with the back-off message, the last run as lastState, restarts counted', () => {
  const state = newPodState(makePod({ name: 'loop', uid: 'uid-9', containers: [app('app')] }), T0);
  state.sandbox = sandbox;
  const c = state.containers[0]!;
  start(state, c);
  exit(c, 1, 'boom');
  start(state, c);
  exit(c, 1, 'boom again');
  assert.equal(c.backoffUntil, T0 + 10_000);
  c.waiting = crashLoopBackOff(c, state);
  const status = renderPodStatus(state, HOST_IP);
  assert.equal(status.phase, 'Running');
  const s = status.containerStatuses![0]!;
  assert.deepEqual(s.state, { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=app pod=loop_default(uid-9)' } });
  assert.equal(s.restartCount, 1);
  assert.equal(s.containerID, 'sandbox://app-1');
  assert.deepEqual(s.lastState, {
    terminated: {
      exitCode: 1,
      reason: 'Error',
      message: 'boom again',
      startedAt: '2026-01-02T03:04:06Z',
      finishedAt: '2026-01-02T03:04:09Z',
      containerID: 'sandbox://app-1',
    },
  });
  assert.equal(s.ready, false);
  // The next wait doubles.
  assert.equal(crashLoopAfterExit(c.backoffMs, 1000, cfg, T0).backoffWaitMs, 20_000);
});

test('a failed pull shows ErrImagePull, then ImagePullBackOff with the pull error', () => {
  const state = newPodState(makePod({ containers: [app('app', { image: 'nope:1' })] }), T0);
  state.sandbox = sandbox;
  const c = state.containers[0]!;
  recordPullFailure(c, 'ErrImagePull', 'failed to pull image "nope:1": manifest unknown', { initialMs: 10_000, maxMs: 300_000 }, T0);
  assert.deepEqual(renderPodStatus(state, HOST_IP).containerStatuses?.[0]?.state, {
    waiting: { reason: 'ErrImagePull', message: 'failed to pull image "nope:1": manifest unknown' },
  });
  c.waiting = imagePullBackOff('nope:1', c.waiting?.message);
  const s = renderPodStatus(state, HOST_IP).containerStatuses![0]!;
  assert.deepEqual(s.state, {
    waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1": failed to pull image "nope:1": manifest unknown' },
  });
  assert.equal(s.image, 'nope:1');
  assert.equal(s.imageID, '');
  assert.equal(renderPodStatus(state, HOST_IP).phase, 'Pending');
});

test('finished pods: Succeeded with PodCompleted; Failed with the deadline reason and message', () => {
  const done = newPodState(makePod({ restartPolicy: 'Never', containers: [app('job')] }), T0);
  const job = done.containers[0]!;
  start(done, job);
  exit(job, 0);
  done.terminal = { phase: 'Succeeded', at: T0 };
  const ok = renderPodStatus(done, HOST_IP);
  assert.equal(ok.phase, 'Succeeded');
  assert.equal(ok.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
  assert.equal(condition(done, 'Ready')?.reason, 'PodCompleted');
  assert.equal(condition(done, 'PodReadyToStartContainers')?.status, 'False');

  const late = newPodState(makePod({ activeDeadlineSeconds: 1 }), T0);
  late.terminal = { phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', at: T0 };
  const failed = renderPodStatus(late, HOST_IP);
  assert.equal(failed.phase, 'Failed');
  assert.equal(failed.reason, 'DeadlineExceeded');
  assert.equal(failed.message, 'Pod was active on the node longer than the specified deadline');
  assert.equal(condition(late, 'Ready')?.reason, 'ContainersNotReady');
});
