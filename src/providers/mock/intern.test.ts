import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Pod } from '../../kube/types.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import { internedCopy, internedParts } from './intern.ts';

const pod = (name: string, nodeName: string): Pod => ({
  metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { app: 'web' } },
  spec: {
    nodeName,
    containers: [{ name: 'app', image: 'nginx', env: [{ name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' }] }],
    tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
  },
  status: { phase: 'Pending', qosClass: 'BestEffort' },
});

test('copies are equal to their pods, share equal parts across pods, are frozen, and never hold the caller objects', () => {
  const a = pod('a', 'node-1');
  const b = pod('b', 'node-1');
  const c = pod('c', 'node-2');
  const [ca, cb, cc] = [internedCopy(a), internedCopy(b), internedCopy(c)];
  assert.deepEqual(ca, a);
  assert.deepEqual(cc, c);
  assert.equal(cb.spec, ca.spec, 'same spec on the same node: one object');
  assert.notEqual(cc.spec, ca.spec, 'another nodeName: another spec');
  assert.equal(cc.spec?.containers, ca.spec?.containers, '... but the same containers');
  assert.equal(cc.spec?.tolerations, ca.spec?.tolerations);
  assert.equal(cb.metadata?.labels, ca.metadata?.labels);
  assert.notEqual(cb.metadata, ca.metadata, 'metadata is per pod');
  assert.equal(cb.metadata?.uid, 'uid-b');
  assert.ok(Object.isFrozen(ca.spec) && Object.isFrozen(ca.spec?.containers?.[0]) && Object.isFrozen(ca.metadata));
  assert.notEqual(ca.spec, a.spec);
  a.spec!.containers[0]!.image = 'changed';
  a.metadata!.labels!.app = 'changed';
  assert.equal(ca.spec?.containers[0]?.image, 'nginx');
  assert.equal(cb.metadata?.labels?.app, 'web');
  assert.throws(() => {
    (ca.spec!.containers[0] as { image: string }).image = 'x';
  }, TypeError);
});

test('values of different types or order are different parts', () => {
  const one = internedCopy({ spec: { a: ['1'], b: 1 } });
  const other = internedCopy({ spec: { a: [1], b: 1 } });
  const swapped = internedCopy({ spec: { b: 1, a: ['1'] } });
  assert.notEqual(one.spec, other.spec);
  assert.notEqual(one.spec, swapped.spec);
  assert.deepEqual(swapped.spec, { b: 1, a: ['1'] });
});

test('a part no copy uses any more leaves the table', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const before = internedParts();
  // Copies made and dropped inside: nothing outside holds them.
  const made = (() => Array.from({ length: 50 }, (_, i) => internedCopy(pod(`p${i}`, `only-here-${i}`))).length)();
  assert.equal(made, 50);
  assert.ok(internedParts() >= before + 50, 'one spec per node at least');
  await waitFor('the unused parts to be collected', () => {
    gc();
    return internedParts() < before + 50;
  });
});
