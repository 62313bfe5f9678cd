// Starts one real control plane for the whole test run; test files reach it through env vars.
// kube-apiserver also answers at an address of its own (vkapi<n>, see host-address.ts) so that
// sandbox pods reach the kubernetes Service; the test nodes keep 127.0.0.1 as their InternalIP.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { claimHostAddress, type HostAddress } from '../../src/cluster/host-address.ts';
import { startLocalCluster, type LocalCluster } from '../../src/cluster/local.ts';

let cluster: LocalCluster | undefined;
let hostAddress: HostAddress | undefined;
let dir: string | undefined;

export async function globalSetup(): Promise<void> {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vk-test-cluster-'));
  const started = Date.now();
  const progress = (line: string) => process.stderr.write(`[control plane] ${line}\n`);
  hostAddress = await claimHostAddress({ note: (line) => progress(`${line}; kube-apiserver on 127.0.0.1 only`) });
  try {
    cluster = await startLocalCluster({ dir, advertiseAddress: hostAddress?.address, progress });
  } catch (err) {
    await hostAddress?.release();
    throw err;
  }
  process.env.VK_TEST_KUBECONFIG = cluster.info.kubeconfig;
  process.env.VK_TEST_KUBECTL = cluster.kubectl;
  process.env.VK_TEST_CLUSTER_INFO = path.join(dir, 'cluster.json');
  process.stderr.write(
    `[control plane] Kubernetes ${cluster.info.version} ready in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.info.server}` +
      (hostAddress ? ` and, for pods, https://${hostAddress.address}:${cluster.info.ports['kube-apiserver']} (${hostAddress.interfaceName})` : '') +
      '\n',
  );
}

export async function globalTeardown(): Promise<void> {
  await cluster?.stop();
  await hostAddress?.release();
  if (dir && !process.env.VK_KEEP_CLUSTER) rmSync(dir, { recursive: true, force: true });
}
