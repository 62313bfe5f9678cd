// The Fargate provider end to end: a real control plane and a virtual node whose provider talks
// to the AWS contract server (test/contract/aws/), which validates every ECS and CloudWatch Logs
// request against the official service models. The conformance suite runs against it (cases that
// need exec, attach, port-forward, stats, a simulated backend or a restartable one are skipped
// with their reasons), then pods run, fail with their exit codes, are rejected before any AWS
// call, and their logs are read with kubectl.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runConformance } from '../../conformance/suite.ts';
import type { CoreEvent, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { FargateProvider } from '../../src/providers/fargate/fargate-provider.ts';
import { testConfig, useTestCredentials } from '../contract/aws/fargate-fixture.ts';
import { AwsContractServer } from '../contract/aws/server.ts';
import { assertCases, assertNoFailures, BACKEND_CASES } from '../harness/conformance-expect.ts';
import { adminClient, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { startNodeFor } from '../harness/virtual-node.ts';

const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');

async function contractServer(t: { after(fn: () => Promise<void>): void }): Promise<AwsContractServer> {
  useTestCredentials();
  const server = await AwsContractServer.start({ clusters: ['vk-fargate'] });
  t.after(async () => {
    await server.close();
    assert.deepEqual(server.violations, [], 'every request conforms to the official ECS and CloudWatch Logs models');
  });
  return server;
}

test('the Fargate provider passes the conformance suite against the AWS contract server', async (t) => {
  const server = await contractServer(t);
  const provider = await FargateProvider.open(testConfig(server), { nodeName: 'conformance', nodeIP: '127.0.0.1', log });
  const report = await runConformance(
    { description: 'fargate (AWS contract server)', provider },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log },
  );
  assertNoFailures(report);
  assertCases(report, 'passed', BACKEND_CASES);
  assertCases(report, 'skipped', ['exec', 'attach', 'port-forward', 'stats', 'env-volume-delivery', 'create-failure', 'provider-restart']);
  assert.deepEqual(report.capabilities, ['notifyPods', 'notifyPodEvents', 'nodeConfig', 'ping', 'getContainerLogs']);
});

test('on a Fargate node a pod runs, one that exits 1 ends Failed, logs work, and a privileged pod is rejected with no AWS call', async (t) => {
  const server = await contractServer(t);
  const nodeName = randomName('vk-fargate');
  const provider = await FargateProvider.open(testConfig(server), { nodeName, nodeIP: '127.0.0.1', log });
  const client = await adminClient();
  const vk = await startNodeFor(provider, nodeName, { kubeletApi: true, log });
  t.after(() => vk.stop());
  const namespace = await newNamespace(t, 'vk-fargate');
  const manifest = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: { nodeName, restartPolicy: 'Never', automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], ...spec },
  });
  const podsPath = `/api/v1/namespaces/${namespace}/pods`;
  const get = (name: string) => client.get<Pod>(`${podsPath}/${name}`);

  await client.create(podsPath, manifest('web', { containers: [{ name: 'web', image: 'busybox:1.36', command: ['sh', '-c', 'echo serving; sleep 3600'] }] }));
  await client.create(
    podsPath,
    manifest('fails', { containers: [{ name: 'job', image: 'busybox:1.36', command: ['sh', '-c', 'echo failing; sleep 1; exit 1'] }] }),
  );

  const running = await waitFor('pod web Running', async () => ((await get('web')).status?.phase === 'Running' ? get('web') : undefined), {
    timeoutMs: 30_000,
  });
  assert.match(running.status?.podIP ?? '', /^10\.0\./, 'podIP from the task ENI');
  const failed = await waitFor(
    'pod fails to finish',
    async () => {
      const p = await get('fails');
      return p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded' ? p : undefined;
    },
    { timeoutMs: 30_000 },
  );
  assert.equal(failed.status?.phase, 'Failed', 'exit code 1 is a failure, not Succeeded');
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);

  const logs = await waitFor(
    'kubectl logs web',
    async () => {
      const out = await kubectl(['-n', namespace, 'logs', 'web'], { allowFailure: true });
      return out.stdout.includes('serving') ? out.stdout : undefined;
    },
    { timeoutMs: 30_000 },
  );
  assert.equal(logs, 'serving\n');

  const before = server.requests.filter((r) => r.operation === 'RegisterTaskDefinition' || r.operation === 'RunTask').length;
  await client.create(podsPath, manifest('privileged', { containers: [{ name: 'main', image: 'busybox:1.36', securityContext: { privileged: true } }] }));
  const rejected = await waitFor('pod privileged Failed', async () => ((await get('privileged')).status?.phase === 'Failed' ? get('privileged') : undefined), {
    timeoutMs: 30_000,
  });
  assert.match(rejected.status?.message ?? '', /spec\.containers\[0\]\.securityContext\.privileged/);
  const events = await client.get<{ items: CoreEvent[] }>(`/api/v1/namespaces/${namespace}/events`);
  assert.ok(
    events.items.some((e) => e.involvedObject?.name === 'privileged' && e.type === 'Warning' && /securityContext\.privileged/.test(e.message ?? '')),
    'a Warning Event names the field',
  );
  assert.equal(
    server.requests.filter((r) => r.operation === 'RegisterTaskDefinition' || r.operation === 'RunTask').length,
    before,
    'no AWS call for the rejected pod',
  );
});
