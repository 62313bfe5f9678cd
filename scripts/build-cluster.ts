// Builds (or finds cached) the local control plane binary; run before the tests.
import { ensureClusterBinary } from '../src/cluster/binary.ts';

const started = Date.now();
const result = await ensureClusterBinary((line) => console.error(`build-cluster: ${line}`));
console.error(`build-cluster: ${result.binary} (Kubernetes ${result.kubernetesVersion}) ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
