// Smoke run of the pod-spec fuzz (npm run fuzz runs 1,000): odd pod specs through the real pod
// controller and the mock provider each end with a status that explains itself and an Event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzPodSpecs } from '../../fuzz/pod-specs.ts';
import { DEFAULT_SEED } from '../../fuzz/property.ts';

test('pod spec fuzz smoke: every odd pod ends with a reason and an Event, nothing uncaught', { timeout: 60_000 }, async (t) => {
  const result = await fuzzPodSpecs({ runs: 100, seed: DEFAULT_SEED });
  t.diagnostic(JSON.stringify({ outcomes: result.outcomes, heapMiB: result.heapMiB }));
  for (const p of result.properties) assert.equal(p.failed, false, `${p.name} (seed ${p.seed}, path ${p.path}): ${p.error}; input ${p.counterexample}`);
  assert.deepEqual(result.uncaught, []);
  assert.equal(
    Object.values(result.outcomes).reduce((a, b) => a + b, 0),
    100,
  );
});
