// The control plane's supervisor (`vk-cluster up`, controlplane/up.go) starts a component that
// exits on its own again: kube-apiserver killed with SIGKILL comes back on the same port and
// data, while the supervisor (with etcd inside), kube-scheduler and kube-controller-manager go
// on as they were; on shutdown nothing is restarted. A control plane of its own (it is killed).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { componentPids, processRuns } from '../../src/cluster/component-pids.ts';
import { startLocalCluster } from '../../src/cluster/local.ts';
import { KubeClient } from '../../src/kube/client.ts';
import type { ConfigMap } from '../../src/kube/types.ts';
import { waitFor } from '../harness/wait.ts';

test('kube-apiserver killed with SIGKILL is restarted alone; the supervisor, etcd and the other components stay', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-cp-restart-'));
  const progress: string[] = [];
  const cluster = await startLocalCluster({ dir, progress: (line) => progress.push(line) });
  const client = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig });
  t.after(async () => {
    client.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });
  let exited: string | undefined;
  void cluster.exited.then((reason) => (exited = reason ?? 'stopped'));
  const supervisor = cluster.info.pid;
  const before = componentPids(supervisor);
  assert.ok(before['kube-apiserver'] && before['kube-scheduler'] && before['kube-controller-manager'], JSON.stringify(before));
  await client.create('/api/v1/namespaces/default/configmaps', { metadata: { name: 'kept' }, data: { before: 'kill' } });
  // kube-controller-manager answers healthz before it has built its controllers, and exits when
  // kube-apiserver refuses it meanwhile (then it is restarted too): kill once it is through.
  await waitFor(
    'kube-controller-manager through its start-up',
    () => /all resource monitors have synced/.test(readFileSync(cluster.info.logs['kube-controller-manager']!, 'utf8')),
    { timeoutMs: 120_000, intervalMs: 250 },
  );

  process.kill(before['kube-apiserver'], 'SIGKILL');
  const restarted = await waitFor(
    () => `a new kube-apiserver serving (components now ${JSON.stringify(componentPids(supervisor))}; exited: ${exited})`,
    async () => {
      const pid = componentPids(supervisor)['kube-apiserver'];
      if (pid === undefined || pid === before['kube-apiserver']) return undefined;
      const kept = await client.get<ConfigMap>('/api/v1/namespaces/default/configmaps/kept');
      return kept.data?.before === 'kill' ? pid : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );

  assert.equal(exited, undefined, 'the control plane did not stop');
  assert.ok(processRuns(supervisor), 'the supervisor (and etcd inside it) still runs');
  const etcdHealth = await fetch(`${cluster.info.etcd}/health`);
  assert.equal(etcdHealth.status, 200, 'etcd still serves');
  const after = componentPids(supervisor);
  assert.equal(after['kube-scheduler'], before['kube-scheduler'], 'kube-scheduler was not restarted');
  assert.equal(after['kube-controller-manager'], before['kube-controller-manager'], 'kube-controller-manager was not restarted');
  assert.equal(Number(new URL(cluster.info.server).port), cluster.info.ports['kube-apiserver'], 'same port');
  await waitFor('the supervisor to note the restart', () => progress.some((l) => /kube-apiserver serves again/.test(l)), { timeoutMs: 30_000 });
  assert.ok(
    progress.some((l) => new RegExp(`kube-apiserver \\(pid ${before['kube-apiserver']}\\) exited \\(signal: killed\\).*restarting it in`).test(l)),
    progress.join('\n'),
  );
  // The component's log keeps the runs before the restart, with the supervisor's note between.
  assert.match(readFileSync(cluster.info.logs['kube-apiserver']!, 'utf8'), /vk-cluster: kube-apiserver exited \(signal: killed\); restarting it/);

  // Shutdown restarts nothing: every component is gone once the supervisor is.
  await cluster.stop();
  assert.equal(exited, 'stopped');
  for (const pid of [restarted, after['kube-scheduler']!, after['kube-controller-manager']!]) assert.ok(!processRuns(pid), `pid ${pid} gone after stop`);
  assert.ok(!processRuns(supervisor));
});
