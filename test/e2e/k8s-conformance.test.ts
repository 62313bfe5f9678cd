// Kubernetes' own node conformance specs (k8s.io/kubernetes/test/e2e, [sig-node] [Conformance]) on
// a sandbox virtual node: the fixed CI subset (conformance/k8s/ci-subset.ts) through the same
// runner as `npm run k8s-conformance`, so a regression in kubelet behaviour fails CI. Builds the
// e2e suite on a cold cache (~/.cache/virtual-kubelet-ts). Needs root, Go, the sandbox's host
// packages, docker-registry, busybox-static and bash-static (.ci/run installs them).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseSandboxConfig } from '../../src/providers/sandbox/config.ts';
import { checkHost } from '../../src/providers/sandbox/sandbox-provider.ts';
import { E2E_MODULE_DIR } from '../../conformance/k8s/build.ts';
import { CI_SUBSET } from '../../conformance/k8s/ci-subset.ts';
import { runK8sConformance } from '../../conformance/k8s/runner.ts';

let skip: string | false = false;
try {
  await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
  execFileSync('go', ['version']);
  readFileSync('/bin/bash-static');
} catch (err) {
  skip = (err as Error).message;
}

/** The require and replace lines of a go.mod that pin k8s.io modules. */
function k8sPins(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) =>
      line
        .trim()
        .replace(/^require\s+/, '')
        .replace(/\s*\/\/ indirect$/, ''),
    )
    .filter((line) => /^k8s\.io\/[\w.-]+ (=> k8s\.io\/[\w.-]+ )?v\d/.test(line))
    .sort();
}

test('the e2e module pins every k8s.io module the control plane pins, at the same versions', () => {
  const controlPlane = k8sPins(path.resolve(import.meta.dirname, '../../controlplane/go.mod'));
  const e2e = new Set(k8sPins(path.join(E2E_MODULE_DIR, 'go.mod')));
  assert.ok(controlPlane.some((l) => l.startsWith('k8s.io/kubernetes v')));
  assert.deepEqual(
    controlPlane.filter((line) => !e2e.has(line) && (line.includes('=>') || line.startsWith('k8s.io/kubernetes '))),
    [],
    'conformance/k8s/e2e/go.mod drifted from controlplane/go.mod: copy the k8s.io require and replace lines over and run go mod tidy there',
  );
});

test(`Kubernetes' [sig-node] conformance: the ${CI_SUBSET.length} specs of the CI subset pass on a sandbox node`, { skip, timeout: 1_200_000 }, async () => {
  const reportDir = mkdtempSync(path.join(os.tmpdir(), 'vk-k8s-conformance-ci-'));
  const progress = (line: string) => process.stderr.write(`[k8s-conformance] ${line}\n`);
  const run = await runK8sConformance({ only: CI_SUBSET, shards: 2, reportDir, progress });
  const failed = run.results.filter((r) => r.outcome !== 'passed');
  assert.deepEqual(
    failed.map((r) => `${r.name}: ${r.outcome}: ${r.message ?? ''}`),
    [],
    `reports and node log in ${reportDir}`,
  );
  assert.equal(run.results.length, CI_SUBSET.length);
  rmSync(reportDir, { recursive: true, force: true });
});
