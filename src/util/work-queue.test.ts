import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../../test/harness/wait.ts';
import { WorkQueue, runWorkers } from './work-queue.ts';

test('a key is queued once however often it is added', async () => {
  const queue = new WorkQueue();
  queue.add('a');
  queue.add('b');
  queue.add('a');
  assert.equal(queue.length, 2);
  assert.equal(await queue.get(), 'a');
  assert.equal(await queue.get(), 'b');
});

test('a key re-added while processing comes back only after done', async () => {
  const queue = new WorkQueue();
  queue.add('a');
  const key = await queue.get();
  queue.add('a');
  assert.equal(queue.length, 0, 'not handed to a second worker while processing');
  queue.done(key!);
  assert.equal(queue.length, 1);
  assert.equal(await queue.get(), 'a');
});

test('a waiting worker receives a key added later', async () => {
  const queue = new WorkQueue();
  const pending = queue.get();
  queue.add('x');
  assert.equal(await pending, 'x');
  queue.add('x');
  assert.equal(queue.length, 0, 'x is processing, so the re-add is deferred');
});

test('rate-limited retries back off exponentially per key and forget resets', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const queue = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 35 });
  assert.equal(queue.addRateLimited('k'), 10);
  t.mock.timers.tick(10);
  assert.equal(queue.length, 1);
  assert.equal(queue.addRateLimited('k'), 20);
  assert.equal(queue.addRateLimited('j'), 10);
  assert.equal(queue.addRateLimited('k'), 35, 'capped at maxDelayMs');
  queue.forget('k');
  assert.equal(queue.failureCount('k'), 0);
});

test('workers process every key and stop on shutdown', async () => {
  const queue = new WorkQueue();
  const seen: string[] = [];
  const done = runWorkers(queue, 3, async (key) => {
    seen.push(key);
  });
  for (let i = 0; i < 50; i++) queue.add(`k${i}`);
  while (seen.length < 50) await new Promise((resolve) => setImmediate(resolve));
  queue.shutDown();
  await done;
  assert.equal(new Set(seen).size, 50);
});

test('workers start as keys come, at most `workers` at once, and none is kept while the queue is idle', async () => {
  const queue = new WorkQueue();
  let running = 0;
  let most = 0;
  let handled = 0;
  const done = runWorkers(queue, 3, async () => {
    most = Math.max(most, ++running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running--;
    handled++;
  });
  for (let i = 0; i < 10; i++) queue.add(`k${i}`);
  assert.equal(running, 0, 'no handle runs inside add()');
  await waitFor('all 10 handled', () => handled === 10, { timeoutMs: 2000, intervalMs: 2 });
  assert.equal(most, 3);
  queue.add('later');
  await waitFor('a key added to an idle queue', () => handled === 11, { timeoutMs: 2000, intervalMs: 2 });
  queue.shutDown();
  await done;
});

test('a key added just as the last worker ends is still handled', async () => {
  // The add lands a few microtasks after the handle returns, at every depth from 0 to 20: one of
  // them falls between the worker's last take() and its end.
  for (let depth = 0; depth <= 20; depth++) {
    const queue = new WorkQueue();
    const seen: string[] = [];
    const done = runWorkers(queue, 1, async (key) => {
      seen.push(key);
      if (key === 'first')
        void (async () => {
          for (let i = 0; i < depth; i++) await undefined;
          queue.add('second');
        })();
    });
    queue.add('first');
    await waitFor(`the second key (add ${depth} microtasks later)`, () => seen.length === 2, { timeoutMs: 1000, intervalMs: 1 });
    queue.shutDown();
    await done;
  }
});

test('a pending delayed add due later (a token refresh) does not swallow a sooner retry', async () => {
  const queue = new WorkQueue({ baseDelayMs: 10 });
  queue.addAfter('pod', 3_600_000);
  queue.addRateLimited('pod');
  queue.addAfter('pod', 60_000); // later than the retry: covered by it
  const key = await Promise.race([queue.get(), new Promise<string>((resolve) => setTimeout(resolve, 2_000, 'not retried').unref())]);
  assert.equal(key, 'pod');
  queue.done('pod');
  assert.equal(queue.length, 0);
  queue.shutDown();
});

test('urgent keys are handed out before the others, and an urgent add promotes a queued key once', async () => {
  const queue = new WorkQueue();
  for (const key of ['create-1', 'create-2', 'status-of-3', 'create-4']) queue.add(key);
  queue.add('status-of-3', true);
  queue.add('status-of-5', true);
  assert.equal(queue.length, 5);
  const order: string[] = [];
  for (let i = 0; i < 5; i++) order.push((await queue.get())!);
  assert.deepEqual(order, ['status-of-3', 'status-of-5', 'create-1', 'create-2', 'create-4'], 'the promoted key is not handed out twice');
  assert.equal(queue.length, 0);
});

test('an urgent re-add while processing comes back urgent after done', async () => {
  const queue = new WorkQueue();
  queue.add('a');
  const key = (await queue.get())!;
  queue.add('b');
  queue.add('a', true);
  queue.add('a');
  queue.done(key);
  assert.equal(await queue.get(), 'a', 'ahead of b');
  assert.equal(await queue.get(), 'b');
});
