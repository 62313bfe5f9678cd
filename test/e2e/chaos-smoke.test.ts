// The chaos suite's smoke run (reliability/run.ts --smoke): a short churn with every fault kind
// once, on a control plane of its own. The full run is `npm run chaos` (see reliability/README.md).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FAULT_KINDS } from '../../reliability/faults.ts';
import type { ChaosResult } from '../../reliability/report.ts';
import { tempDir } from '../harness/temp.ts';

const RUN = path.resolve(import.meta.dirname, '../../reliability/run.ts');

test('chaos smoke: every fault kind once under churn; no duplicate, lost, leaked or diverged pod', async (t) => {
  const out = tempDir(t, 'vk-chaos-smoke-');
  const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(process.execPath, [RUN, '--smoke', '--seed', '7', '--out', out], { maxBuffer: 16 << 20 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  t.diagnostic(stderr.split('\n').slice(-14).join('\n'));
  const result = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as ChaosResult;
  for (const kind of FAULT_KINDS) assert.ok((result.faultCounts[kind] ?? 0) >= 1, `fault ${kind} injected`);
  assert.ok(result.workload.backendCreations > 0, 'the workload reached the backend');
  assert.deepEqual(result.counts, { duplicates: 0, lost: 0, leaked: 0, diverged: 0 }, JSON.stringify(result.findings, null, 2));
  assert.equal(result.convergence.notConverged, 0, JSON.stringify(result.faults, null, 2));
  assert.equal(code, 0, stderr);
});
