import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Pod } from '../../kube/types.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import fc from 'fast-check';
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

test('two values share one part exactly when their JSON is the same (no content passes for another)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }), (a, b) => {
      const [ca, cb] = [internedCopy({ spec: a }), internedCopy({ spec: b })];
      assert.equal(JSON.stringify(ca.spec), JSON.stringify(a));
      const same = JSON.stringify(a) === JSON.stringify(b);
      if (typeof ca.spec === 'object' && ca.spec !== null) assert.equal(ca.spec === cb.spec, same);
    }),
  );
  // Strings that would read as structure if they were not length-prefixed.
  const tricky = internedCopy({ spec: ['a,5:b', 'c'] });
  assert.notEqual(tricky.spec, internedCopy({ spec: ['a', '5:b,c'] }).spec);
  assert.notEqual(internedCopy({ spec: { 'a=1': '2' } }).spec, internedCopy({ spec: { a: '1=2' } }).spec);
  // JSON.parse makes "__proto__" an own key: it stays a key in the copy.
  const proto = JSON.parse('{"__proto__":{"x":1}}') as object;
  assert.equal(JSON.stringify(internedCopy({ spec: proto }).spec), '{"__proto__":{"x":1}}');
});
