// Starts one real control plane for the whole test run; test files reach it through env vars.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalCluster, type LocalCluster } from '../../src/cluster/local.ts';

let cluster: LocalCluster | undefined;
let dir: string | undefined;

export async function globalSetup(): Promise<void> {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vk-test-cluster-'));
  const started = Date.now();
  cluster = await startLocalCluster({ dir, progress: (line) => process.stderr.write(`[control plane] ${line}\n`) });
  process.env.VK_TEST_KUBECONFIG = cluster.info.kubeconfig;
  process.env.VK_TEST_KUBECTL = cluster.kubectl;
  process.env.VK_TEST_CLUSTER_INFO = path.join(dir, 'cluster.json');
  process.stderr.write(
    `[control plane] Kubernetes ${cluster.info.version} ready in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.info.server}\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  await cluster?.stop();
  if (dir && !process.env.VK_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
}
