import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs } from './backoff.ts';

test('no jitter doubles from the base up to the cap', () => {
  const policy = { baseMs: 200, maxMs: 1000, jitter: 'none' } as const;
  assert.deepEqual(
    [0, 1, 2, 3, 10, 2000].map((a) => backoffDelayMs(policy, a)),
    [200, 400, 800, 1000, 1000, 1000],
  );
});

test('proportional jitter stays within ±20 % and never above the cap', () => {
  const policy = { baseMs: 200, maxMs: 30_000, jitter: 'proportional' } as const;
  assert.equal(
    backoffDelayMs(policy, 0, () => 0),
    160,
  );
  assert.ok(Math.abs(backoffDelayMs(policy, 0, () => 1) - 240) < 1e-9);
  assert.equal(
    backoffDelayMs(policy, 20, () => 1),
    30_000,
  );
});

test('full jitter spans zero to the capped ceiling', () => {
  const policy = { baseMs: 100, maxMs: 2000, jitter: 'full' } as const;
  assert.equal(
    backoffDelayMs(policy, 3, () => 0),
    0,
  );
  assert.equal(
    backoffDelayMs(policy, 3, () => 0.5),
    400,
  );
  assert.equal(
    backoffDelayMs(policy, 9, () => 1),
    2000,
  );
});
