// Smoke run of the kubelet API fuzz (npm run fuzz runs it in full): malformed HTTP, oversized
// headers, raw bytes, garbage SPDY and WebSocket frames after upgrades, slowloris and 1,000 idle
// connections against the server in a child process: it never dies and keeps serving /healthz.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fuzzKubeletApi } from '../../fuzz/kubelet-api.ts';
import { DEFAULT_SEED } from '../../fuzz/property.ts';

test('kubelet API fuzz smoke: no crash, other clients served, RSS bounded', { timeout: 60_000 }, async (t) => {
  const result = await fuzzKubeletApi({ runs: 40, seed: DEFAULT_SEED, idleConnections: 1_000, slowClients: 50, slowSeconds: 3 });
  t.diagnostic(JSON.stringify({ slowloris: result.slowloris, idle: result.idle, rssMiB: result.rssMiB }));
  for (const p of result.properties) assert.equal(p.failed, false, `${p.name} (seed ${p.seed}, path ${p.path}): ${p.error}; input ${p.counterexample}`);
  assert.equal(result.crashed, false, result.exit);
  assert.equal(result.slowloris.healthzFailed, 0, 'GET /healthz failed while slow clients were connected');
  assert.ok(result.slowloris.healthzServed > 0);
  assert.equal(result.idle.opened, 1_000);
  assert.notEqual(result.idle.healthzWhileOpenMs, undefined, 'GET /healthz failed while 1,000 idle connections were open');
  // Generous: the server starts at ~110 MiB; 1,000 TLS connections cost tens of MiB, not hundreds.
  assert.ok(result.rssMiB.peak - result.rssMiB.start < 256, `RSS grew from ${result.rssMiB.start} to ${result.rssMiB.peak} MiB`);
});
