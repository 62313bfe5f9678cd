// Smoke run of the remote provider protocol fuzz (npm run fuzz runs it in full): the provider
// SDK server answers bad requests with JSON 4xx errors and stays up; RemoteProvider turns bad
// answers and bad status-stream lines into VkErrors, with nothing uncaught.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SEED } from '../../fuzz/property.ts';
import { fuzzRemoteProtocol } from '../../fuzz/remote-protocol.ts';

test('remote provider protocol fuzz smoke: clear errors both ways, no crash', { timeout: 60_000 }, async (t) => {
  const result = await fuzzRemoteProtocol({ runs: 60, seed: DEFAULT_SEED });
  t.diagnostic(JSON.stringify({ serverRssMiB: result.serverRssMiB, cases: result.properties.map((p) => p.runs) }));
  for (const p of result.properties) assert.equal(p.failed, false, `${p.name} (seed ${p.seed}, path ${p.path}): ${p.error}; input ${p.counterexample}`);
  assert.equal(result.crashed, false, result.exit);
  assert.deepEqual(result.clientUncaught, []);
});
