// The benchmark suite's smoke run (`npm run bench:smoke`: 50 pods, ours and the ceiling client,
// each on its own fresh control plane, here in two rounds) must work and write a complete, sane result. No timing
// thresholds: the figures depend on the machine; only their presence and plausibility are checked.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { BenchResult } from '../../bench/report.ts';

const REPO = path.resolve(import.meta.dirname, '../..');

function runSmoke(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/run.ts', '--smoke', '--repeat', '2', '--out', out], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

test('bench:smoke measures ours and the ceiling and writes latest.json, .md and .svg', { timeout: 600_000 }, async (t) => {
  const out = mkdtempSync(path.join(os.tmpdir(), 'vk-bench-smoke-test-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const { code, output } = await runSmoke(out);
  assert.equal(code, 0, `bench smoke failed:\n${output.slice(-4000)}`);
  for (const file of ['latest.json', 'latest.md', 'latest.svg']) assert.ok(existsSync(path.join(out, file)), `${file} missing`);

  const result = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as BenchResult;
  assert.equal(result.schema, 1);
  assert.ok(result.machine.cores >= 1);
  assert.match(result.machine.kubernetes, /^v1\.\d+\.\d+$/);
  assert.equal(result.machine.etcdFsync, false);
  assert.deepEqual(result.runs.map((r) => r.peer).sort(), ['ceiling', 'ours']);
  for (const run of result.runs) {
    const what = `${run.scenario}/${run.peer}`;
    assert.equal(run.ok, true, `${what}: ${run.error}`);
    assert.equal(run.scenario, 'direct-1x50');
    assert.equal(run.pods, 50);
    assert.ok(run.up && run.up.podsPerSecond > 0 && run.up.seconds > 0, `${what}: up`);
    assert.ok(run.down && run.down.podsPerSecond > 0 && run.down.seconds > 0, `${what}: down`);
    // Two rounds, interleaved: the reported one is the slower (the lower median of two), every round in brief.
    const rounds = run.rounds!;
    assert.equal(rounds.length, 2, `${what}: rounds`);
    assert.ok(
      rounds.every((r) => r.ok && r.upPodsPerSecond! > 0 && r.pacedP99Ms! >= 0),
      `${what}: rounds ${JSON.stringify(rounds)}`,
    );
    assert.equal(run.up.podsPerSecond, Math.min(...rounds.map((r) => r.upPodsPerSecond!)), `${what}: the median round`);
    const l = run.latencyMs!;
    assert.equal(l.samples, 50, `${what}: a latency for every pod`);
    assert.ok(l.p50 >= 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, `${what}: percentiles ordered`);
    // The paced round: 50 pods offered at 100/s, a latency for each.
    const paced = run.paced!;
    assert.equal(paced.error, undefined, `${what}: paced round`);
    assert.deepEqual([paced.rate, paced.pods, paced.latencyMs?.samples], [100, 50, 50], `${what}: paced round`);
    assert.ok(paced.loaderSeconds! >= 0.45, `${what}: the loader kept to the schedule (50 pods at 100/s take about 0.5 s), took ${paced.loaderSeconds} s`);
    const p = run.process!;
    assert.equal(p.count, 1);
    assert.ok(p.peakRssMiB > 1 && p.peakRssMiB < 4096, `${what}: peak RSS ${p.peakRssMiB} MiB`);
    assert.ok(p.cpuSeconds >= 0 && p.cpuSecondsTotal >= p.cpuSeconds, `${what}: CPU`);
    // Every peer must at least write each pod's status once and delete it once, as kube-apiserver counts.
    const api = run.api!;
    assert.ok((api.perPod.byResource['pods-status'] ?? 0) >= 1, `${what}: pods/status writes per pod: ${JSON.stringify(api.perPod)}`);
    assert.ok((api.perPod.byVerb.delete ?? 0) >= 1, `${what}: deletes per pod: ${JSON.stringify(api.perPod)}`);
    assert.ok(api.perPod.total < 100, `${what}: ${api.perPod.total} requests per pod`);
  }
  const md = readFileSync(path.join(out, 'latest.md'), 'utf8');
  assert.match(md, /\| ours \| [\d.]+ \(loader [\d.]+\/s\) \(rounds: [\d.]+, [\d.]+\) \|/);
  assert.match(md, /\| direct-1x50 \| ceiling \|/);
  assert.match(md, /paced: latency p50 \/ p90 \/ p99 ms, 50 pods offered at 100\/s/);
  assert.match(readFileSync(path.join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
});
