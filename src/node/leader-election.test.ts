// Leader election over an in-memory Lease with the API server's optimistic concurrency (a small
// fake: resourceVersion checks on update, 404/409 as Status errors). Short durations; every wait
// is on a condition.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { KubeApiError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Lease } from '../kube/types.ts';
import { silentLogger } from '../log.ts';
import { waitFor } from '../../test/harness/wait.ts';
import { LeaderElector, type Term } from './leader-election.ts';

const TIMINGS = { leaseDurationMs: 800, renewDeadlineMs: 500, retryPeriodMs: 100 };
const quick = { timeoutMs: 5000, intervalMs: 10 };

class LeaseStore {
  lease: Lease | undefined;
  private version = 0;

  write(lease: Lease, expectedVersion?: string): Lease {
    if (expectedVersion !== undefined && expectedVersion !== this.lease?.metadata?.resourceVersion) throw apiError(409);
    this.version++;
    this.lease = structuredClone({ ...lease, metadata: { ...lease.metadata, resourceVersion: String(this.version) } });
    return structuredClone(this.lease);
  }
}

function apiError(status: number): KubeApiError {
  return new KubeApiError('FAKE', '/leases/node-a-vk-leader', status, status === 404 ? 'NotFound' : 'Conflict', 'fake');
}

/** One process's API client; `partitioned` makes every request fail as if the API were unreachable. */
function clientOf(store: LeaseStore): { client: KubeClient; cut: (on: boolean) => void } {
  let partitioned = false;
  const check = () => {
    if (partitioned) throw new Error('connect ECONNREFUSED');
  };
  const client = {
    get: async () => {
      check();
      if (!store.lease) throw apiError(404);
      return structuredClone(store.lease);
    },
    create: async (_path: string, body: Lease) => {
      check();
      if (store.lease) throw apiError(409);
      return store.write(body);
    },
    update: async (_path: string, body: Lease) => {
      check();
      return store.write(body, body.metadata?.resourceVersion ?? '');
    },
  } as unknown as KubeClient;
  return { client, cut: (on) => (partitioned = on) };
}

function elector(t: TestContext, store: LeaseStore, identity: string) {
  const { client, cut } = clientOf(store);
  const e = new LeaderElector(client, { namespace: 'ns', name: 'node-a-vk-leader', identity, ...TIMINGS }, silentLogger);
  const state = { leading: false, term: undefined as Term | undefined, terms: 0, lostAt: 0 };
  e.start(async (term) => {
    state.leading = true;
    state.term = term;
    state.terms++;
    await new Promise<void>((resolve) => (term.lost.aborted ? resolve() : term.lost.addEventListener('abort', () => resolve(), { once: true })));
    state.lostAt = Date.now();
    state.leading = false;
  });
  t.after(() => e.stop());
  return { e, state, cut };
}

test('one of two candidates leads; the other waits while the Lease is renewed', async (t) => {
  const store = new LeaseStore();
  const a = elector(t, store, 'a');
  await waitFor('a leads', () => a.state.leading, quick);
  const b = elector(t, store, 'b');
  const renewed = store.lease!.spec!.renewTime;
  await waitFor('a renewed twice more', () => store.lease!.spec!.renewTime !== renewed && Number(store.lease!.metadata!.resourceVersion) >= 4, quick);
  assert.equal(b.state.terms, 0);
  assert.equal(store.lease?.spec?.holderIdentity, 'a');
});

test('a partitioned holder fences itself (valid() false) before the other takes the Lease', async (t) => {
  const store = new LeaseStore();
  const a = elector(t, store, 'a');
  await waitFor('a leads', () => a.state.leading, quick);
  const b = elector(t, store, 'b');
  await waitFor('b has seen the Lease', () => Number(store.lease!.metadata!.resourceVersion) >= 2, quick);
  a.cut(true);
  const cutAt = Date.now();
  await waitFor('b leads', () => b.state.leading, quick);
  const takenAt = Date.now();
  assert.equal(store.lease?.spec?.holderIdentity, 'b');
  assert.equal(a.state.term!.valid(), false, 'the old holder is fenced');
  assert.ok(a.state.lostAt > 0 && a.state.lostAt < takenAt, 'the old term ended before the new one began');
  assert.ok(takenAt - cutAt >= TIMINGS.leaseDurationMs - TIMINGS.retryPeriodMs, `taken over after ${takenAt - cutAt} ms, not before the Lease expired`);
  // Back on the network: a stands by, it does not take the Lease back.
  a.cut(false);
  await waitFor('b renewed after a came back', () => store.lease!.spec!.holderIdentity === 'b' && !a.state.leading, quick);
  assert.equal(a.state.terms, 1);
});

test('a stopping holder releases the Lease: the standby takes over at once, not after the lease duration', async (t) => {
  const store = new LeaseStore();
  const a = elector(t, store, 'a');
  await waitFor('a leads', () => a.state.leading, quick);
  const b = elector(t, store, 'b');
  await waitFor('b has seen the Lease', () => Number(store.lease!.metadata!.resourceVersion) >= 2, quick);
  const stoppedAt = Date.now();
  await a.e.stop();
  assert.equal(a.state.leading, false);
  await waitFor('b leads', () => b.state.leading, quick);
  assert.ok(Date.now() - stoppedAt < TIMINGS.leaseDurationMs, `taken over ${Date.now() - stoppedAt} ms after the release`);
  assert.equal(store.lease?.spec?.leaseTransitions, 1);
});
