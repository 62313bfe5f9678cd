// The pod controller's logic against in-memory fakes (no cluster): lifecycle, status writes,
// adoption, references and the provider error contract. Each test waits on conditions or on
// counted syncs, never on a fixed sleep.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { VkError } from '../errors.ts';
import { PodRejectedError, ProviderUnavailableError, TryLaterError } from '../errors.ts';
import type { Pod, PodStatus } from '../kube/types.ts';
import { silentLogger } from '../log.ts';
import { configMap } from '../../test/fixtures/fake-source.ts';
import { FakeApi, FakeEvents, FakePodSource, FakeReferences, ScriptedProvider } from '../../test/fixtures/pod-controller-fakes.ts';
import { makePod } from '../../test/harness/pods.ts';
import { waitFor } from '../../test/harness/wait.ts';
import { PodController, type PodControllerMetrics, type PodWorkerOperation } from './pod-controller.ts';

const KEY = 'default/p';
const quick = { timeoutMs: 3000, intervalMs: 2 };

function setup(t: TestContext, options: { push?: boolean; start?: boolean; metrics?: PodControllerMetrics; daemonSetPods?: 'reject' | 'run' } = {}) {
  const source = new FakePodSource();
  const api = new FakeApi(source);
  const events = new FakeEvents();
  const references = new FakeReferences();
  const provider = new ScriptedProvider({ push: options.push ?? true });
  let syncs = 0;
  const controller = new PodController(
    provider,
    {
      nodeName: 'vk',
      hostIP: '10.0.0.1',
      workers: 2,
      resyncIntervalMs: 600_000,
      statusPollIntervalMs: 10,
      nodeAllocatable: () => ({ cpu: '4', memory: '8Gi' }),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 40,
      daemonSetPods: options.daemonSetPods,
    },
    silentLogger,
    { ...options.metrics, syncDuration: () => void syncs++ },
    { source, api, events, references: (onChange) => references.bind(onChange) },
  );
  t.after(() => controller.stop());
  const start = () => controller.start();
  /** Waits until `n` more syncs have finished than when called. */
  const syncsAfter = (n = 1) => {
    const target = syncs + n;
    return waitFor(`${n} more sync(s)`, () => syncs >= target, quick);
  };
  return { source, api, events, references, provider, controller, start, syncsAfter };
}

function running(status: Partial<PodStatus> = {}): PodStatus {
  return {
    phase: 'Running',
    podIP: '10.0.0.2',
    containerStatuses: [
      { name: 'app', image: 'nginx:1.27', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: '2026-01-01T00:00:00Z' } } },
    ],
    ...status,
  };
}

function finished(phase: 'Succeeded' | 'Failed'): PodStatus {
  return {
    phase,
    containerStatuses: [
      {
        name: 'app',
        image: 'nginx:1.27',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, reason: phase === 'Succeeded' ? 'Completed' : 'Error' } },
      },
    ],
  };
}

const phaseOf = (source: FakePodSource, key = KEY) => source.get(key)?.status?.phase;

test('create: the resolved pod reaches the provider once, its status is written, Created and Started are recorded', async (t) => {
  const { source, api, events, references, provider, start } = setup(t);
  references.objects.configMaps.set('default/cfg', configMap('cfg', { greeting: 'hi' }, undefined, 'default'));
  await start();
  source.put(
    makePod({ containers: [{ name: 'app', image: 'nginx:1.27', env: [{ name: 'G', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } }] }] }),
  );
  await waitFor('Running in the API', () => phaseOf(source) === 'Running', quick);
  assert.deepEqual(provider.calls, ['create default/p']);
  const env = provider.pods.get(KEY)?.resolved.pod.spec?.containers[0]?.env;
  assert.deepEqual(env, [{ name: 'G', value: 'hi' }], 'env resolved before the provider sees it');
  assert.equal(source.get(KEY)?.status?.podIP, '10.0.0.2');
  assert.equal(source.get(KEY)?.status?.hostIP, '10.0.0.1');
  await waitFor('Started event', () => events.reasons(KEY).includes('Normal Started'), quick);
  assert.deepEqual(events.reasons(KEY), ['Normal Created', 'Normal Started']);
  assert.ok(references.tracked.has(KEY), 'the pod’s references are watched');
  assert.equal(api.patches.length, 1, 'one status patch for one status');
});

test('poll mode: without notifyPods the status is read after create and polled afterwards', async (t) => {
  const { source, provider, start } = setup(t, { push: false });
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  provider.setStatus(KEY, finished('Succeeded'));
  await waitFor('Succeeded from the poll', () => phaseOf(source) === 'Succeeded', quick);
  await waitFor('released', () => provider.calls.includes('delete default/p finished'), quick);
});

test('a status pushed by the provider is written ahead of queued creates, not behind them', async (t) => {
  const { source, provider, controller, start } = setup(t);
  await start();
  source.put(makePod({ name: 'a', uid: 'uid-a' }));
  await waitFor('a Running', () => phaseOf(source, 'default/a') === 'Running', quick);
  // Both workers hold a create (b, c); d and e wait in the queue behind them.
  const first = Promise.withResolvers<void>();
  provider.createGate = first.promise;
  for (const name of ['b', 'c', 'd', 'e']) source.put(makePod({ name, uid: `uid-${name}` }));
  await waitFor('b and c creating', () => provider.calls.includes('create default/b') && provider.calls.includes('create default/c'), quick);
  await waitFor('d and e queued', () => controller.queueLength === 2, quick);
  provider.setStatus('default/a', finished('Failed'));
  await waitFor("a's change queued", () => controller.queueLength === 3, quick);
  // The next creates hang: a worker that takes d or e never comes back, so a's status is
  // written only if it was handed out first.
  provider.createGate = new Promise<void>(() => {});
  first.resolve();
  await waitFor("a's new status written", () => phaseOf(source, 'default/a') === 'Failed', quick);
});

test('update: an allowed spec change is passed to the provider; nothing else is', async (t) => {
  const { source, provider, start, syncsAfter } = setup(t);
  await start();
  const pod = source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  const synced = syncsAfter();
  source.put({ ...source.get(KEY)!, metadata: { ...pod.metadata, labels: { tier: 'web' } } });
  await waitFor('update call', () => provider.calls.includes('update default/p'), quick);
  assert.deepEqual(provider.pods.get(KEY)?.pod.metadata?.labels, { tier: 'web' });
  await synced;
  const before = provider.calls.length;
  const again = syncsAfter();
  source.put(source.get(KEY)!); // a new resourceVersion, same spec
  await again;
  assert.equal(provider.calls.length, before, 'an unchanged spec makes no provider call');
});

test('graceful delete: Killing, the provider stops the pod, then the API object is deleted once with a UID precondition', async (t) => {
  const { source, api, events, provider, start } = setup(t);
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  const pod = source.get(KEY)!;
  source.put({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: '2026-01-01T00:00:30Z', deletionGracePeriodSeconds: 30 } });
  await waitFor('API object gone', () => source.get(KEY) === undefined, quick);
  assert.deepEqual(provider.calls, ['create default/p', 'delete default/p deleted']);
  assert.deepEqual(api.deletes, [KEY]);
  assert.ok(events.reasons(KEY).includes('Normal Killing'));
  assert.equal(provider.pods.size, 0);
});

test('force delete: a pod gone from the API is deleted in the provider, with no API call', async (t) => {
  const { source, api, provider, start } = setup(t);
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  source.remove(KEY);
  await waitFor('provider delete', () => provider.pods.size === 0, quick);
  assert.deepEqual(provider.calls, ['create default/p', 'delete default/p deleted']);
  assert.deepEqual(api.deletes, []);
});

test('a pod re-created under the same name replaces the old incarnation in the provider', async (t) => {
  const { source, provider, start } = setup(t);
  await start();
  source.put(makePod({ uid: 'uid-1' }));
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  source.remove(KEY);
  source.put(makePod({ uid: 'uid-2' }));
  await waitFor('new incarnation', () => provider.pods.get(KEY)?.pod.metadata?.uid === 'uid-2', quick);
  assert.equal(provider.calls.filter((c) => c.startsWith('create')).length, 2);
  assert.ok(provider.calls.includes('delete default/p deleted'));
});

test('release: a finished pod keeps its API object, is released in the provider and never created again', async (t) => {
  const { source, api, provider, start, syncsAfter } = setup(t);
  await start();
  source.put(makePod({ restartPolicy: 'Never' }));
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  provider.setStatus(KEY, finished('Failed'));
  await waitFor('Failed in the API', () => phaseOf(source) === 'Failed', quick);
  await waitFor('released', () => provider.calls.includes('delete default/p finished'), quick);
  const synced = syncsAfter();
  source.put(source.get(KEY)!);
  await synced;
  assert.deepEqual(provider.calls, ['create default/p', 'delete default/p finished']);
  assert.deepEqual(api.deletes, [], 'the API object stays');
});

test('status writes: an unchanged status is not written again, nor one written moments ago while the watch lags', async (t) => {
  const { source, api, provider, start, syncsAfter } = setup(t);
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  assert.equal(api.patches.length, 1);
  for (let i = 0; i < 5; i++) {
    const synced = syncsAfter();
    provider.setStatus(KEY, running());
    await synced;
  }
  assert.equal(api.patches.length, 1, 'five syncs of the same status: no patch');
  api.deliver = false;
  const synced = syncsAfter();
  provider.setStatus(KEY, running({ podIP: '10.0.0.3' }));
  await synced;
  assert.equal(api.patches.length, 2);
  for (let i = 0; i < 3; i++) {
    const again = syncsAfter();
    provider.setStatus(KEY, running({ podIP: '10.0.0.3' }));
    await again;
  }
  assert.equal(api.patches.length, 2, 'the cache lags, but the write is remembered');
});

test('adoption sweep: orphans and old incarnations go, a kept pod is not created again, other nodes’ pods stay', async (t) => {
  const { source, provider, references, start } = setup(t);
  const kept = makePod({ name: 'kept', uid: 'uid-kept' });
  source.put(kept);
  source.put(makePod({ name: 'renewed', uid: 'uid-new' }));
  provider.adopt(kept);
  provider.adopt(makePod({ name: 'renewed', uid: 'uid-old' }));
  provider.adopt(makePod({ name: 'orphan', uid: 'uid-orphan' }));
  provider.adopt(makePod({ name: 'elsewhere', uid: 'uid-x', nodeName: 'other-node' }));
  await start();
  assert.deepEqual(provider.calls.slice(0, 2).sort(), ['delete default/orphan deleted', 'delete default/renewed deleted']);
  await waitFor('renewed created anew', () => provider.pods.get('default/renewed')?.pod.metadata?.uid === 'uid-new', quick);
  await waitFor('kept adopted: references watched', () => references.tracked.has('default/kept'), quick);
  assert.ok(!provider.calls.includes('create default/kept'));
  assert.ok(provider.pods.has('default/elsewhere'));
  assert.equal(phaseOf(source, 'default/kept'), 'Running', 'the adopted pod’s status is written');
});

test('the sweep refuses to run on an unsynced cache', async (t) => {
  const { source, provider, start } = setup(t);
  source.synced = false;
  provider.adopt(makePod({ name: 'orphan', uid: 'u' }));
  await assert.rejects(start(), (err: VkError) => /before the pod cache is synced/.test(err.message));
  assert.ok(provider.pods.has('default/orphan'));
});

test('references: a changed ConfigMap reaches a running pod’s volume through updatePod; same contents make no call', async (t) => {
  const { source, references, provider, start, syncsAfter } = setup(t);
  references.objects.configMaps.set('default/cfg', configMap('cfg', { k: 'one' }, undefined, 'default'));
  await start();
  const pod = makePod();
  pod.spec!.volumes = [{ name: 'cfg', configMap: { name: 'cfg' } }];
  source.put(pod);
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  const content = () => {
    const volume = provider.pods.get(KEY)?.resolved.volumes.get('cfg');
    return volume?.type === 'files' ? Buffer.from(volume.files[0]!.content).toString() : undefined;
  };
  assert.equal(content(), 'one');
  references.objects.configMaps.set('default/cfg', configMap('cfg', { k: 'two' }, undefined, 'default'));
  references.changed('default', 'cfg');
  await waitFor('new contents in the provider', () => content() === 'two', quick);
  const updates = provider.calls.filter((c) => c.startsWith('update')).length;
  const synced = syncsAfter();
  references.changed('default', 'cfg');
  await synced;
  assert.equal(provider.calls.filter((c) => c.startsWith('update')).length, updates, 'same contents: no update');
});

test('a spec the core cannot run (hostPath) fails the pod with the reason and an Event; the provider never sees it', async (t) => {
  const { source, events, provider, start } = setup(t);
  await start();
  const pod = makePod();
  pod.spec!.volumes = [{ name: 'host', hostPath: { path: '/etc' } }];
  source.put(pod);
  await waitFor('Failed', () => phaseOf(source) === 'Failed', quick);
  assert.equal(source.get(KEY)?.status?.reason, 'UnsupportedVolume');
  assert.ok(events.reasons(KEY).some((r) => r.startsWith('Warning')));
  assert.deepEqual(provider.calls, []);
});

function daemonSetPod(): Pod {
  const pod = makePod();
  pod.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true }];
  return pod;
}

test('--daemonset-pods reject: a DaemonSet pod is Failed at admission with a Warning, never reaches the provider, and is not retried', async (t) => {
  const { source, events, provider, start, syncsAfter } = setup(t, { daemonSetPods: 'reject' });
  await start();
  source.put(daemonSetPod());
  await waitFor('Failed', () => phaseOf(source) === 'Failed', quick);
  assert.equal(source.get(KEY)?.status?.reason, 'DaemonSetPodRejected');
  assert.match(source.get(KEY)?.status?.message ?? '', /does not run DaemonSet pods \(DaemonSet agent\)/);
  assert.deepEqual(events.reasons(KEY), ['Warning DaemonSetPodRejected']);
  const synced = syncsAfter();
  source.put({ ...source.get(KEY)!, metadata: { ...source.get(KEY)!.metadata, labels: { touched: 'yes' } } });
  await synced;
  assert.deepEqual(provider.calls, []);
});

test('--daemonset-pods run: a DaemonSet pod runs like any other', async (t) => {
  const { source, provider, start } = setup(t, { daemonSetPods: 'run' });
  await start();
  source.put(daemonSetPod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  assert.deepEqual(provider.calls, ['create default/p']);
});

test('PodRejectedError from createPod: Failed with its reason and a Warning, no retry', async (t) => {
  const { source, events, provider, start, syncsAfter } = setup(t);
  provider.createError = () => new PodRejectedError('UnsupportedPlatform', 'no arm64 capacity');
  await start();
  source.put(makePod());
  await waitFor('Failed', () => phaseOf(source) === 'Failed', quick);
  assert.equal(source.get(KEY)?.status?.reason, 'UnsupportedPlatform');
  assert.match(source.get(KEY)?.status?.message ?? '', /no arm64 capacity/);
  assert.ok(events.reasons(KEY).includes('Warning UnsupportedPlatform'));
  const synced = syncsAfter(2);
  source.put(source.get(KEY)!);
  source.put(source.get(KEY)!);
  await synced;
  assert.deepEqual(provider.calls, ['create default/p'], 'never retried');
});

test('ProviderUnavailableError from createPod: Pending ProviderUnavailable, retried with backoff until it works', async (t) => {
  const { source, api, provider, start } = setup(t);
  let failures = 2;
  provider.createError = () => (failures-- > 0 ? new ProviderUnavailableError('backend unreachable') : undefined);
  await start();
  source.put(makePod());
  await waitFor('Running after the backend is back', () => phaseOf(source) === 'Running', quick);
  assert.equal(provider.calls.filter((c) => c.startsWith('create')).length, 3);
  assert.equal(api.written(KEY)[0], 'ProviderUnavailable');
});

test('TryLaterError: Pending ProviderBusy, retried after the time the backend asked for', async (t) => {
  const { source, api, provider, start } = setup(t);
  const at: number[] = [];
  let failures = 1;
  provider.createError = () => {
    at.push(performance.now());
    return failures-- > 0 ? new TryLaterError('throttled', 120) : undefined;
  };
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  assert.equal(at.length, 2);
  assert.ok(at[1]! - at[0]! >= 110, `retried after ${Math.round(at[1]! - at[0]!)} ms, asked for 120`);
  assert.equal(api.written(KEY)[0], 'ProviderBusy');
});

test('any other createPod error: ProviderCreateFailed, Failed and BackOff events, retried', async (t) => {
  const { source, events, api, provider, start } = setup(t);
  let failures = 2;
  provider.createError = () => (failures-- > 0 ? new Error('quota exceeded') : undefined);
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  assert.equal(api.written(KEY)[0], 'ProviderCreateFailed');
  const reasons = events.reasons(KEY);
  assert.equal(reasons.filter((r) => r === 'Warning Failed').length, 2);
  assert.ok(reasons.includes('Warning BackOff'));
});

test('a provider that cannot be asked: a pod that never ran shows ProviderUnavailable', async (t) => {
  const { source, provider, start } = setup(t);
  provider.getError = new ProviderUnavailableError('connect ECONNREFUSED');
  await start();
  source.put(makePod());
  await waitFor('ProviderUnavailable', () => source.get(KEY)?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ProviderUnavailable', quick);
  assert.match(source.get(KEY)?.status?.containerStatuses?.[0]?.state?.waiting?.message ?? '', /ECONNREFUSED/);
  provider.getError = undefined;
  await waitFor('Running once it answers', () => phaseOf(source) === 'Running', quick);
});

test('a rejected update is reported once and not offered again until the spec changes', async (t) => {
  const { source, events, provider, start, syncsAfter } = setup(t);
  await start();
  const pod = source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  provider.updateError = () => new PodRejectedError('ImageChangeUnsupported', 'images are fixed on this backend');
  const withImage = (image: string): Pod => ({ ...source.get(KEY)!, spec: { ...pod.spec!, containers: [{ name: 'app', image }] } });
  source.put(withImage('nginx:1.28'));
  await waitFor('the rejection event', () => events.reasons(KEY).includes('Warning ImageChangeUnsupported'), quick);
  const synced = syncsAfter(2);
  source.put(source.get(KEY)!);
  source.put(source.get(KEY)!);
  await synced;
  assert.equal(provider.calls.filter((c) => c.startsWith('update')).length, 1);
  source.put(withImage('nginx:1.29'));
  await waitFor('the next change is offered', () => provider.calls.filter((c) => c.startsWith('update')).length === 2, quick);
});

test('stop aborts provider calls in flight instead of waiting for them', async (t) => {
  const { source, provider, controller, start } = setup(t);
  provider.createGate = new Promise(() => {}); // a backend that never answers
  await start();
  source.put(makePod());
  await waitFor('createPod called', () => provider.signals.length === 1, quick);
  const started = performance.now();
  await controller.stop();
  assert.ok(performance.now() - started < 1000, 'stop returned promptly');
  assert.equal(provider.signals[0]?.aborted, true, 'the call’s signal was aborted');
  assert.equal((provider.signals[0]?.reason as VkError).code, 'VK_ABORTED');
});

test('provider events: recorded against the API pod with count, first time and container; other incarnations, unknown pods and bad reasons are dropped', async (t) => {
  const { source, events, provider, controller, start } = setup(t);
  await start();
  source.put(makePod({ initContainers: [{ name: 'setup', image: 'busybox:1.36' }] }));
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  const base = { namespace: 'default', name: 'p', uid: 'uid-1', type: 'Normal' as const };
  const first = new Date('2026-01-01T00:00:00.500Z');
  provider.reportEvent({ ...base, reason: 'Pulling', message: 'pulling image "nginx:1.27"', container: 'app', count: 2, firstTimestamp: first });
  provider.reportEvent({ ...base, type: 'Warning', reason: 'Failed', message: 'init failed', container: 'setup' });
  provider.reportEvent({ ...base, reason: 'ProvisioningStarted', message: 'group', container: 'no-such-container' });
  provider.reportEvent({ ...base, uid: 'uid-0', reason: 'Pulling', message: 'an older incarnation' });
  provider.reportEvent({ ...base, name: 'gone', reason: 'Pulling', message: 'not in the API' });
  provider.reportEvent({ ...base, reason: 'pulling image', message: 'not CamelCase' });
  provider.reportEvent({ ...base, reason: 'Pulled', message: 'x', count: 0 });
  provider.reportEvent({ ...base, reason: 'Killing', message: 'é'.repeat(600) });
  const fromProvider = events.recorded.filter((e) => !['Created', 'Started'].includes(e.reason));
  assert.deepEqual(
    fromProvider.slice(0, 3).map((e) => [e.key, e.uid, e.type, e.reason, e.details]),
    [
      ['default/p', 'uid-1', 'Normal', 'Pulling', { count: 2, firstTimestamp: '2026-01-01T00:00:00Z', fieldPath: 'spec.containers{app}' }],
      ['default/p', 'uid-1', 'Warning', 'Failed', { fieldPath: 'spec.initContainers{setup}' }],
      ['default/p', 'uid-1', 'Normal', 'ProvisioningStarted', {}],
    ],
  );
  const long = fromProvider[3]!;
  assert.equal(long.reason, 'Killing');
  assert.ok(Buffer.byteLength(long.message) <= 1024 && long.message.endsWith(' ...'), 'the message is cut to 1024 bytes');
  assert.equal(fromProvider.length, 4);
  assert.equal(controller.droppedProviderEvents, 4);
});

test('metrics hooks: a start, its first Running, a failed create and a pod the provider lost (restart) are reported once each', async (t) => {
  const created: string[] = [];
  const runningPods: string[] = [];
  const workers: PodWorkerOperation[] = [];
  const { source, provider, start, syncsAfter } = setup(t, {
    metrics: {
      podCreated: (ok, restarted) => created.push(`${ok ? 'ok' : 'error'}${restarted ? ' restarted' : ''}`),
      podRunning: (pod, seconds) => {
        assert.ok(seconds >= 0);
        runningPods.push(pod.metadata?.name ?? '');
      },
      podWorker: (operation) => workers.push(operation),
    },
  });
  await start();
  source.put(makePod());
  await waitFor('Running', () => phaseOf(source) === 'Running', quick);
  await waitFor('reported running', () => runningPods.length === 1, quick);
  assert.deepEqual(created, ['ok']);
  assert.equal(workers[0], 'create');

  provider.pods.delete(KEY);
  provider.createError = () => new Error('backend down');
  source.put({ ...source.get(KEY)! });
  await waitFor('a failed re-create', () => created.includes('error restarted'), quick);
  provider.createError = undefined;
  await waitFor('re-created', () => created.at(-1) === 'ok restarted', quick);
  assert.equal(created[0], 'ok');
  assert.ok(
    created.slice(1, -1).every((c) => c === 'error restarted'),
    created.join(', '),
  );
  const synced = syncsAfter();
  source.put({ ...source.get(KEY)! });
  await synced;
  assert.deepEqual(runningPods, ['p'], 'the first Running is reported once per incarnation');
});
