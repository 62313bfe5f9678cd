// One conformance run: build (cached) e2e.test and the test images, push the images to a local
// registry, start `vk up` with a sandbox node, run the selected specs in shards, return every
// spec's outcome. `npm run k8s-conformance` and test/e2e/k8s-conformance.test.ts both use it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureClusterBinary } from '../../src/cluster/binary.ts';
import { startTestRegistry } from '../../test/fixtures/registry/registry.ts';
import { ensureE2eBinaries } from './build.ts';
import { startSandboxCluster } from './cluster.ts';
import { pushTestImages, repoList } from './images.ts';
import { SKIP, listed } from './skip-list.ts';
import { type Spec, type SpecResult, focusFor, runE2e, shard } from './suite.ts';

/** Kubernetes' own node conformance: every [sig-node] spec marked [Conformance]. */
export const DEFAULT_FOCUS = String.raw`\[sig-node\].*\[Conformance\]`;

export interface ConformanceOptions {
  focus?: string;
  /** Run only the specs whose full text contains one of these (the CI subset); default all the focus selects. */
  only?: readonly string[];
  /** Parallel e2e.test processes for the specs not marked [Serial]. */
  shards?: number;
  /** Where the JUnit/JSON reports and logs go. */
  reportDir: string;
  /** Stops the run early: running specs are interrupted, the rest do not start; everything is cleaned up. */
  signal?: AbortSignal;
  progress: (line: string) => void;
}

export interface ConformanceRun {
  kubernetesVersion: string;
  focus: string;
  results: SpecResult[];
  wallSeconds: number;
}

export async function runK8sConformance(options: ConformanceOptions): Promise<ConformanceRun> {
  const { progress } = options;
  const focus = options.focus ?? DEFAULT_FOCUS;
  const started = Date.now();
  mkdirSync(options.reportDir, { recursive: true });
  await ensureClusterBinary(progress);
  const binaries = await ensureE2eBinaries(progress);

  const work = mkdtempSync(path.join(os.tmpdir(), 'vk-k8s-conformance-'));
  const stops: (() => Promise<void>)[] = [async () => rmSync(work, { recursive: true, force: true })];
  try {
    const registry = await startTestRegistry();
    stops.unshift(() => registry.stop());
    await pushTestImages(registry, binaries, progress);
    const repoListFile = path.join(work, 'repo-list.yaml');
    writeFileSync(repoListFile, repoList(registry.host));

    const cluster = await startSandboxCluster({ dir: work, progress, logFile: path.join(options.reportDir, 'vk.log') });
    stops.unshift(() => cluster.stop());
    const common = {
      e2eTest: binaries.e2eTest,
      kubeconfig: cluster.kubeconfig,
      repoList: repoListFile,
      outDir: options.reportDir,
      progress,
      signal: options.signal,
    };

    // The report names every spec of the suite; a dry run "passes" those the focus selects.
    const listedSpecs = (await runE2e({ ...common, label: 'dry-run', focus, dryRun: true })).filter((s) => s.outcome === 'passed');
    const results: SpecResult[] = [];
    const toRun: Spec[] = [];
    for (const { name } of listedSpecs) {
      if (options.only && !options.only.some((o) => name.includes(o))) continue;
      const skip = listed(SKIP, name);
      if (skip) results.push({ name, outcome: 'skipped', duration: 0, message: `skip list: ${skip.reason}` });
      else toRun.push({ name, serial: name.includes('[Serial]') });
    }
    if (options.only) {
      const missing = options.only.filter((o) => !listedSpecs.some((s) => s.name.includes(o)));
      if (missing.length) throw new Error(`the focus selects no spec containing: ${missing.join('; ')}`);
    }
    const parallel = toRun.filter((s) => !s.serial);
    const serial = toRun.filter((s) => s.serial);
    const shards = shard(parallel, options.shards ?? 3);
    progress(`running ${toRun.length} of ${listedSpecs.length} selected specs: ${shards.length} parallel shards, then ${serial.length} [Serial] alone`);
    // Each report also lists the specs its focus left out (as skipped): keep those it was given.
    const runShard = async (label: string, specs: Spec[]) => {
      const names = new Set(specs.map((s) => s.name));
      return (await runE2e({ ...common, label, focus: focusFor(specs) })).filter((r) => names.has(r.name));
    };
    const shardResults = await Promise.all(shards.map((specs, i) => runShard(`shard-${i + 1}`, specs)));
    results.push(...shardResults.flat());
    if (serial.length && !options.signal?.aborted) results.push(...(await runShard('serial', serial)));
    options.signal?.throwIfAborted();
    for (const spec of toRun) {
      if (!results.some((r) => r.name === spec.name))
        results.push({ name: spec.name, outcome: 'failed', duration: 0, message: `no result in the shard's report: see ${options.reportDir}` });
    }
    return { kubernetesVersion: binaries.kubernetesVersion, focus, results, wallSeconds: (Date.now() - started) / 1000 };
  } finally {
    for (const stop of stops) await stop().catch((err: unknown) => progress(`clean-up: ${(err as Error).message}`));
  }
}
