import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SingleFlight } from './single-flight.ts';

test('callers of one key share the call in flight; other keys and later callers start their own; a failure is shared, not kept', async () => {
  const flight = new SingleFlight<number>();
  let calls = 0;
  const settle: ((value: number | Error) => void)[] = [];
  const call = () =>
    new Promise<number>((resolve, reject) => {
      calls++;
      settle.push((v) => (v instanceof Error ? reject(v) : resolve(v)));
    });
  const a = flight.run('k', call);
  const b = flight.run('k', call);
  const other = flight.run('j', call);
  assert.equal(calls, 2);
  assert.equal(a, b);
  settle[0]!(new Error('boom'));
  settle[1]!(7);
  await assert.rejects(a, /boom/);
  assert.equal(await other, 7);
  const c = flight.run('k', call);
  assert.equal(calls, 3, 'after the failure settled, a new call');
  settle[2]!(1);
  assert.equal(await c, 1);
});
