// The process-wide Event budget: one bucket and one bounded queue for all nodes, drops counted,
// pod status writes ahead of Events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../test/harness/wait.ts';
import { EventBudget } from './event-budget.ts';
import type { StatusClient } from './status-writer.ts';

/** A write that records its sender and finishes when told to. */
function writes() {
  const sent: string[] = [];
  const open: (() => void)[] = [];
  const write = (name: string) => () => {
    sent.push(name);
    return new Promise<void>((resolve) => open.push(resolve));
  };
  const finishAll = () => open.splice(0).forEach((resolve) => resolve());
  return { sent, write, finishAll };
}

test('all nodes share one burst and one queue: what is beyond the queue is dropped and counted', async (t) => {
  // No refill to speak of: only the burst is sent.
  const budget = new EventBudget({ rateLimit: { qps: 0.001, burst: 3 }, maxQueued: 4, maxInFlight: 10 });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  const nodeA = {};
  const nodeB = {};
  for (let i = 0; i < 5; i++) budget.submit(nodeA, write(`a${i}`));
  for (let i = 0; i < 5; i++) budget.submit(nodeB, write(`b${i}`));
  finishAll();
  assert.deepEqual(sent, ['a0', 'a1', 'a2'], 'the burst of 3 is the process’s, not each node’s');
  assert.equal(budget.written, 3);
  assert.equal(budget.queued, 4);
  assert.equal(budget.dropped, 3, '10 submitted: 3 sent, 4 queued, 3 dropped');
});

test('the queue drains as tokens come back', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 20, burst: 1 }, maxInFlight: 10 });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  for (let i = 0; i < 5; i++) budget.submit({}, write(`e${i}`));
  assert.equal(sent.length, 1);
  await waitFor('every Event sent', () => (finishAll(), sent.length === 5), { timeoutMs: 2000, intervalMs: 2 });
  assert.deepEqual(sent, ['e0', 'e1', 'e2', 'e3', 'e4'], 'in order');
  assert.equal(budget.dropped, 0);
});

test('pod status writes go first: while one is in flight Events keep to their lane of one, then widen', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 1000, burst: 100 }, maxInFlight: 4, laneInFlight: 1 });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  let finishPatch!: () => void;
  const client = {
    patch: () => new Promise((resolve) => (finishPatch = () => resolve({}))),
    delete: async () => undefined,
  } as unknown as StatusClient;
  const status = budget.prioritized(client);
  const patched = status.patch('/api/v1/namespaces/ns/pods/p/status', {}, 'application/merge-patch+json');
  for (const reason of ['pulled', 'created', 'started', 'killing']) budget.submit({}, write(reason));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent, ['pulled'], 'one Event in flight beside the status write, not four');
  assert.equal(budget.queued, 3);
  finishPatch();
  await patched;
  assert.deepEqual(sent, ['pulled', 'created', 'started', 'killing'], 'the rest as soon as the status write is done');
  finishAll();
});

test('at most maxInFlight Events are in flight, so status writes never queue behind a whole burst', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 1000, burst: 100 }, maxInFlight: 2 });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  for (let i = 0; i < 6; i++) budget.submit({}, write(`e${i}`));
  assert.equal(sent.length, 2);
  finishAll();
  await waitFor('the next two', () => sent.length === 4, { timeoutMs: 2000, intervalMs: 1 });
  finishAll();
  await waitFor('all', () => sent.length === 6, { timeoutMs: 2000, intervalMs: 1 });
  finishAll();
});

test('a stopping node takes back only its own queued Events', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 0.001, burst: 1 } });
  t.after(() => budget.stop());
  const { write } = writes();
  const nodeA = {};
  const nodeB = {};
  budget.submit(nodeA, write('a0'));
  budget.submit(nodeA, write('a1'));
  budget.submit(nodeB, write('b0'));
  budget.submit(nodeA, write('a2'));
  assert.equal(budget.queued, 3);
  budget.cancel(nodeA);
  assert.equal(budget.queued, 1, "node B's Event stays");
});

test('a failing Event write frees its place', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 1000, burst: 100 }, maxInFlight: 1 });
  t.after(() => budget.stop());
  const sent: string[] = [];
  budget.submit({}, () => (sent.push('fails'), Promise.reject(new Error('409'))));
  budget.submit({}, () => (sent.push('next'), Promise.resolve()));
  await waitFor('the next Event', () => sent.length === 2, { timeoutMs: 2000, intervalMs: 1 });
  assert.equal(budget.written, 2);
});

test('status writes always in flight (many nodes) do not starve Events: the lane sends them one after another', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 1000, burst: 100 } });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  // Some node's status write is always in flight, as at 1,000 nodes.
  void budget.statusWrite(() => new Promise(() => {}));
  for (let i = 0; i < 20; i++) budget.submit({}, write(`e${i}`));
  assert.deepEqual(sent, ['e0'], 'the first Event goes at once, not after a wait for status writes to pause');
  await waitFor('all 20 Events, each after the one before it', () => (finishAll(), sent.length === 20), { timeoutMs: 2000, intervalMs: 1 });
  assert.equal(budget.written, 20);
  assert.equal(budget.dropped, 0);
});

test('the lane is a sixteenth of the status writes in flight, at least one and at most maxInFlight', async (t) => {
  const budget = new EventBudget({ rateLimit: { qps: 1000, burst: 100 }, maxInFlight: 4 });
  t.after(() => budget.stop());
  const { sent, write, finishAll } = writes();
  const inFlight = (n: number) => {
    for (let i = 0; i < n; i++) void budget.statusWrite(() => new Promise(() => {}));
  };
  inFlight(31);
  for (let i = 0; i < 10; i++) budget.submit({}, write(`e${i}`));
  assert.equal(sent.length, 1, '31 status writes: a lane of one');
  inFlight(1);
  budget.submit({}, write('e10'));
  assert.equal(sent.length, 2, '32 status writes: two');
  inFlight(200);
  budget.submit({}, write('e11'));
  assert.equal(sent.length, 4, '232 status writes: four, the most');
  finishAll();
});

test('the lane stays within the rate limit', async (t) => {
  // Burst 2, then one token per 100 ms, however fast the API answers.
  const budget = new EventBudget({ rateLimit: { qps: 10, burst: 2 } });
  t.after(() => budget.stop());
  void budget.statusWrite(() => new Promise(() => {}));
  const sent: number[] = [];
  const start = performance.now();
  for (let i = 0; i < 10; i++) budget.submit({}, () => (sent.push(performance.now() - start), Promise.resolve()));
  await waitFor('the burst and one token more', () => sent.length === 3, { timeoutMs: 2000, intervalMs: 5 });
  assert.ok(sent[1]! < 50, `the burst goes at once (${sent[1]} ms)`);
  assert.ok(sent[2]! >= 90, `the third waits for a token (${sent[2]} ms)`);
  assert.equal(budget.queued, 7);
});
