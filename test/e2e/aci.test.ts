// The ACI provider end to end against the real control plane, its ARM calls going to the ACI
// contract server (test/contract/aci), which validates each against the published
// containerInstance.json: the conformance suite, and the seed walk-through — a Windows ACI
// virtual node and the upstream README's Deployment (nodeSelector kubernetes.io/role: agent,
// beta.kubernetes.io/os: windows, type: virtual-kubelet; tolerations for
// virtual-kubelet.io/provider and azure.com/aci) scaled 1 → 5 → 0, one container group per pod,
// and ACI's events shown by `kubectl get events`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatReport, runConformance } from '../../conformance/suite.ts';
import type { CoreEvent, Node, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { VirtualKubelet } from '../../src/virtual-kubelet.ts';
import { startAciFixture } from '../contract/aci/fixture.ts';
import { assertCases, assertNoFailures, BACKEND_CASES } from '../harness/conformance-expect.ts';
import { adminClient, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { FAST_TIMINGS } from '../harness/timings.ts';

const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');

test('the ACI provider passes the conformance suite against the ACI contract server', async (t) => {
  const fixture = await startAciFixture(log, { timings: { provisionMs: 1000, restartDelayMs: 1000 } });
  t.after(() => fixture.close());
  // The virtual kubelet closes the provider when the suite ends.
  const provider = await fixture.open({}, 'vk-conformance-aci');
  const report = await runConformance(
    {
      description: `aci against the contract server ${fixture.server.url}`,
      provider,
      skip: { exec: "needs a real process: ACI's exec API reports neither stderr nor the exit code, and the contract server runs no commands" },
    },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log },
  );
  t.diagnostic(formatReport(report));
  assertNoFailures(report);
  assertCases(report, 'passed', BACKEND_CASES);
  assert.deepEqual(fixture.server.violations, [], `requests the published schema rejects:\n${fixture.server.violations.join('\n')}`);
});

/** The Deployment of the upstream azure-aci README, as the seeds give it. */
function seedDeployment(replicas: number) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'iis' },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'iis' } },
      template: {
        metadata: { labels: { app: 'iis' } },
        spec: {
          containers: [{ name: 'iis', image: 'mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022', ports: [{ containerPort: 80 }] }],
          nodeSelector: { 'kubernetes.io/role': 'agent', 'beta.kubernetes.io/os': 'windows', type: 'virtual-kubelet' },
          tolerations: [
            { key: 'virtual-kubelet.io/provider', operator: 'Exists' },
            { key: 'azure.com/aci', effect: 'NoSchedule' },
          ],
        },
      },
    },
  };
}

test('seed walk-through: a Windows ACI node runs the README Deployment 1 → 5 → 0, one container group per pod', async (t) => {
  const namespace = await newNamespace(t);
  const fixture = await startAciFixture(log, {
    timings: { provisionMs: 500 },
    config: { osType: 'Windows', taint: { key: 'azure.com/aci', effect: 'NoSchedule' }, subnetIds: [] },
  });
  t.after(() => fixture.close());
  const nodeName = randomName('vk-aci-windows');
  const provider = await fixture.open({}, nodeName);
  const client = await adminClient();
  const vk = await VirtualKubelet.start(
    client,
    provider,
    { nodeName, nodeIP: '127.0.0.1', kubeletPort: 10250, labels: {}, shutdownMode: 'delete', ...FAST_TIMINGS },
    log,
  );
  t.after(() => vk.stop());

  const node = await waitFor('the Windows node Ready', async () => {
    const n = await client.get<Node>(`/api/v1/nodes/${nodeName}`);
    return n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? n : undefined;
  });
  assert.equal(node.metadata?.labels?.['kubernetes.io/os'], 'windows');
  assert.equal(node.metadata?.labels?.['beta.kubernetes.io/os'], 'windows');
  assert.equal(node.status?.nodeInfo?.operatingSystem, 'windows');
  // The node lifecycle controller's not-ready taint may still be there; ours are these two.
  const taints = node.spec?.taints?.map((x) => `${x.key}=${x.value ?? ''}:${x.effect}`) ?? [];
  for (const taint of ['azure.com/aci=:NoSchedule', 'virtual-kubelet.io/provider=aci:NoSchedule'])
    assert.ok(taints.includes(taint), `${taint} in ${taints.join(', ')}`);

  const apply = (replicas: number) => kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(seedDeployment(replicas)) });
  const groupsOf = () => fixture.server.groupNames().filter((g) => g.startsWith(`${namespace}-iis-`));
  const runningPods = async (count: number) =>
    waitFor(
      () => `${count} Running iis pods on ${nodeName} (groups: ${groupsOf().join(', ')})`,
      async () => {
        const list = (await client.get<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Diis`)).items;
        const running = list.filter((p) => p.status?.phase === 'Running' && p.spec?.nodeName === nodeName);
        return list.length === count && running.length === count && groupsOf().length === count ? list : undefined;
      },
      { timeoutMs: 90_000 },
    );

  await apply(1);
  const one = await runningPods(1);
  assert.deepEqual(groupsOf(), [`${namespace}-${one[0]!.metadata!.name}`]);
  // ACI's instance-view events reach `kubectl get events`, recorded as this node's kubelet.
  const podName = one[0]!.metadata!.name!;
  const pulled = await waitFor(`a Pulled Event for ${podName} in kubectl get events`, async () => {
    const out = await kubectl(['-n', namespace, 'get', 'events', '--field-selector', `involvedObject.name=${podName},reason=Pulled`, '-o', 'json']);
    return (JSON.parse(out.stdout) as { items: CoreEvent[] }).items[0];
  });
  assert.deepEqual(pulled.source, { component: 'kubelet', host: nodeName });
  assert.equal(pulled.type, 'Normal');
  assert.equal(pulled.involvedObject.uid, one[0]!.metadata!.uid);
  assert.equal(pulled.involvedObject.fieldPath, 'spec.containers{iis}');
  assert.equal(pulled.message, 'Successfully pulled image "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022"');
  await apply(5);
  const five = await runningPods(5);
  assert.deepEqual(groupsOf().sort(), five.map((p) => `${namespace}-${p.metadata!.name}`).sort());
  const puts = fixture.server.requests.filter((r) => r.operationId === 'ContainerGroups_CreateOrUpdate' && r.status < 300);
  for (const put of puts) assert.equal((put.body as { properties: { osType: string } }).properties.osType, 'Windows');
  await apply(0);
  await waitFor(
    () => `no iis pods and no container groups (groups: ${groupsOf().join(', ')})`,
    async () => {
      const list = (await client.get<{ items: Pod[] }>(`/api/v1/namespaces/${namespace}/pods?labelSelector=app%3Diis`)).items;
      return list.length === 0 && groupsOf().length === 0;
    },
    { timeoutMs: 90_000 },
  );
  const created = fixture.server.created.filter((g) => g.startsWith(`${namespace}-iis-`));
  const deleted = fixture.server.deleted.filter((g) => g.startsWith(`${namespace}-iis-`));
  assert.equal(created.length, 5, `one group per pod: ${created.join(', ')}`);
  assert.deepEqual([...deleted].sort(), [...created].sort(), 'every group created was deleted');
  assert.deepEqual(fixture.server.violations, [], `requests the published schema rejects:\n${fixture.server.violations.join('\n')}`);
});
