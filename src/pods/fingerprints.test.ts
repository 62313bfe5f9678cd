import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makePod } from '../../test/harness/pods.ts';
import type { ResolvedVolume } from '../providers/provider.ts';
import { EMPTY_DIGEST, deliveryDigest, updatableFingerprint } from './fingerprints.ts';

test('the update fingerprint follows images, deadline, tolerations, labels and annotations only', () => {
  const base = makePod();
  const same = makePod();
  same.status = { phase: 'Running' };
  same.spec!.containers[0]!.env = [{ name: 'OTHER', value: 'x' }];
  assert.equal(updatableFingerprint(same), updatableFingerprint(base), 'status and env are not updates');
  for (const change of [
    (p: typeof base) => (p.spec!.containers[0]!.image = 'nginx:1.28'),
    (p: typeof base) => (p.spec!.activeDeadlineSeconds = 30),
    (p: typeof base) => (p.spec!.tolerations = [{ key: 'k', operator: 'Exists' }]),
    (p: typeof base) => (p.metadata!.labels = { a: 'b' }),
    (p: typeof base) => (p.metadata!.annotations = { a: 'b' }),
  ]) {
    const changed = makePod();
    change(changed);
    assert.notEqual(updatableFingerprint(changed), updatableFingerprint(base));
  }
});

test('the delivery digest follows volume contents, modes and pull secrets, not map order', () => {
  const file = (content: string, mode = 0o644): ResolvedVolume => ({
    name: 'v',
    type: 'files' as const,
    source: 'configMap' as const,
    files: [{ path: 'k', content: Buffer.from(content), mode }],
  });
  const a = deliveryDigest({
    volumes: new Map<string, ResolvedVolume>([
      ['v', file('one')],
      ['e', { name: 'e', type: 'emptyDir', medium: '' }],
    ]),
  });
  const b = deliveryDigest({
    volumes: new Map<string, ResolvedVolume>([
      ['e', { name: 'e', type: 'emptyDir', medium: '' }],
      ['v', file('one')],
    ]),
  });
  assert.equal(a, b);
  assert.notEqual(deliveryDigest({ volumes: new Map([['v', file('two')]]) }), deliveryDigest({ volumes: new Map([['v', file('one')]]) }));
  assert.notEqual(deliveryDigest({ volumes: new Map([['v', file('one', 0o600)]]) }), deliveryDigest({ volumes: new Map([['v', file('one')]]) }));
  assert.notEqual(deliveryDigest({ volumes: new Map(), pullSecrets: [{ metadata: { name: 's' }, data: { k: 'dg==' } }] }), EMPTY_DIGEST);
  assert.equal(deliveryDigest({ volumes: new Map() }), EMPTY_DIGEST);
});
