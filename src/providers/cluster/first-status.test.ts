import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../../kube/types.ts';
import { FirstStatusDelay, notStarted } from './first-status.ts';

const created: Pod = { metadata: { name: 'p', namespace: 't' }, status: { phase: 'Pending' } };
const running: Pod = {
  metadata: { name: 'p', namespace: 't' },
  status: { phase: 'Running', containerStatuses: [{ name: 'c', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] },
};

test('a target pod that starts within the delay is reported once, when it runs', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const reports: string[] = [];
  const delay = new FirstStatusDelay((key) => reports.push(key), 1000);
  delay.changed('t/p', created);
  delay.changed('t/p', { ...created, status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] } });
  assert.deepEqual(reports, [], 'not yet');
  t.mock.timers.tick(400);
  delay.changed('t/p', running);
  assert.deepEqual(reports, ['t/p']);
  t.mock.timers.tick(5000);
  assert.deepEqual(reports, ['t/p'], 'the held report was dropped');
});

test('a target pod that does not start within the delay is reported when it passes, counted from its first change', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const reports: string[] = [];
  const delay = new FirstStatusDelay((key) => reports.push(key), 1000);
  delay.changed('t/p', created);
  t.mock.timers.tick(600);
  delay.changed('t/p', created);
  t.mock.timers.tick(400);
  assert.deepEqual(reports, ['t/p']);
  delay.stop();
});

test('a gone pod, a deleted one and one with container statuses are reported at once', () => {
  const reports: string[] = [];
  const delay = new FirstStatusDelay((key) => reports.push(key), 1000);
  delay.changed('a', undefined);
  delay.changed('b', { ...created, metadata: { ...created.metadata, deletionTimestamp: '2026-12-06T00:00:00Z' } });
  delay.changed('c', { ...created, status: { phase: 'Pending', containerStatuses: running.status!.containerStatuses } });
  delay.changed('d', { ...created, status: { phase: 'Failed' } });
  assert.deepEqual(reports, ['a', 'b', 'c', 'd']);
  assert.equal(notStarted(created), true);
  assert.equal(notStarted({ metadata: {} }), true, 'no status yet');
});
