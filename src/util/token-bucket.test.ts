import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from './token-bucket.ts';

test('a bucket gives its burst at once, then refills at qps', () => {
  const bucket = new TokenBucket(10, 3);
  assert.equal([1, 2, 3, 4].filter(() => bucket.tryTake()).length, 3);
  const wait = bucket.waitMs();
  assert.ok(wait > 0 && wait <= 100, `wait ${wait}`);
});
