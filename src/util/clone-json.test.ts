import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { cloneJson } from './clone-json.ts';

test('a copy equals its value and shares no object or array with it', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
      const copy = cloneJson(value);
      assert.deepEqual(copy, value);
      const objects = (v: unknown, out: object[] = []): object[] => {
        if (typeof v === 'object' && v !== null) {
          out.push(v);
          for (const child of Object.values(v)) objects(child, out);
        }
        return out;
      };
      const originals = new Set(objects(value));
      for (const o of objects(copy)) assert.ok(!originals.has(o), 'a shared object');
    }),
  );
});

test('a "__proto__" key (JSON.parse makes it an own key) is copied as a key, not as the prototype', () => {
  const value = JSON.parse('{"__proto__":{"polluted":true},"a":[{"__proto__":0}]}') as Record<string, unknown>;
  const copy = cloneJson(value);
  assert.deepEqual(copy, value);
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.equal((copy as { polluted?: boolean }).polluted, undefined);
  assert.deepEqual(Object.keys(copy), ['__proto__', 'a']);
});

test('changing the copy leaves the original alone', () => {
  const pod = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', env: [{ name: 'A', value: '1' }] }] } };
  const copy = cloneJson(pod);
  copy.spec.containers[0]!.env[0]!.value = '2';
  copy.metadata.labels.app = 'db';
  assert.equal(pod.spec.containers[0]!.env[0]!.value, '1');
  assert.equal(pod.metadata.labels.app, 'web');
});
