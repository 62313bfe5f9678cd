// The protocol's shared pieces on their own: errors survive the wire in both versions, query
// parameters read back as written, and the capability list is the Provider's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VkError } from '../errors.ts';
import {
  AbortedError,
  ContainerStateError,
  InvalidRequestError,
  NotFoundError,
  PodRejectedError,
  ProviderUnavailableError,
  TryLaterError,
  UnsupportedError,
  httpStatus,
} from '../errors.ts';
import { CAPABILITIES } from '../providers/provider.ts';
import { V2_ERROR_CODES, WireStatusError, decodeError, encodeError } from './errors.ts';
import { parseLogOptions } from '../kube/params.ts';
import { encodeLogQuery } from './query.ts';
import { REMOTE_CAPABILITIES, decodePodEvent, encodePodEvent, parseVersionHeader, wirePodEventSchema } from './wire.ts';

test('version 2 errors come back as the class they left as, with reason and retryAfterMs, at the status httpStatus gives', () => {
  const cases: VkError[] = [
    new NotFoundError('pod ns/p is not known'),
    new PodRejectedError('UnsupportedPlatform', 'image is arm64 only'),
    new ProviderUnavailableError('backend down'),
    new TryLaterError('throttled', 1500),
    new ContainerStateError('container c is not running in pod p'),
    new UnsupportedError('no exec here'),
    new InvalidRequestError('bad tailLines'),
    new AbortedError('client went away'),
  ];
  for (const err of cases) {
    const { status, body } = encodeError(err, 2);
    assert.equal(status, httpStatus(err), err.name);
    const back = decodeError(status, JSON.parse(JSON.stringify(body.error)) as never);
    assert.equal(back.constructor, err.constructor, err.name);
    assert.equal(back.code, err.code);
    assert.equal(back.message, err.message);
  }
  const rejected = decodeError(400, encodeError(new PodRejectedError('UnsupportedPlatform', 'x'), 2).body.error);
  assert.ok(rejected instanceof PodRejectedError && rejected.reason === 'UnsupportedPlatform');
  const later = decodeError(503, encodeError(new TryLaterError('x', 1500), 2).body.error);
  assert.ok(later instanceof TryLaterError && later.retryAfterMs === 1500);
  // A plain Error is a provider failure; an AbortSignal's DOMException is an abort.
  assert.deepEqual(encodeError(new Error('boom'), 2), { status: 500, body: { error: { code: 'VK_PROVIDER', message: 'boom' } } });
  assert.equal(encodeError(new DOMException('gone', 'AbortError'), 2).body.error.code, 'VK_ABORTED');
  assert.equal(V2_ERROR_CODES.length, new Set(V2_ERROR_CODES).size);
});

test('version 1 errors keep the version 1 names and statuses', () => {
  assert.deepEqual(encodeError(new NotFoundError('gone'), 1), { status: 404, body: { error: { code: 'NotFound', message: 'gone' } } });
  assert.deepEqual(encodeError(new UnsupportedError('no'), 1), { status: 501, body: { error: { code: 'Unsupported', message: 'no' } } });
  assert.deepEqual(encodeError(new InvalidRequestError('bad'), 1), { status: 400, body: { error: { code: 'BadRequest', message: 'bad' } } });
  assert.deepEqual(encodeError(new PodRejectedError('X', 'never'), 1), { status: 500, body: { error: { code: 'ProviderError', message: 'never' } } });
  assert.deepEqual(encodeError(new WireStatusError('VK_INVALID_REQUEST', 'PayloadTooLarge', 'too big'), 1), {
    status: 413,
    body: { error: { code: 'PayloadTooLarge', message: 'too big' } },
  });
  assert.equal(encodeError(new WireStatusError('VK_INVALID_REQUEST', 'PayloadTooLarge', 'too big'), 2).status, 413);
  // And a version 1 answer decodes to the nearest class.
  assert.ok(decodeError(404, { code: 'NotFound', message: 'x' }) instanceof NotFoundError);
  assert.ok(decodeError(503, { code: 'Unhealthy', message: 'x' }) instanceof ProviderUnavailableError);
  assert.equal(decodeError(500, { code: 'ProviderError', message: 'x' }).code, 'VK_PROVIDER');
  // No code at all (a proxy's page): by status.
  assert.ok(decodeError(503, { message: 'x' }) instanceof ProviderUnavailableError);
});

test('log options survive the query', () => {
  const options = { follow: true, previous: false, timestamps: true, tailLines: 0, limitBytes: 10, sinceTime: new Date('2025-01-02T15:04:05.000Z') };
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(encodeLogQuery(options))) if (value !== undefined) query.set(key, String(value));
  assert.deepEqual(parseLogOptions(query), options);
  assert.throws(() => parseLogOptions(new URLSearchParams('tailLines=-1')), InvalidRequestError);
  assert.throws(() => parseLogOptions(new URLSearchParams('sinceTime=yesterday')), /invalid sinceTime "yesterday"/);
});

test('the remote capabilities are the Provider capabilities but close; headers name a version or none', () => {
  assert.deepEqual(
    [...REMOTE_CAPABILITIES],
    CAPABILITIES.filter((c) => c !== 'close'),
  );
  assert.equal(parseVersionHeader(undefined), 1);
  assert.equal(parseVersionHeader(' 2 '), 2);
  assert.equal(parseVersionHeader('3'), undefined);
});

test('pod Events survive the wire (the time as RFC 3339); the EVENT schema checks the shape and lets new fields through', () => {
  const event = {
    namespace: 'ns',
    name: 'p',
    uid: 'u1',
    type: 'Warning' as const,
    reason: 'Failed',
    message: 'image pull failed',
    container: 'app',
    count: 3,
    firstTimestamp: new Date('2026-01-02T03:04:05.678Z'),
  };
  const wire = JSON.parse(JSON.stringify(encodePodEvent(event))) as unknown;
  assert.equal((wire as { firstTimestamp: string }).firstTimestamp, '2026-01-02T03:04:05.678Z');
  const parsed = wirePodEventSchema.parse(wire);
  assert.deepEqual(decodePodEvent(parsed as never), event);
  const minimal = { namespace: 'ns', name: 'p', uid: 'u1', type: 'Normal', reason: 'Pulled', message: '' };
  assert.deepEqual(decodePodEvent(wirePodEventSchema.parse(minimal) as never), minimal);
  assert.ok(wirePodEventSchema.safeParse({ ...minimal, series: { count: 2 } }).success, 'fields added later are not refused');
  for (const bad of [{ type: 'Error' }, { uid: '' }, { count: 0 }, { firstTimestamp: 'yesterday' }, { message: undefined }])
    assert.ok(!wirePodEventSchema.safeParse({ ...minimal, ...bad }).success, JSON.stringify(bad));
});
