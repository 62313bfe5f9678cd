// Builds (or finds cached) the local control plane and metrics-server binaries; run before the
// tests, so that no test's time limit has to cover a first build.
import { ensureClusterBinary } from '../src/cluster/binary.ts';
import { ensureMetricsServerBinary } from '../src/cluster/metrics-server.ts';

const started = Date.now();
const progress = (line: string) => console.error(`build-cluster: ${line}`);
const result = await ensureClusterBinary(progress);
const metricsServer = await ensureMetricsServerBinary(progress);
console.error(
  `build-cluster: ${result.binary} (Kubernetes ${result.kubernetesVersion}) and ${metricsServer} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`,
);
