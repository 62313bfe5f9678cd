// The mock under the Provider contract: the error-simulation annotation, aborts of
// options.signal, deletePod reasons, and the error classes of its kubelet API refusals.
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { duplexPair } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  AbortedError,
  ContainerStateError,
  InvalidRequestError,
  NotFoundError,
  PodRejectedError,
  ProviderUnavailableError,
  TryLaterError,
} from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import type { Pod } from '../../kube/types.ts';
import type { ResolvedPod } from '../provider.ts';
import { parseMockConfig } from './config.ts';
import { MockProvider } from './mock-provider.ts';
import { makePod } from '../../../test/harness/pods.ts';

/** Provider calls in these tests are never aborted unless a test says so. */
const call = { signal: new AbortController().signal };

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function resolved(pod: Pod): ResolvedPod {
  return { pod, volumes: new Map() };
}

function provider(t: TestContext, config: unknown = {}): MockProvider {
  const p = new MockProvider(parseMockConfig(config), { nodeName: 'vk', log: silentLogger });
  t.after(() => p.close());
  return p;
}

describe('error contract simulation (mock.vk.io/create-error)', () => {
  const withError = (value: string, o: Parameters<typeof makePod>[0] = {}) =>
    resolved(makePod({ ...o, annotations: { 'mock.vk.io/create-error': value, ...o.annotations } }));

  test('rejected:<Reason>[:<message>] throws PodRejectedError with the reason', async (t) => {
    const p = provider(t);
    await assert.rejects(p.createPod(withError('rejected:UnsupportedThing'), call), (err: unknown) => {
      assert.ok(err instanceof PodRejectedError);
      assert.equal(err.code, 'VK_POD_REJECTED');
      assert.equal(err.reason, 'UnsupportedThing');
      assert.equal(err.message, 'mock: pod rejected (mock.vk.io/create-error): UnsupportedThing');
      return true;
    });
    await assert.rejects(p.createPod(withError('rejected:UnsupportedPlatform:no arm64 here: sorry'), call), {
      name: 'PodRejectedError',
      reason: 'UnsupportedPlatform',
      message: 'no arm64 here: sorry',
    });
    assert.equal(p.podCount(), 0);
    assert.equal(p.stats().podIPsInUse, 0);
    assert.equal(p.stats().createFailures, 2);
  });

  test('unavailable[:<message>] throws ProviderUnavailableError', async (t) => {
    const p = provider(t);
    await assert.rejects(
      p.createPod(withError('unavailable'), call),
      (err: unknown) =>
        err instanceof ProviderUnavailableError &&
        err.code === 'VK_PROVIDER_UNAVAILABLE' &&
        err.message === 'mock: backend unavailable (mock.vk.io/create-error)',
    );
    await assert.rejects(p.createPod(withError('unavailable:region down'), call), { name: 'ProviderUnavailableError', message: 'region down' });
    assert.equal(p.podCount(), 0);
  });

  test('try-later[:<ms>[:<message>]] throws TryLaterError with retryAfterMs', async (t) => {
    const p = provider(t);
    await assert.rejects(
      p.createPod(withError('try-later:2000'), call),
      (err: unknown) =>
        err instanceof TryLaterError &&
        err.code === 'VK_TRY_LATER' &&
        err.retryAfterMs === 2000 &&
        err.message === 'mock: backend busy, try later (mock.vk.io/create-error)',
    );
    await assert.rejects(p.createPod(withError('try-later'), call), (err: unknown) => err instanceof TryLaterError && err.retryAfterMs === undefined);
    await assert.rejects(p.createPod(withError('try-later:0:throttled'), call), { name: 'TryLaterError', retryAfterMs: 0, message: 'throttled' });
    assert.equal(p.podCount(), 0);
  });

  test('create-error wins over fail-create; without it the pod is created', async (t) => {
    const p = provider(t);
    await assert.rejects(p.createPod(withError('unavailable', { annotations: { 'mock.vk.io/fail-create': 'plain failure' } }), call), ProviderUnavailableError);
    await p.createPod(resolved(makePod()), call);
    assert.equal(p.podCount(), 1);
  });

  test('malformed values reject with InvalidRequestError naming the annotation', async (t) => {
    const p = provider(t);
    for (const value of ['rejected', 'rejected:', 'rejected:lowercase', 'try-later:soon', 'try-later:99999999999', 'explode', '']) {
      await assert.rejects(
        p.createPod(withError(value), call),
        (err: unknown) =>
          err instanceof InvalidRequestError &&
          err.message.startsWith('annotation mock.vk.io/create-error: expected ') &&
          err.message.endsWith(`got ${JSON.stringify(value)}`),
        value,
      );
    }
    assert.equal(p.stats().createFailures, 0, 'a malformed annotation is not an injected failure');
  });

  test('the create delay comes first, and an abort cuts it short', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { createDelayMs: 1000 } });
    let settled = false;
    const failing = p.createPod(withError('try-later:50'), call).then(
      () => assert.fail('createPod should reject'),
      (err: unknown) => ((settled = true), err),
    );
    await nextTurn();
    assert.equal(settled, false, 'still waiting out createDelayMs');
    t.mock.timers.tick(1000);
    assert.ok((await failing) instanceof TryLaterError);

    const abort = new AbortController();
    const aborted = p.createPod(withError('unavailable', { name: 'q' }), { signal: abort.signal });
    abort.abort();
    await assert.rejects(aborted, AbortedError);
  });
});

describe('aborts (options.signal)', () => {
  test('an abort during createDelayMs rejects at once and takes the pod back', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { createDelayMs: 60_000 } });
    const seen: Pod[] = [];
    p.notifyPods!((pod) => seen.push(pod));
    const abort = new AbortController();
    let outcome: unknown;
    const created = p.createPod(resolved(makePod()), { signal: abort.signal }).then(
      () => (outcome = 'resolved'),
      (err: unknown) => (outcome = err),
    );
    await nextTurn();
    assert.equal(p.podCount(), 1, 'visible while createPod waits');
    abort.abort(new Error('vk stopping'));
    await nextTurn(); // no timer has run: only the abort can have settled it
    await created;
    assert.ok(outcome instanceof AbortedError, `rejected with an AbortedError, got ${String(outcome)}`);
    assert.equal(outcome.code, 'VK_ABORTED');
    assert.equal(outcome.message, 'mock: createPod default/p: aborted');
    assert.equal((outcome.cause as Error).message, 'vk stopping');
    assert.equal(p.podCount(), 0, 'no half-created pod');
    assert.equal(await p.getPod('default', 'p', call), undefined);
    const s = p.stats();
    assert.equal(s.podIPsInUse, 0);
    assert.equal(s.timers, 0);
    assert.equal(s.created, 0);
    assert.equal(s.createsAborted, 1);
    assert.equal(seen.length, 1, 'only the report of the creation, delivered before the abort');

    // The name is free for the next attempt.
    await p.createPod(resolved(makePod({ uid: 'uid-2', annotations: { 'mock.vk.io/create-delay-ms': '0' } })), { signal: new AbortController().signal });
    assert.equal((await p.getPod('default', 'p', call))?.metadata?.uid, 'uid-2');
    assert.equal(p.stats().podIPsInUse, 1);
  });

  test('an already aborted signal rejects before anything happens', async (t) => {
    const p = provider(t);
    await p.createPod(resolved(makePod({ name: 'kept' })), call);
    const signal = AbortSignal.abort();
    await assert.rejects(p.createPod(resolved(makePod()), { signal }), AbortedError);
    await assert.rejects(p.updatePod(resolved(makePod({ name: 'kept', annotations: { x: 'y' } })), { signal }), AbortedError);
    await assert.rejects(p.deletePod(makePod({ name: 'kept' }), { signal, reason: 'deleted' }), AbortedError);
    assert.equal(p.podCount(), 1);
    assert.equal(p.resolvedPod('default', 'kept')?.pod.metadata?.annotations, undefined, 'the update was not applied');
    assert.equal(p.stats().created, 1);
  });

  test('an abort after createPod resolved changes nothing', async (t) => {
    const p = provider(t, { lifecycle: { createDelayMs: 5 } });
    const abort = new AbortController();
    await p.createPod(resolved(makePod()), { signal: abort.signal });
    abort.abort();
    assert.equal(p.podCount(), 1);
    assert.equal((await p.getPod('default', 'p', call))?.status?.phase, 'Running');
  });
});

describe('deletePod reasons', () => {
  test("'finished' releases a finished pod at once without another report; 'deleted' reports the final state", async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const p = provider(t, { lifecycle: { completeAfterMs: 1000 } });
    const seen: string[] = [];
    p.notifyPods!((pod) => seen.push(`${pod.metadata?.name} ${pod.status?.phase}`));
    await p.createPod(resolved(makePod({ name: 'job', uid: 'j', restartPolicy: 'Never' })), call);
    await p.createPod(resolved(makePod({ name: 'svc', uid: 's' })), call);
    t.mock.timers.tick(1000);
    assert.equal((await p.getPod('default', 'job', call))?.status?.phase, 'Succeeded');
    await nextTurn(); // the notifier delivers on the turn after the change (setImmediate is not faked here)
    assert.ok(seen.includes('job Succeeded'));

    await p.deletePod(makePod({ name: 'job', uid: 'j' }), { ...call, reason: 'finished' });
    assert.equal(await p.getPod('default', 'job', call), undefined);
    await p.deletePod(makePod({ name: 'svc', uid: 's' }), { ...call, reason: 'deleted' });
    // Both deletes happen in this turn, so one batch holds whatever they report: svc's final state, and nothing about the job.
    await nextTurn();
    assert.ok(seen.includes('svc Succeeded'));
    assert.deepEqual(
      seen.filter((x) => x.startsWith('job')),
      ['job Succeeded'], // created and finished within one turn: one report, with the latest state
      'nothing more about the job after its release',
    );
    const s = p.stats();
    assert.equal(s.released, 1);
    assert.equal(s.deleted, 1);
    assert.equal(s.podIPsInUse, 0);
    await assert.rejects(p.deletePod(makePod({ name: 'job', uid: 'j' }), { ...call, reason: 'finished' }), NotFoundError);
  });

  test('without options the reason is deleted', async (t) => {
    const p = provider(t);
    await p.createPod(resolved(makePod()), call);
    await p.deletePod(makePod(), { ...call, reason: 'deleted' });
    assert.equal(p.stats().deleted, 1);
    assert.equal(p.stats().released, 0);
  });
});

describe('container state errors', () => {
  test('exec on a container that is not running, port-forward to a pending pod, a bad port', async (t) => {
    const p = provider(t, { lifecycle: { runningDelayMs: 60_000 } });
    await p.createPod(resolved(makePod()), call);
    const streams = { tty: false, signal: new AbortController().signal };
    await assert.rejects(
      p.runInContainer('default', 'p', 'app', ['true'], streams),
      (err: unknown) => err instanceof ContainerStateError && err.code === 'VK_CONTAINER_STATE' && err.message === 'container "app" in pod "p" is not running',
    );
    await assert.rejects(
      p.portForward('default', 'p', 80, duplexPair()[1]),
      (err: unknown) => err instanceof ContainerStateError && err.message === 'pod "p" is not running (phase Pending)',
    );
    const q = provider(t);
    await q.createPod(resolved(makePod()), call);
    await assert.rejects(
      q.portForward('default', 'p', 70_000, duplexPair()[1]),
      (err: unknown) => err instanceof InvalidRequestError && err.message === 'invalid port 70000',
    );
  });
});
