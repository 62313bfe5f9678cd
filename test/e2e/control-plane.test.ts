// The local control plane is real: API server, etcd, scheduler and controller-manager all work.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { kubectl, newNamespace, waitFor } from '../harness/cluster.ts';

function deploymentManifest(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
    },
  });
}

test('kube-apiserver answers /readyz with ok', async () => {
  const { stdout } = await kubectl(['get', '--raw', '/readyz']);
  assert.equal(stdout.trim(), 'ok');
});

test('kube-scheduler and kube-controller-manager hold their leader Leases', async () => {
  for (const name of ['kube-scheduler', 'kube-controller-manager']) {
    const lease = JSON.parse((await kubectl(['-n', 'kube-system', 'get', 'lease', name, '-o', 'json'])).stdout);
    assert.ok(lease.spec.holderIdentity, `${name} lease has a holder`);
    const age = Date.now() - Date.parse(lease.spec.renewTime);
    assert.ok(age < 30_000, `${name} lease renewed ${age} ms ago`);
  }
});

describe('Deployments in parallel namespaces', { concurrency: 2 }, () => {
  for (const replicas of [2, 3]) {
    test(`a Deployment of ${replicas} replicas gets its ReplicaSet and exactly its own Pods`, async (t) => {
      const namespace = await newNamespace(t);
      await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: deploymentManifest('web', replicas) });
      const rs = await waitFor('a ReplicaSet for the Deployment', async () => {
        const list = JSON.parse((await kubectl(['-n', namespace, 'get', 'replicasets', '-l', 'app=web', '-o', 'json'])).stdout);
        return list.items.length === 1 ? list.items[0] : undefined;
      });
      assert.equal(rs.spec.replicas, replicas);
      const pods = await waitFor(`${replicas} pods`, async () => {
        const list = JSON.parse((await kubectl(['-n', namespace, 'get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout);
        return list.items.length === replicas ? list.items : undefined;
      });
      for (const pod of pods) assert.equal(pod.metadata.namespace, namespace);
    });
  }
});
