// The checks a provider's Event passes before it is recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makePod } from '../../test/harness/pods.ts';
import type { PodEvent } from '../providers/provider.ts';
import { MAX_MESSAGE_BYTES, checkPodEvent, truncateMessage } from './provider-events.ts';

const pod = makePod();
const event: PodEvent = { namespace: 'default', name: 'p', uid: 'uid-1', type: 'Normal', reason: 'Pulled', message: 'ok' };

test('reasons must be CamelCase words of at most 128 characters; types Normal or Warning', () => {
  for (const reason of ['Pulled', 'BackOff', 'FailedMount', 'Err2']) assert.equal(checkPodEvent({ ...event, reason }, pod).ok, true, reason);
  for (const reason of ['', 'pulled', 'Failed mount', 'Failed-Mount', 'A'.repeat(129), 'Über'])
    assert.equal(checkPodEvent({ ...event, reason }, pod).ok, false, reason);
  assert.equal(checkPodEvent({ ...event, type: 'Error' as 'Warning' }, pod).ok, false);
  assert.equal(checkPodEvent({ ...event, count: 1.5 }, pod).ok, false);
  assert.equal(checkPodEvent(event, undefined).ok, false);
  assert.equal(checkPodEvent({ ...event, uid: 'other' }, pod).ok, false);
});

test('a first time in the future is clamped to now; an invalid one is left out', () => {
  const checked = checkPodEvent({ ...event, firstTimestamp: new Date(Date.now() + 3_600_000) }, pod);
  assert.ok(checked.ok);
  assert.ok(Date.parse(checked.details.firstTimestamp!) <= Date.now());
  const invalid = checkPodEvent({ ...event, firstTimestamp: new Date('nonsense') }, pod);
  assert.ok(invalid.ok);
  assert.equal(invalid.details.firstTimestamp, undefined);
});

test('messages are cut to 1024 bytes of UTF-8 without splitting a character', () => {
  assert.equal(truncateMessage('short'), 'short');
  const exact = 'x'.repeat(MAX_MESSAGE_BYTES);
  assert.equal(truncateMessage(exact), exact);
  for (const ch of ['x', 'é', '€', '😀']) {
    const cut = truncateMessage(ch.repeat(2000));
    assert.ok(Buffer.byteLength(cut) <= MAX_MESSAGE_BYTES, ch);
    assert.ok(cut.endsWith(' ...'));
    assert.ok(!cut.includes('\uFFFD'), `no broken character for ${ch}`);
    assert.equal(cut.slice(0, -4).replaceAll(ch, ''), '', ch);
  }
});
