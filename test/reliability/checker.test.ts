// The chaos checker's counts on hand-made observations: each finding kind, and none when the
// node and its backend agree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compare, duplicateUids, LEAK_SLACK_MS, overlapMs, percentile, unconverged, type ApiPod, type BackendPod } from '../../reliability/checker.ts';
import { faultRounds, FAULT_KINDS } from '../../reliability/faults.ts';
import { seededRandom } from '../../src/util/seeded-random.ts';

const api = (uid: string, phase = 'Running', deleting = false): ApiPod => ({ uid, key: `ns/${uid}`, phase, deleting });
const backend = (uid: string, phase = 'Running'): BackendPod => ({ uid, key: `ns/${uid}`, phase });

test('agreeing API and backend: nothing found', () => {
  const f = compare([api('a'), api('b', 'Succeeded')], [backend('a'), backend('b', 'Succeeded')], ['a', 'b'], [], 0);
  assert.deepEqual(f, { duplicates: [], lost: [], leaked: [], diverged: [] });
});

test('a UID created twice is a duplicate; a re-created name with a new UID is not', () => {
  assert.deepEqual(duplicateUids(['a', 'b', 'a', 'c']), ['a created 2 times']);
  assert.deepEqual(duplicateUids(['a', 'b']), []);
});

test('lost: a pod that should run is missing from the backend; finished or terminating ones are not lost', () => {
  const f = compare([api('a'), api('b', 'Succeeded'), api('c', 'Running', true)], [], [], [], 0);
  assert.equal(f.lost.length, 1);
  assert.match(f.lost[0]!, /ns\/a \(a\): Running in the API, not in the backend/);
});

test('diverged: phases differ for a pod in both (terminating pods may lag)', () => {
  const f = compare([api('a', 'Running'), api('b', 'Running', true)], [backend('a', 'Pending'), backend('b', 'Succeeded')], [], [], 0);
  assert.equal(f.diverged.length, 1);
  assert.match(f.diverged[0]!, /Running in the API, Pending in the backend/);
});

test('leaked: deleted in the API and still in the backend only after grace + slack', () => {
  const deletion = { uid: 'a', key: 'ns/a', atMs: 1_000, graceSeconds: 5 };
  const due = 1_000 + 5_000 + LEAK_SLACK_MS;
  assert.equal(compare([], [backend('a')], [], [deletion], due).leaked.length, 0);
  const late = compare([], [backend('a')], [], [deletion], due + 2_000).leaked;
  assert.equal(late.length, 1);
  assert.match(late[0]!, /2 s past its grace period/);
  assert.equal(compare([api('a', 'Running', true)], [backend('a')], [], [deletion], due + 2_000).leaked.length, 1, 'a terminating pod leaks too');
  assert.equal(compare([api('a')], [backend('a')], [], [deletion], due + 2_000).leaked.length, 0, 'back in the API (not deleted): not leaked');
});

test('unconverged counts pods running at the fault that are not Running on both sides', () => {
  const atFault = new Set(['a', 'b', 'c', 'd']);
  // a: fine; b: API Pending; c: deleted since (gone from the API); d: backend lost it; e: new, not counted.
  const n = unconverged(atFault, [api('a'), api('b', 'Pending'), api('d'), api('e', 'Pending')], [backend('a'), backend('b')]);
  assert.equal(n, 2);
});

test('percentile is nearest-rank', () => {
  assert.equal(percentile([], 50), undefined);
  assert.equal(percentile([5, 1, 3], 50), 3);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 100), 10);
});

test('fault rounds: every kind once per round, the order repeatable from the seed', () => {
  const next = faultRounds(seededRandom(42));
  const round = Array.from({ length: FAULT_KINDS.length }, next);
  assert.deepEqual([...round].sort(), [...FAULT_KINDS].sort());
  const again = faultRounds(seededRandom(42));
  assert.deepEqual(Array.from({ length: FAULT_KINDS.length }, again), round);
});

test('leaked: the time the node could not act (vk dead, kube-apiserver down) extends the deadline', () => {
  const deletion = { uid: 'a', key: 'ns/a', atMs: 0, graceSeconds: 0 };
  const now = LEAK_SLACK_MS + 10_000;
  assert.equal(compare([], [backend('a')], [], [deletion], now).leaked.length, 1);
  assert.equal(compare([], [backend('a')], [], [deletion], now, [{ startMs: 5_000, endMs: 25_000 }]).leaked.length, 0);
  assert.equal(
    overlapMs(
      [
        { startMs: -5_000, endMs: 5_000 },
        { startMs: 8_000, endMs: 100_000 },
      ],
      0,
      10_000,
    ),
    7_000,
  );
});
