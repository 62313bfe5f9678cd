// The notifyPodEvents helpers: listeners isolated from each other, and new occurrences counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../log.ts';
import type { PodEvent } from '../provider.ts';
import { NewOccurrences, PodEventReporter } from './pod-events.ts';

test('the reporter hands each event to every listener; one that throws does not stop the others; none: nothing counted', () => {
  const reporter = new PodEventReporter(silentLogger);
  const event: PodEvent = { namespace: 'ns', name: 'p', uid: 'u', type: 'Normal', reason: 'Pulled', message: 'm' };
  reporter.report(event);
  assert.equal(reporter.reported, 0);
  const got: PodEvent[] = [];
  reporter.addListener(() => {
    throw new Error('broken listener');
  });
  reporter.addListener((e) => got.push(e));
  reporter.report(event);
  assert.deepEqual(got, [event]);
  assert.equal(reporter.reported, 1);
});

test('new occurrences: first sight is the whole count, growth the difference, a reset count with a new time one, the same read none', () => {
  const seen = new NewOccurrences();
  assert.equal(seen.take('k', 3, 't1'), 3);
  assert.equal(seen.take('k', 3, 't1'), 0);
  assert.equal(seen.take('k', 5, 't2'), 2);
  assert.equal(seen.take('k', 1, 't3'), 1, 'the backend reset its count (a new group), but it happened again');
  assert.equal(seen.take('k', 1, 't3'), 0);
  assert.equal(seen.take('no-count', 0), 1, 'a missing or zero count is one occurrence');
  assert.equal(seen.take('no-count', 0), 0);
  seen.baseline([{ key: 'old', count: 7, lastTimestamp: 't0' }]);
  assert.equal(seen.take('old', 7, 't0'), 0);
});
