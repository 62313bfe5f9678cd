import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightLimit } from './in-flight.ts';

test('never more than the limit in flight; every call runs, in arrival order once waiting, failures included', async () => {
  const limit = new InFlightLimit(3);
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const calls = Array.from({ length: 20 }, (_, i) =>
    limit.run(async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await new Promise((r) => setTimeout(r, 2 + (i % 3)));
      running--;
      if (i === 5) throw new Error('five');
      return i;
    }),
  );
  const results = await Promise.allSettled(calls);
  assert.equal(peak, 3);
  assert.deepEqual(
    order,
    [...order].sort((a, b) => a - b),
  );
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 19);
  assert.equal(running, 0);
});
