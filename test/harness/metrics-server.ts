// metrics-server for the test files that need metrics.k8s.io (kubectl top, HPAs), opt-in: a file
// calls useMetricsServer(scope) and pays for it (the first build takes minutes; cached after).
// It listens on the control plane's own address (vkapi<n>): without one (not root) it cannot be
// registered, and the caller skips. One file at a time: the APIService is cluster-wide.
import path from 'node:path';
import { startMetricsServer, type MetricsServer } from '../../src/cluster/metrics-server.ts';
import { clusterInfo, type Scope } from './cluster.ts';

/** Started metrics-server (scraping every 10 s), stopped and unregistered when `scope` ends; a string says why it cannot run. */
export async function useMetricsServer(scope: Scope): Promise<MetricsServer | string> {
  const info = clusterInfo();
  if (info.advertiseAddress === '127.0.0.1') return 'the control plane has no address of its own (needs root): metrics-server cannot be registered';
  const kubectl = process.env.VK_TEST_KUBECTL;
  if (!kubectl) throw new Error('VK_TEST_KUBECTL is not set');
  const server = await startMetricsServer({
    info,
    kubectl: path.resolve(kubectl),
    address: info.advertiseAddress,
    resolutionSeconds: 10,
    progress: (line) => process.stderr.write(`[metrics-server] ${line}\n`),
    startTimeoutMs: 120_000,
  });
  scope.after(() => server.stop({ unregister: true }));
  return server;
}
