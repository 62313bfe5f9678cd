// The cluster provider against the two shared suites, its target a second local control plane
// whose only node runs the sandbox provider (pods really run there): the conformance suite
// (conformance/) on the harness's cluster, and the in-process Provider contract
// (src/providers/contract.ts). The conformance target's "backend" is the target cluster: it can
// be restarted (its control plane stopped and started), and what it received is read back from
// the target's objects (the pod, its env Secret, its volume ConfigMaps/Secrets).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, test } from 'node:test';
import { formatReport, runConformance, type ConformanceProfile } from '../../conformance/suite.ts';
import type { ConfigMap, ObjectList, Pod, Secret } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { ClusterProvider } from '../../src/providers/cluster/cluster-provider.ts';
import { LABEL_NODE } from '../../src/providers/cluster/names.ts';
import { CONTRACT_CASES, runProviderContract } from '../../src/providers/contract.ts';
import type { ResolvedPod, ResolvedVolume } from '../../src/providers/provider.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { adminClient, fileScope, kubeconfigPath, randomName, waitFor } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { startTargetCluster, type TargetCluster } from '../harness/target-cluster.ts';

const scope = fileScope();
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
const skip = sandboxSkip;

let target: TargetCluster;
let profile: Required<ConformanceProfile>;

before(async () => {
  if (skip) return;
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  // The host's busybox may lack the printenv applet env-volume-delivery runs: a shell one in the image.
  const printenv = '#!/bin/sh\n[ $# -eq 0 ] && exec env\nfor n in "$@"; do eval "[ -n \\"\\${$n+x}\\" ] && printf \'%s\\n\' \\"\\$$n\\"" || exit 1; done\n';
  const built = await buildBusyboxImage({
    extraEntries: [
      { path: 'usr/', type: 'directory' },
      { path: 'usr/bin/', type: 'directory' },
      { path: 'usr/bin/printenv', content: printenv, mode: 0o755 },
    ],
  });
  profile = {
    image: (await registry.pushImage('library/busybox', built, { tag: '1.36' })).reference,
    updateImage: (await registry.pushImage('library/busybox', built, { tag: '1.37' })).reference,
  };
  target = await startTargetCluster(scope, { provider: 'sandbox', nodeName: randomName('vk-target') });
  // The contract's pods live in namespace "contract": made ready up front, since the contract
  // calls createPod once (the core would retry while the new namespace's ServiceAccount appears).
  await target.kubectl(['create', 'namespace', 'contract']);
  await waitFor(
    'ServiceAccount default in the target namespace contract',
    async () => (await target.kubectl(['-n', 'contract', 'get', 'sa', 'default'], { allowFailure: true })).code === 0,
  );
});

/** The provider config: the target's only node is a virtual node, tainted as such. */
function providerConfig(): Record<string, unknown> {
  return { kubeconfig: target.kubeconfig, scheduling: { tolerations: [{ operator: 'Exists' }] }, capacityRefreshMs: 1000, requestTimeoutMs: 5000 };
}

/** What the target cluster received for a source pod, as a ResolvedPod: env from the pod's env Secret, files from its volume objects. */
async function receivedByTarget(nodeName: string, namespace: string, name: string): Promise<ResolvedPod | undefined> {
  const pods = await target.client.list<ObjectList<Pod>>('/api/v1/pods', { query: { labelSelector: `${LABEL_NODE}=${nodeName}` } });
  const pod = pods.items.find((p) => p.metadata?.annotations?.['cluster.virtual-kubelet.io/source-name'] === name && p.metadata.namespace === namespace);
  if (!pod) return undefined;
  const ns = pod.metadata!.namespace!;
  const secretData = new Map<string, Record<string, string>>();
  const secret = async (secretName: string) => {
    if (!secretData.has(secretName)) secretData.set(secretName, (await target.client.get<Secret>(`/api/v1/namespaces/${ns}/secrets/${secretName}`)).data ?? {});
    return secretData.get(secretName)!;
  };
  const resolved = structuredClone(pod);
  for (const container of resolved.spec!.containers) {
    container.env = await Promise.all(
      (container.env ?? []).map(async (e) => {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) return e;
        return { name: e.name, value: Buffer.from((await secret(ref.name!))[ref.key] ?? '', 'base64').toString('utf8') };
      }),
    );
  }
  const volumes = new Map<string, ResolvedVolume>();
  for (const volume of pod.spec?.volumes ?? []) {
    if (volume.emptyDir) {
      volumes.set(volume.name, { name: volume.name, type: 'emptyDir', medium: volume.emptyDir.medium ?? '' });
      continue;
    }
    const items = volume.configMap?.items ?? volume.secret?.items ?? [];
    const data = volume.configMap
      ? ((await target.client.get<ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${volume.configMap.name}`)).binaryData ?? {})
      : await secret(volume.secret!.secretName!);
    volumes.set(volume.name, {
      name: volume.name,
      type: 'files',
      source: volume.configMap ? 'configMap' : 'secret',
      files: items.map((item) => ({ path: item.path, mode: item.mode ?? 0o644, content: Buffer.from(data[item.key] ?? '', 'base64') })),
    });
  }
  return { pod: resolved, volumes };
}

test('the cluster provider passes the conformance suite, its target a second control plane with a sandbox node', { skip }, async (t) => {
  const nodeName = `conformance-${randomBytes(3).toString('hex')}`;
  // The virtual kubelet closes the provider when the suite ends.
  const provider = await ClusterProvider.open(providerConfig(), { nodeName, nodeIP: '127.0.0.1', log, kube: await adminClient() });
  const report = await runConformance(
    {
      description: `cluster (target ${target.cluster.info.server}, sandbox node)`,
      provider,
      inspect: (namespace, name) => receivedByTarget(nodeName, namespace, name),
      restart: { stop: () => target.stop(), start: () => target.start() },
    },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log, profile },
  );
  t.diagnostic(formatReport(report));
  assert.equal(report.failed, 0, `conformance failures:\n${formatReport(report)}`);
  const skipped = report.results.filter((r) => r.status === 'skipped');
  // The target runs real processes: it cannot act out mock.vk.io/* failure injection.
  assert.deepEqual(
    skipped.map((r) => r.name),
    ['create-failure'],
    formatReport(report),
  );
  assert.match(skipped[0]!.detail ?? '', /simulated backend/);
  assert.equal(report.provider, 'cluster');
});

const contractNodes: string[] = [];
runProviderContract({
  name: 'cluster (target: second control plane, sandbox node)',
  async make() {
    const nodeName = `contract-${randomBytes(3).toString('hex')}`;
    contractNodes.push(nodeName);
    const provider = await ClusterProvider.open(providerConfig(), { nodeName, nodeIP: '127.0.0.1', log });
    // The provider answers once its watch on the target has synced.
    await provider.listPods();
    return {
      provider,
      async close() {
        for (const pod of await provider.listPods())
          await provider.deletePod(pod, { signal: AbortSignal.timeout(30_000), reason: 'deleted' }).catch(() => undefined);
        await provider.close();
      },
    };
  },
  pod: (name, uid) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, uid, namespace: 'contract' },
    spec: { terminationGracePeriodSeconds: 1, restartPolicy: 'Always', containers: [{ name: 'app', image: profile.image, command: ['sleep', '3600'] }] },
  }),
  timeoutMs: 30_000,
  ...(skip && { skip: Object.fromEntries(CONTRACT_CASES.map((n) => [n, skip as string])) }),
});

test('the contract left no pods of its providers in the target', { skip }, async () => {
  assert.ok(contractNodes.length > 0, 'the contract cases ran');
  const left = await target.client.list<ObjectList<Pod>>('/api/v1/pods', { query: { labelSelector: `${LABEL_NODE} in (${contractNodes.join(',')})` } });
  assert.deepEqual(
    left.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`),
    [],
  );
});
