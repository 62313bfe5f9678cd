// One reference watcher for many nodes: each reference is tracked once in the shared watcher,
// a change reaches only the node that tracks the pod, and a stopping node releases only its own.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PodReferences, ReferenceChange } from './references.ts';
import { SharedReferences, type ReferenceBackend } from './shared-references.ts';

function fakeBackend() {
  const tracked = new Map<string, PodReferences>();
  let change!: ReferenceChange;
  const backend = {
    track: (key: string, refs: PodReferences) => void tracked.set(key, refs),
    untrack: (key: string) => void tracked.delete(key),
    stop: async () => undefined,
    getConfigMap: async () => undefined,
    getSecret: async () => undefined,
    listServices: async () => [],
    createServiceAccountToken: async () => ({ token: 't', expirationTimestamp: '' }),
  } as unknown as ReferenceBackend;
  const shared = new SharedReferences((onChange) => ((change = onChange), backend));
  /** The shared watcher's callback: what it reports for the backend keys that reference the object. */
  const fire = (keys: string[]) => change('configmaps', 'ns', 'cm', keys);
  return { shared, tracked, fire };
}

const refs: PodReferences = { namespace: 'ns', configMaps: new Set(['cm']), secrets: new Set(), services: false };

test('a change re-syncs the referencing pods on the node that tracks them, and only there', () => {
  const { shared, tracked, fire } = fakeBackend();
  const seen: Record<string, string[]> = { a: [], b: [] };
  const a = shared.forNode('a', (_k, _ns, _n, pods) => seen.a!.push(...pods));
  const b = shared.forNode('b', (_k, _ns, _n, pods) => seen.b!.push(...pods));
  a.track('ns/p1', refs);
  b.track('ns/p2', refs);
  assert.equal(tracked.size, 2);
  fire([...tracked.keys()]);
  assert.deepEqual(seen, { a: ['ns/p1'], b: ['ns/p2'] });
});

test("a stopping node releases its pods' references, not another node's; the same pod name on two nodes is two entries", async () => {
  const { shared, tracked } = fakeBackend();
  const a = shared.forNode('a', () => {});
  const b = shared.forNode('b', () => {});
  a.track('ns/p', refs);
  b.track('ns/p', refs);
  assert.equal(tracked.size, 2);
  a.untrack('ns/other');
  assert.equal(tracked.size, 2, 'untracking a pod the node never tracked changes nothing');
  await a.stop();
  assert.equal(tracked.size, 1);
  assert.ok([...tracked.keys()][0]!.startsWith('b'));
});
