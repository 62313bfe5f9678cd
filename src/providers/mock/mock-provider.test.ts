import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AbortedError, NotFoundError, ProviderUnavailableError, TryLaterError, VkError } from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import type { ContainerStatus, Pod, PodCondition } from '../../kube/types.ts';
import { providerCapabilities, type ResolvedPod } from '../provider.ts';
import { parseMockConfig } from './config.ts';
import { MockProvider, type MockProviderOptions } from './mock-provider.ts';
import { makePod } from '../../../test/harness/pods.ts';
import { waitFor } from '../../../test/harness/wait.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

function resolved(pod: Pod): ResolvedPod {
  return { pod, volumes: new Map() };
}

function provider(t: TestContext, config: unknown = {}, options: Partial<MockProviderOptions> = {}): MockProvider {
  const p = new MockProvider(parseMockConfig(config), { nodeName: 'vk', log: silentLogger, ...options });
  t.after(() => p.close());
  return p;
}

function condition(pod: Pod | undefined, type: string): PodCondition {
  const c = pod?.status?.conditions?.find((x) => x.type === type);
  assert.ok(c, `condition ${type} missing`);
  return c;
}

function container(pod: Pod | undefined, name = 'app'): ContainerStatus {
  const c = pod?.status?.containerStatuses?.find((x) => x.name === name);
  assert.ok(c, `container status ${name} missing`);
  return c;
}

describe('lifecycle (mock timers)', () => {
  test('Pending/ContainerCreating, then Running with kubelet-shaped status', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { runningDelayMs: 5000 } });
    await p.createPod(resolved(makePod()), call);

    let pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.status?.phase, 'Pending');
    assert.equal(pod?.metadata?.uid, 'uid-1');
    assert.equal(pod?.status?.podIP, undefined);
    assert.equal(pod?.status?.hostIP, '127.0.0.1');
    assert.equal(pod?.status?.startTime, iso(T0));
    assert.equal(pod?.status?.qosClass, 'BestEffort');
    assert.deepEqual(container(pod).state, { waiting: { reason: 'ContainerCreating' } });
    assert.equal(container(pod).ready, false);
    assert.equal(condition(pod, 'PodReadyToStartContainers').status, 'False');
    assert.equal(condition(pod, 'Initialized').status, 'True');
    assert.equal(condition(pod, 'Ready').status, 'False');
    assert.equal(condition(pod, 'Ready').reason, 'ContainersNotReady');
    assert.equal(condition(pod, 'PodScheduled').status, 'True');
    assert.equal(p.stats().timers, 1);

    t.mock.timers.tick(4999);
    assert.equal((await p.getPod('default', 'p', call))?.status?.phase, 'Pending');
    t.mock.timers.tick(1);
    pod = await p.getPod('default', 'p', call);
    const started = iso(T0 + 5000);
    assert.equal(pod?.status?.phase, 'Running');
    assert.equal(pod?.status?.podIP, '10.244.0.2');
    assert.deepEqual(pod?.status?.podIPs, [{ ip: '10.244.0.2' }]);
    assert.deepEqual(pod?.status?.hostIPs, [{ ip: '127.0.0.1' }]);
    assert.equal(pod?.status?.observedGeneration, 1);
    assert.deepEqual(
      pod?.status?.conditions?.map((c) => [c.type, c.status]),
      [
        ['PodReadyToStartContainers', 'True'],
        ['Initialized', 'True'],
        ['Ready', 'True'],
        ['ContainersReady', 'True'],
        ['PodScheduled', 'True'],
      ],
    );
    assert.equal(condition(pod, 'Ready').lastTransitionTime, started);
    const app = container(pod);
    assert.deepEqual(app.state, { running: { startedAt: started } });
    assert.deepEqual(app.lastState, {});
    assert.equal(app.ready, true);
    assert.equal(app.started, true);
    assert.equal(app.restartCount, 0);
    assert.equal(app.image, 'nginx:1.27');
    assert.equal(app.containerID, 'mock://uid-1-app');
    assert.match(app.imageID, /^docker-pullable:\/\/nginx@sha256:[0-9a-f]{64}$/);
    assert.equal(p.stats().timers, 0, 'a running pod with no completion time needs no timer');
  });

  test('completeAfterMs with restartPolicy Never: Succeeded, containers Completed', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { runningDelayMs: 1000, completeAfterMs: 10_000 } });
    await p.createPod(resolved(makePod({ restartPolicy: 'Never' })), call);
    t.mock.timers.tick(1000);
    assert.equal((await p.getPod('default', 'p', call))?.status?.phase, 'Running');
    t.mock.timers.tick(10_000);
    const pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.status?.phase, 'Succeeded');
    assert.deepEqual(container(pod).state, {
      terminated: { exitCode: 0, reason: 'Completed', startedAt: iso(T0 + 1000), finishedAt: iso(T0 + 11_000), containerID: 'mock://uid-1-app' },
    });
    assert.equal(container(pod).ready, false);
    assert.equal(condition(pod, 'Ready').reason, 'PodCompleted');
    assert.equal(condition(pod, 'ContainersReady').lastTransitionTime, iso(T0 + 11_000));
    assert.equal(condition(pod, 'PodReadyToStartContainers').status, 'False');
    assert.equal(pod?.status?.podIP, '10.244.0.2', 'a finished pod keeps its IP until deleted');
    assert.deepEqual(p.stats().phases, { Pending: 0, Running: 0, Succeeded: 1, Failed: 0 });
    assert.equal(p.stats().timers, 0);
  });

  test('exit-code annotation with Never: Failed, reason Error', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t);
    await p.createPod(resolved(makePod({ restartPolicy: 'Never', annotations: { 'mock.vk.io/exit-code': '3', 'mock.vk.io/complete-after-ms': '500' } })), call);
    t.mock.timers.tick(500);
    const pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.status?.phase, 'Failed');
    assert.equal(container(pod).state?.terminated?.exitCode, 3);
    assert.equal(container(pod).state?.terminated?.reason, 'Error');
    assert.equal(condition(pod, 'Ready').reason, 'ContainersNotReady');
    assert.equal(condition(pod, 'Ready').message, 'containers with unready status: [app]');
  });

  test('OnFailure with a failing container restarts through CrashLoopBackOff', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { restartDelayMs: 10_000 } });
    await p.createPod(
      resolved(makePod({ restartPolicy: 'OnFailure', annotations: { 'mock.vk.io/exit-code': '1', 'mock.vk.io/complete-after-ms': '2000' } })),
      call,
    );
    t.mock.timers.tick(2000);
    let pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.status?.phase, 'Running');
    let app = container(pod);
    assert.equal(app.state?.waiting?.reason, 'CrashLoopBackOff');
    assert.match(app.state?.waiting?.message ?? '', /^back-off 10s restarting failed container=app pod=p_default\(uid-1\)$/);
    assert.equal(app.ready, false);
    assert.equal(app.restartCount, 0);
    assert.deepEqual(app.lastState?.terminated, {
      exitCode: 1,
      reason: 'Error',
      startedAt: iso(T0),
      finishedAt: iso(T0 + 2000),
      containerID: 'mock://uid-1-app',
    });
    assert.equal(condition(pod, 'Ready').status, 'False');

    t.mock.timers.tick(10_000);
    pod = await p.getPod('default', 'p', call);
    app = container(pod);
    assert.equal(app.restartCount, 1);
    assert.deepEqual(app.state, { running: { startedAt: iso(T0 + 12_000) } });
    assert.equal(app.lastState?.terminated?.exitCode, 1);
    assert.equal(condition(pod, 'Ready').status, 'True');
  });

  test('OnFailure with exit 0 succeeds instead of restarting', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { completeAfterMs: 100 } });
    await p.createPod(resolved(makePod({ restartPolicy: 'OnFailure' })), call);
    t.mock.timers.tick(100);
    assert.equal((await p.getPod('default', 'p', call))?.status?.phase, 'Succeeded');
  });

  test('Always restarts on every completion; a clock jump applies each restart at its due time', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { completeAfterMs: 10_000 } });
    await p.createPod(resolved(makePod()), call);
    t.mock.timers.tick(35_000);
    const app = container(await p.getPod('default', 'p', call));
    assert.equal(app.restartCount, 3);
    assert.deepEqual(app.state, { running: { startedAt: iso(T0 + 30_000) } });
    assert.deepEqual(app.lastState?.terminated, {
      exitCode: 0,
      reason: 'Completed',
      startedAt: iso(T0 + 20_000),
      finishedAt: iso(T0 + 30_000),
      containerID: 'mock://uid-1-app',
    });
  });

  test('per-pod annotations override the config', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { runningDelayMs: 60_000, completeAfterMs: 1000 } });
    await p.createPod(
      resolved(makePod({ name: 'fast', annotations: { 'mock.vk.io/running-delay-ms': '0', 'mock.vk.io/complete-after-ms': 'never' }, restartPolicy: 'Never' })),
      call,
    );
    await p.createPod(resolved(makePod({ name: 'slow', uid: 'uid-2' })), call);
    t.mock.timers.tick(5000);
    assert.equal((await p.getPod('default', 'fast', call))?.status?.phase, 'Running');
    assert.equal((await p.getPod('default', 'slow', call))?.status?.phase, 'Pending');
  });

  test('init containers complete when the sandbox is up; sidecars keep running', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { runningDelayMs: 1000 } });
    const initContainers = [
      { name: 'setup', image: 'busybox' },
      { name: 'proxy', image: 'envoy:v1', restartPolicy: 'Always' },
    ];
    await p.createPod(resolved(makePod({ initContainers })), call);
    let pod = await p.getPod('default', 'p', call);
    assert.equal(condition(pod, 'Initialized').status, 'False');
    assert.equal(condition(pod, 'Initialized').message, 'containers with incomplete status: [setup]');
    assert.deepEqual(container(pod).state, { waiting: { reason: 'PodInitializing' } });
    assert.deepEqual(pod?.status?.initContainerStatuses?.[0]?.state, { waiting: { reason: 'PodInitializing' } });

    t.mock.timers.tick(1000);
    pod = await p.getPod('default', 'p', call);
    const [setup, proxy] = pod?.status?.initContainerStatuses ?? [];
    assert.deepEqual(setup?.state, {
      terminated: { exitCode: 0, reason: 'Completed', startedAt: iso(T0 + 1000), finishedAt: iso(T0 + 1000), containerID: 'mock://uid-1-setup' },
    });
    assert.equal(setup?.ready, true);
    assert.deepEqual(proxy?.state, { running: { startedAt: iso(T0 + 1000) } });
    assert.equal(proxy?.started, true);
    assert.equal(condition(pod, 'Initialized').status, 'True');
    assert.equal(condition(pod, 'Initialized').lastTransitionTime, iso(T0 + 1000));
    assert.equal(pod?.status?.phase, 'Running');
  });

  test('activeDeadlineSeconds fails the pod with DeadlineExceeded', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t);
    await p.createPod(resolved(makePod({ activeDeadlineSeconds: 30 })), call);
    t.mock.timers.tick(30_000);
    const pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.status?.phase, 'Failed');
    assert.equal(pod?.status?.reason, 'DeadlineExceeded');
    assert.equal(container(pod).state?.terminated?.exitCode, 137);
    assert.equal(p.stats().timers, 0);
  });

  test('createDelayMs holds createPod (pod visible meanwhile); close() rejects it', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { createDelayMs: 1000 } });
    let settled = false;
    const created = p.createPod(resolved(makePod()), call).then(() => (settled = true));
    await nextTurn();
    assert.equal(settled, false);
    assert.equal(p.podCount(), 1);
    t.mock.timers.tick(1000);
    await created;

    const second = p.createPod(resolved(makePod({ name: 'q', uid: 'uid-2' })), call);
    await p.close();
    await assert.rejects(second, (err: unknown) => err instanceof AbortedError && /provider closed/.test(err.message));
    assert.equal(p.podCount(), 2, 'close keeps the pods: the backend outlives the process');
  });

  test('timestamps are RFC3339 without fractional seconds', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 + 123 });
    const p = provider(t);
    await p.createPod(resolved(makePod()), call);
    const pod = await p.getPod('default', 'p', call);
    const stamps = [pod?.status?.startTime, ...(pod?.status?.conditions ?? []).map((c) => c.lastTransitionTime), container(pod).state?.running?.startedAt];
    for (const s of stamps) assert.match(s ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });
});

describe('pods (real time)', () => {
  test('stores a deep copy with the resolved env and volumes', async (t) => {
    const p = provider(t);
    const pod = makePod();
    const files = [{ path: 'key', content: new TextEncoder().encode('value'), mode: 0o644 }];
    const input: ResolvedPod = { pod, volumes: new Map([['cfg', { name: 'cfg', type: 'files', source: 'configMap', files }]]) };
    await p.createPod(input, call);
    pod.spec!.containers[0]!.env = [];
    input.volumes.clear();
    const stored = p.resolvedPod('default', 'p');
    assert.deepEqual(stored?.pod.spec?.containers[0]?.env, [{ name: 'GREETING', value: 'hello' }]);
    const vol = stored?.volumes.get('cfg');
    assert.equal(vol?.type === 'files' && new TextDecoder().decode(vol.files[0]?.content), 'value');
    assert.equal(p.resolvedPod('default', 'nope'), undefined);
  });

  test('same uid is a no-op; a new uid replaces the old incarnation', async (t) => {
    const p = provider(t);
    await p.createPod(resolved(makePod({ uid: 'a' })), call);
    const first = p.resolvedPod('default', 'p');
    await p.createPod(resolved(makePod({ uid: 'a', annotations: { changed: 'yes' } })), call);
    assert.equal(p.resolvedPod('default', 'p'), first, 'same uid must not re-create');
    assert.equal(p.podCount(), 1);

    await p.createPod(resolved(makePod({ uid: 'b' })), call);
    assert.equal(p.podCount(), 1);
    assert.equal((await p.getPod('default', 'p', call))?.metadata?.uid, 'b');
    assert.equal(container(await p.getPod('default', 'p', call)).containerID, 'mock://b-app');
    assert.equal(p.stats().replaced, 1);
    assert.equal(p.stats().podIPsInUse, 1, 'the old incarnation released its IP');

    await assert.rejects(p.deletePod(makePod({ uid: 'a' }), { ...call, reason: 'deleted' }), NotFoundError);
    assert.equal(p.podCount(), 1);
    await p.deletePod(makePod({ uid: 'b' }), { ...call, reason: 'deleted' });
    assert.deepEqual(await p.listPods(call), []);
    assert.equal(await p.getPod('default', 'p', call), undefined);
    assert.equal(await p.getPodStatus('default', 'p', call), undefined);
    assert.equal(p.stats().podIPsInUse, 0);
    await assert.rejects(
      p.deletePod(makePod({ uid: 'b' }), { ...call, reason: 'deleted' }),
      (err: unknown) => err instanceof NotFoundError && err.code === 'VK_NOT_FOUND',
    );
  });

  test('deletePod without a uid deletes whatever incarnation runs', async (t) => {
    const p = provider(t);
    await p.createPod(resolved(makePod({ uid: 'x' })), call);
    const bare = makePod();
    delete bare.metadata!.uid;
    await p.deletePod(bare, { ...call, reason: 'deleted' });
    assert.equal(p.podCount(), 0);
  });

  test('IPs are sequential and freed on delete; host-network pods use the host IP', async (t) => {
    const p = provider(t, { podCIDR: '10.1.0.0/30' }, { hostIP: '192.0.2.10' }); // room for exactly one pod
    await p.createPod(resolved(makePod({ name: 'a', uid: 'a' })), call);
    assert.equal((await p.getPod('default', 'a', call))?.status?.podIP, '10.1.0.2');
    await assert.rejects(
      p.createPod(resolved(makePod({ name: 'b', uid: 'b' })), call),
      (err: unknown) => err instanceof TryLaterError && err.code === 'VK_TRY_LATER' && /no free addresses/.test(err.message),
    );
    await p.createPod(resolved(makePod({ name: 'h', uid: 'h', hostNetwork: true })), call);
    assert.equal((await p.getPod('default', 'h', call))?.status?.podIP, '192.0.2.10');
    assert.equal((await p.getPod('default', 'h', call))?.status?.hostIP, '192.0.2.10');
    await p.deletePod(makePod({ name: 'a', uid: 'a' }), { ...call, reason: 'deleted' });
    await p.createPod(resolved(makePod({ name: 'b', uid: 'b' })), call);
    assert.equal((await p.getPod('default', 'b', call))?.status?.podIP, '10.1.0.2');
  });

  test('listPods returns every pod with its status', async (t) => {
    const p = provider(t);
    for (let i = 0; i < 3; i++) await p.createPod(resolved(makePod({ name: `p${i}`, uid: `u${i}`, namespace: i === 0 ? 'other' : 'default' })), call);
    const pods = await p.listPods(call);
    assert.deepEqual(pods.map((x) => `${x.metadata?.namespace}/${x.metadata?.name}`).sort(), ['default/p1', 'default/p2', 'other/p0']);
    assert.ok(pods.every((x) => x.status?.phase === 'Running'));
    assert.equal((await p.getPodStatus('other', 'p0', call))?.phase, 'Running');
  });

  test('updatePod with a new image restarts that container', async (t) => {
    const p = provider(t);
    await p.createPod(resolved(makePod()), call);
    const updated = makePod({ containers: [{ name: 'app', image: 'nginx:1.28' }], annotations: { note: 'x' } });
    await p.updatePod(resolved(updated), call);
    const pod = await p.getPod('default', 'p', call);
    assert.equal(pod?.metadata?.annotations?.note, 'x');
    const app = container(pod);
    assert.equal(app.image, 'nginx:1.28');
    assert.equal(app.restartCount, 1);
    assert.equal(app.lastState?.terminated?.reason, 'Completed');
    await assert.rejects(p.updatePod(resolved(makePod({ uid: 'other' })), call), NotFoundError);
    await assert.rejects(p.updatePod(resolved(makePod({ name: 'missing' })), call), NotFoundError);
  });

  test('failure injection: fail-create and fail-delete', async (t) => {
    const p = provider(t);
    await assert.rejects(p.createPod(resolved(makePod({ annotations: { 'mock.vk.io/fail-create': 'quota exceeded in backend' } })), call), (err: unknown) => {
      assert.ok(err instanceof VkError);
      assert.equal(err.code, 'VK_PROVIDER');
      assert.equal(err.message, 'quota exceeded in backend');
      return true;
    });
    assert.equal(p.podCount(), 0);
    assert.equal(p.stats().podIPsInUse, 0);

    const sticky = makePod({ annotations: { 'mock.vk.io/fail-delete': 'backend refused' } });
    await p.createPod(resolved(sticky), call);
    await assert.rejects(p.deletePod(sticky, { ...call, reason: 'deleted' }), { message: 'backend refused' });
    assert.equal(p.podCount(), 1);
    await p.deletePod(makePod({ annotations: {} }), { ...call, reason: 'deleted' }); // annotation removed: delete goes through
    assert.equal(p.podCount(), 0);
    assert.equal(p.stats().createFailures, 1);
    assert.equal(p.stats().deleteFailures, 1);
  });

  test('malformed annotations reject createPod, naming the annotation', async (t) => {
    const p = provider(t);
    await assert.rejects(p.createPod(resolved(makePod({ annotations: { 'mock.vk.io/exit-code': '300' } })), call), {
      name: 'InvalidRequestError',
      code: 'VK_INVALID_REQUEST',
      message: 'annotation mock.vk.io/exit-code: expected an integer from 0 to 255, got "300"',
    });
    await assert.rejects(p.createPod(resolved(makePod({ annotations: { 'mock.vk.io/running-delay-ms': 'soon' } })), call), /mock\.vk\.io\/running-delay-ms/);
    assert.equal(p.podCount(), 0);
  });
});

describe('notifications', () => {
  test('listener gets each state change asynchronously, never inside createPod', async (t) => {
    const p = provider(t, { lifecycle: { runningDelayMs: 500 } });
    const seen: Pod[] = [];
    p.notifyPods!((pod) => seen.push(pod));
    const created = p.createPod(resolved(makePod()), call);
    assert.equal(seen.length, 0);
    await created;
    assert.equal(seen.length, 0, 'delivery waits for the next turn of the event loop');
    await waitFor('a Running notification', () => seen.some((x) => x.status?.phase === 'Running'), { timeoutMs: 2000, intervalMs: 2 });
    assert.deepEqual(
      seen.map((x) => x.status?.phase),
      ['Pending', 'Running'],
    );
    const running = seen[1];
    assert.equal(running?.metadata?.uid, 'uid-1');
    assert.equal(running?.spec?.containers[0]?.name, 'app');
    assert.equal(container(running).ready, true);
  });

  test('delete reports the final state once; a throwing listener does not stop delivery', async (t) => {
    const p = provider(t);
    const seen: Pod[] = [];
    p.notifyPods!(() => {
      throw new Error('listener bug');
    });
    p.notifyPods!((pod) => seen.push(pod));
    await p.createPod(resolved(makePod()), call);
    await waitFor('the first notification', () => seen.length === 1, { timeoutMs: 2000, intervalMs: 2 });
    await p.deletePod(makePod(), { ...call, reason: 'deleted' });
    const final = await waitFor('the final-state notification', () => seen[1], { timeoutMs: 2000, intervalMs: 2 });
    assert.equal(final.status?.phase, 'Succeeded');
    assert.equal(container(final).state?.terminated?.reason, 'Completed');
    await nextTurn();
    assert.equal(seen.length, 2);
  });

  test('poll-only mode has no notifyPods capability', (t) => {
    const pollOnly = provider(t, { notify: false });
    assert.equal(pollOnly.notifyPods, undefined);
    assert.ok(!providerCapabilities(pollOnly).includes('notifyPods'));
    const kubeletApi = ['getContainerLogs', 'runInContainer', 'attachToContainer', 'portForward', 'getStats'];
    assert.deepEqual(providerCapabilities(pollOnly), ['nodeConfig', 'ping', ...kubeletApi, 'close']);
    assert.deepEqual(providerCapabilities(provider(t)), ['notifyPods', 'nodeConfig', 'ping', ...kubeletApi, 'close']);
  });
});

describe('node', () => {
  test('ping follows setHealthy', async (t) => {
    const p = provider(t);
    const signal = new AbortController().signal;
    await p.ping(signal);
    p.setHealthy(false, 'backend down for maintenance');
    await assert.rejects(p.ping(signal), (err: unknown) => err instanceof ProviderUnavailableError && err.message === 'backend down for maintenance');
    p.setHealthy(true);
    await p.ping(signal);
  });

  test('nodeConfig reports capacity, labels, taints, os and arch', (t) => {
    const p = provider(t, { capacity: { cpu: '8' }, labels: { tier: 'mock' }, taints: [{ key: 'k', effect: 'NoExecute' }], architecture: 'arm64' });
    const n = p.nodeConfig();
    assert.equal(n.capacity.cpu, '8');
    assert.equal(n.capacity.pods, '10000');
    assert.deepEqual(n.allocatable, n.capacity);
    assert.deepEqual(n.labels, { tier: 'mock' });
    assert.deepEqual(n.taints, [{ key: 'k', effect: 'NoExecute' }]);
    assert.equal(n.operatingSystem, 'linux');
    assert.equal(n.architecture, 'arm64');
    n.capacity.cpu = '1';
    assert.equal(p.nodeConfig().capacity.cpu, '8', 'callers get copies');
  });
});

test('scale: 10,000 pods with O(1) bookkeeping and no idle timers', async (t) => {
  const p = provider(t);
  let notified = 0;
  p.notifyPods!(() => notified++);
  const started = performance.now();
  for (let i = 0; i < 10_000; i++) await p.createPod(resolved(makePod({ name: `p${i}`, uid: `u${i}` })), call);
  assert.equal(p.podCount(), 10_000);
  assert.equal((await p.listPods(call)).length, 10_000);
  const s = p.stats();
  assert.equal(s.phases.Running, 10_000);
  assert.equal(s.timers, 0);
  assert.equal(s.podIPsInUse, 10_000);
  assert.equal((await p.getPod('default', 'p9999', call))?.status?.podIP, '10.244.39.17'); // 10.244.0.2 + 9999
  await waitFor('10,000 notifications', () => notified === 10_000, { timeoutMs: 10_000, intervalMs: 2 });
  for (let i = 0; i < 10_000; i++) await p.deletePod(makePod({ name: `p${i}`, uid: `u${i}` }), { ...call, reason: 'deleted' });
  assert.equal(p.podCount(), 0);
  assert.equal(p.stats().podIPsInUse, 0);
  t.diagnostic(`10k create+list+delete: ${Math.round(performance.now() - started)}ms`);
});
