// The local control plane is real: API server, etcd, scheduler and controller-manager all work.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { clusterInfo, kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { createTestHost, testHostsSupported } from '../harness/test-host.ts';

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

test(
  'a process in a network namespace of its own reaches kube-apiserver at its advertise address, TLS verified against the cluster CA',
  { skip: testHostsSupported() },
  async (t) => {
    const info = clusterInfo();
    assert.notEqual(info.advertiseAddress, '127.0.0.1', 'the harness claimed an address for kube-apiserver (root is needed)');
    const host = await createTestHost(t);
    execFileSync('ip', ['netns', 'exec', host.namespace, 'ip', 'route', 'add', `${info.advertiseAddress}/32`, 'via', host.hostAddress]);
    // /version is public (system:public-info-viewer): an answer proves the address, the port and the certificate's IP SAN.
    const script = `require('node:https').get({ host: process.argv[1], port: Number(process.argv[2]), path: '/version', ca: require('node:fs').readFileSync(process.argv[3]) }, (res) => {
    let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
  }).on('error', (err) => { console.log(JSON.stringify({ error: err.message })); });`;
    const out = execFileSync(
      'ip',
      [
        'netns',
        'exec',
        host.namespace,
        process.execPath,
        '-e',
        script,
        info.advertiseAddress,
        String(info.ports['kube-apiserver']),
        path.join(info.pkiDir, 'ca.crt'),
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const answer = JSON.parse(out) as { status?: number; body?: string; error?: string };
    assert.equal(answer.error, undefined);
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body!).gitVersion, info.version);

    const slices = JSON.parse((await kubectl(['-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json'])).stdout);
    assert.deepEqual(
      slices.items.flatMap((s: { endpoints: { addresses: string[] }[] }) => s.endpoints.flatMap((e) => e.addresses)),
      [info.advertiseAddress],
    );
    assert.deepEqual(
      slices.items.flatMap((s: { ports: { port: number }[] }) => s.ports.map((p) => p.port)),
      [info.ports['kube-apiserver']],
    );
  },
);
