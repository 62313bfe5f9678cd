// The chaos suite: a churn workload on a virtual node (the mock provider, its backend a state
// file; or the sandbox, real pods on this machine) while faults strike one after another; then
// the checker's counts and the convergence times. See reliability/README.md.
//
//   node reliability/run.ts [--provider mock|sandbox] [--pods 1000] [--minutes 5] [--seed 1] [--smoke] [--out reliability/results] [--keep-dir]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { Node } from '../src/kube/types.ts';
import { seededRandom } from '../src/util/seeded-random.ts';
import { waitFor } from '../test/harness/wait.ts';
import { compare, leakedPods, percentile, shouldRun, unconverged, type Deletion, type Outage } from './checker.ts';
import { ChaosEnvironment, type ChaosProvider } from './environment.ts';
import { Observer } from './observer.ts';
import { faultKindsFor, faultRounds, inject } from './faults.ts';
import { renderMarkdown, type ChaosResult, type FaultResult } from './report.ts';
import { ChurnWorkload } from './workload.ts';

const { values } = parseArgs({
  options: {
    pods: { type: 'string' },
    minutes: { type: 'string' },
    seed: { type: 'string', default: '1' },
    provider: { type: 'string', default: 'mock' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
  },
});

function positive(flag: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    process.stderr.write(`chaos: --${flag} must be a positive number, got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}

if (values.provider !== 'mock' && values.provider !== 'sandbox') {
  process.stderr.write(`chaos: --provider must be mock or sandbox, got ${JSON.stringify(values.provider)}\n`);
  process.exit(2);
}
const PROVIDER: ChaosProvider = values.provider;
const SMOKE = values.smoke;
const PODS = positive('pods', values.pods ?? (SMOKE ? '40' : '1000'));
const MINUTES = positive('minutes', values.minutes ?? (SMOKE ? '0.5' : '5'));
const SEED = Math.trunc(positive('seed', values.seed ?? '1'));
const OUT = values.out ?? path.resolve(import.meta.dirname, 'results');
/** results/latest.{json,md} for the mock, results/sandbox.{json,md} for the sandbox. */
const RESULT_NAME = PROVIDER === 'mock' ? 'latest' : 'sandbox';
const KINDS = faultKindsFor(PROVIDER);
/**
 * The sandbox's pods are real (a pause process, a monitor and the container each; 2 cores):
 * fewer at a time, and they stop on SIGTERM at once (a shell as PID 1 would ignore it).
 */
const WORKLOAD_SHAPE = PROVIDER === 'sandbox' ? { deployments: 3, maxReplicas: 8, command: ['sh', '-c', 'trap "exit 0" TERM; sleep 86400 & wait'] } : {};
/** A fault that has not converged by then is counted as not converged. */
const CONVERGENCE_CAP_MS = 90_000;
const NAMESPACE = 'chaos';
const progress = (line: string) => process.stderr.write(`chaos: ${line}\n`);

// Separate sources, so the fault sequence does not depend on how many churn steps ran meanwhile.
const random = seededRandom(SEED);
const workloadRandom = seededRandom(SEED + 0x9e3779b9);
const startedAt = new Date();
const loadAtStart = os.loadavg();
const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-chaos-'));
const env = await ChaosEnvironment.start({ dir, nodeName: `vk-chaos-${SEED}`, provider: PROVIDER, progress }).catch((err: unknown) => {
  progress(`could not start: ${(err as Error).stack ?? String(err)}; kept ${dir}`);
  process.exit(1);
});
let exitCode = 1;
try {
  exitCode = await runChaos(env);
} catch (err) {
  progress(`failed: ${(err as Error).stack ?? String(err)}`);
}
await env.stop().catch((err: unknown) => progress(`stopping: ${String(err)}`));
// A failed run keeps its directory (vk.log, the control plane's logs, the backend) to look into.
if (values['keep-dir'] || exitCode !== 0) progress(`kept ${dir}`);
else rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
process.exit(exitCode);

async function runChaos(env: ChaosEnvironment): Promise<number> {
  await waitFor(
    `node ${env.nodeName} Ready`,
    async () => {
      const node = await env.admin.get<Node>(`/api/v1/nodes/${env.nodeName}`).catch(() => undefined);
      return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    },
    { timeoutMs: 120_000, intervalMs: 500 },
  );
  const deletions: Deletion[] = [];
  const workload = new ChurnWorkload({
    client: env.admin,
    namespace: NAMESPACE,
    nodeName: env.nodeName,
    random: workloadRandom,
    image: env.image,
    ...WORKLOAD_SHAPE,
    onDelete: (d) => deletions.push(d),
  });
  await workload.setup();
  const outages: Outage[] = [];
  const observer = new Observer(env, NAMESPACE, deletions, outages);
  const started = Date.now();
  const durationMs = MINUTES * 60_000;
  let stop = false;

  // The churn: paced so that PODS pods are asked for over the run (about 60% of steps add pods).
  const stepMs = Math.max(20, durationMs / (PODS * 1.6));
  const churn = (async () => {
    while (!stop) {
      await workload.step();
      await sleep(stepMs);
    }
  })();
  const observing = (async () => {
    while (!stop) {
      await observer.observe().catch(() => undefined);
      await sleep(1000);
    }
  })();

  // The faults, one at a time, each until the node converged again (or the cap).
  const faults: FaultResult[] = [];
  const nextKind = faultRounds(random, KINDS);
  await sleep(5_000);
  while (Date.now() - started < durationMs || workload.podsRequested < PODS || faults.length < KINDS.length) {
    const kind = nextKind();
    await observer.observe().catch(() => undefined);
    const atFault = new Set(observer.api.filter(shouldRun).map((p) => p.uid));
    const fault = await inject(env, kind, random, SEED, SMOKE ? 0.3 : 1);
    if (fault.outage) outages.push(fault.outage);
    progress(`fault ${faults.length + 1} (${Math.round((Date.now() - started) / 1000)} s): ${fault.detail}`);
    let convergedAfterMs: number | undefined;
    const deadline = fault.endMs + CONVERGENCE_CAP_MS;
    while (Date.now() < deadline) {
      const ok = await observer.observe().then(
        () => unconverged(atFault, observer.api, observer.backend) === 0,
        () => false,
      );
      if (ok) {
        convergedAfterMs = Date.now() - fault.endMs;
        break;
      }
      await sleep(500);
    }
    faults.push({ ...fault, convergedAfterMs });
    progress(
      `  ${convergedAfterMs === undefined ? 'NOT converged' : `converged ${(convergedAfterMs / 1000).toFixed(1)} s after the fault ended (${((fault.endMs - fault.atMs) / 1000).toFixed(1)} s after it struck)`}; ${workload.podsRequested} pods asked for so far`,
    );
    if (SMOKE && faults.length >= KINDS.length && workload.podsRequested >= PODS) break;
    await sleep(SMOKE ? 1_000 : Math.round(2_000 + random() * 6_000));
  }
  stop = true;
  await churn;
  await observing;
  if (PROVIDER === 'mock') env.setProviderFaults({ clockOffsetMs: 0 });

  // The end: everything that should run runs, statuses agree; then everything is deleted and
  // the backend must empty within the grace periods.
  progress('churn stopped; waiting for the node to settle');
  await waitFor(
    'settled',
    async () => {
      await observer.observe();
      const f = compare(observer.api, observer.backend, [], deletions, Date.now(), outages);
      return f.lost.length === 0 && f.diverged.length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  ).catch(() => undefined);
  await observer.observe().catch(() => undefined);
  const settled = compare(observer.api, observer.backend, env.createdUids(), deletions, Date.now(), outages);
  progress('deleting everything; waiting for the backend to empty');
  await workload.drain();
  await waitFor(
    'backend empty',
    async () => {
      await observer.observe();
      return observer.backend.length === 0 && observer.api.length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 1000 },
  ).catch(() => undefined);
  await observer.observe().catch(() => undefined);
  // Leaks seen during the run, and what is still in the backend past its deadline now.
  for (const line of leakedPods(observer.backend, new Map(observer.api.map((p) => [p.uid, p])), deletions, Date.now(), outages)) observer.noteLeak(line);
  const findings = { ...settled, leaked: [...observer.leaked.values()] };

  const converged = faults.flatMap((f) => (f.convergedAfterMs === undefined ? [] : [f.convergedAfterMs]));
  const faultCounts = Object.fromEntries(KINDS.map((k) => [k, faults.filter((f) => f.kind === k).length]));
  const counts = { duplicates: findings.duplicates.length, lost: findings.lost.length, leaked: findings.leaked.length, diverged: findings.diverged.length };
  const convergence = {
    p50Ms: percentile(converged, 50),
    p99Ms: percentile(converged, 99),
    maxMs: percentile(converged, 100),
    notConverged: faults.length - converged.length,
  };
  const passed = Object.values(counts).every((n) => n === 0) && convergence.notConverged === 0 && (convergence.p99Ms ?? 0) <= 30_000;
  const result: ChaosResult = {
    startedAt: startedAt.toISOString(),
    command: `npm run chaos -- ${process.argv.slice(2).join(' ')}`.trim(),
    commit: gitCommit(),
    machine: { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, loadavg: { start: loadAtStart, end: os.loadavg() } },
    settings: { pods: PODS, minutes: MINUTES, seed: SEED, provider: PROVIDER, convergenceCapMs: CONVERGENCE_CAP_MS, faultKinds: [...KINDS] },
    durationSeconds: Math.round((Date.now() - started) / 1000),
    workload: { podsRequested: workload.podsRequested, ops: workload.ops, apiErrors: workload.apiErrors, backendCreations: env.createdUids().length },
    faults,
    faultCounts,
    convergence,
    counts,
    findings,
    passed,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, `${RESULT_NAME}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(path.join(OUT, `${RESULT_NAME}.md`), renderMarkdown(result));
  progress(
    `${passed ? 'passed' : 'FAILED'}: duplicates ${counts.duplicates}, lost ${counts.lost}, leaked ${counts.leaked}, diverged ${counts.diverged}; convergence p50 ${convergence.p50Ms} ms, p99 ${convergence.p99Ms} ms, not converged ${convergence.notConverged}; results in ${OUT}`,
  );
  return passed ? 0 : 1;
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: import.meta.dirname, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
