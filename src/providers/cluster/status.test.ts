import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../../kube/types.ts';
import { CONDITION_TARGET_POD } from './names.ts';
import { lostStatus, mirrorStatus, ranInTarget } from './status.ts';

const target: Pod = {
  metadata: { namespace: 'tns', name: 'web', uid: 'target-uid', creationTimestamp: '2026-12-06T07:00:00Z' },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
  status: { phase: 'Running', podIP: '10.0.0.7', conditions: [{ type: 'Ready', status: 'True' }] },
};

test('the mirrored status records that a target pod ran the source pod, naming it', () => {
  const status = mirrorStatus(target, '127.0.0.1');
  const marker = status.conditions?.find((c) => c.type === CONDITION_TARGET_POD);
  assert.equal(marker?.status, 'True');
  assert.match(marker?.message ?? '', /tns\/web \(uid target-uid\)/);
  assert.equal(marker?.lastTransitionTime, '2026-12-06T07:00:00Z');
  assert.equal(status.conditions?.filter((c) => c.type === CONDITION_TARGET_POD).length, 1);
  // Mirroring a status that has it already does not add a second one.
  assert.equal(mirrorStatus({ ...target, status }, '127.0.0.1').conditions?.filter((c) => c.type === CONDITION_TARGET_POD).length, 1);
});

test('ranInTarget: true only for a source pod whose status carries the marker (what a restart reads back)', () => {
  assert.equal(ranInTarget({ metadata: {}, status: { phase: 'Pending', startTime: '2026-12-06T07:00:00Z' } }), false);
  assert.equal(ranInTarget({ metadata: {}, status: mirrorStatus(target, '127.0.0.1') }), true);
  const lost = lostStatus({ metadata: {}, status: mirrorStatus(target, '127.0.0.1') }, 'TargetPodDeleted', 'gone', '127.0.0.1');
  assert.equal(lost.phase, 'Failed');
  assert.equal(ranInTarget({ metadata: {}, status: lost }), true);
});
