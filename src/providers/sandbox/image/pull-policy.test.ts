import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidImageNameError } from './errors.ts';
import { decidePull, defaultPullPolicy } from './pull-policy.ts';

const D = `sha256:${'c'.repeat(64)}`;

test('default policy: Always for :latest or no tag, IfNotPresent otherwise (digests included)', () => {
  assert.equal(defaultPullPolicy('busybox'), 'Always');
  assert.equal(defaultPullPolicy('busybox:latest'), 'Always');
  assert.equal(defaultPullPolicy('127.0.0.1:5000/app'), 'Always');
  assert.equal(defaultPullPolicy('busybox:1.36'), 'IfNotPresent');
  assert.equal(defaultPullPolicy(`busybox@${D}`), 'IfNotPresent');
  assert.equal(defaultPullPolicy(`busybox:latest@${D}`), 'Always', 'Kubernetes looks at the tag only');
  assert.throws(() => defaultPullPolicy('Not A Ref'), InvalidImageNameError);
});

test('decidePull for each policy, present or not', () => {
  assert.deepEqual(decidePull('app:1', 'Always', true), { action: 'pull' });
  assert.deepEqual(decidePull('app:1', 'Always', false), { action: 'pull' });
  assert.deepEqual(decidePull('app:1', 'IfNotPresent', true), { action: 'use-local' });
  assert.deepEqual(decidePull('app:1', 'IfNotPresent', false), { action: 'pull' });
  assert.deepEqual(decidePull('app:1', 'Never', true), { action: 'use-local' });
  assert.deepEqual(decidePull('app:1', undefined, true), { action: 'use-local' }, 'default IfNotPresent for a tag');
  assert.deepEqual(decidePull('app', '', true), { action: 'pull' }, 'default Always for latest');
});

test('Never and absent: ErrImageNeverPull with the kubelet message', () => {
  const decision = decidePull('app:1', 'Never', false);
  assert.equal(decision.action, 'fail');
  if (decision.action !== 'fail') return;
  assert.equal(decision.error.reason, 'ErrImageNeverPull');
  assert.equal(decision.error.code, 'VK_IMAGE_PULL');
  assert.equal(decision.error.message, 'Container image "app:1" is not present with pull policy of Never');
  const unknown = decidePull('app:1', 'Sometimes', false);
  assert.equal(unknown.action, 'fail');
  if (unknown.action === 'fail') assert.match(unknown.error.message, /unknown imagePullPolicy "Sometimes"/);
});
