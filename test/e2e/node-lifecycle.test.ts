// Node adoption across restarts and the shutdown modes, against the real API.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Node } from '../../src/kube/types.ts';
import { kubectl, randomName, waitFor } from '../harness/cluster.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

async function getNode(name: string): Promise<Node | undefined> {
  const result = await kubectl(['get', 'node', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Node) : undefined;
}

test('a restarted virtual kubelet adopts its Node: changed labels and taints are re-applied, taints others set are kept', async (t) => {
  const nodeName = randomName('vk-adopt');
  t.after(() => kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true }));
  const first = await startVirtualNode(t, {
    node: {
      nodeName,
      labels: { team: 'a', 'example.com/only-first': 'x' },
      taints: [{ key: 'example.com/first', value: '1', effect: 'NoSchedule' }],
      shutdownMode: 'keep',
    },
  });
  await first.vk.stop();
  const kept = await getNode(nodeName);
  assert.ok(kept, 'shutdown mode keep leaves the Node');
  await kubectl(['taint', 'node', nodeName, 'example.com/foreign=yes:NoSchedule']);

  const second = await startVirtualNode(t, {
    node: { nodeName, labels: { team: 'b' }, taints: [{ key: 'example.com/second', value: '2', effect: 'NoExecute' }], shutdownMode: 'not-ready' },
  });
  const adopted = await getNode(nodeName);
  assert.equal(adopted?.metadata?.uid, kept.metadata?.uid, 'the same Node object');
  assert.equal(adopted?.metadata?.labels?.team, 'b');
  assert.equal(adopted?.metadata?.labels?.['example.com/only-first'], undefined, 'a label we no longer set is removed');
  const taintKeys = (adopted?.spec?.taints ?? []).map((x) => x.key).sort();
  assert.ok(taintKeys.includes('example.com/second'), `taints: ${taintKeys}`);
  assert.ok(taintKeys.includes('example.com/foreign'), 'a taint set by someone else stays');
  assert.ok(!taintKeys.includes('example.com/first'), 'our old taint is gone');

  await second.vk.stop();
  const stopped = await waitFor('Ready=False after a not-ready shutdown', async () => {
    const ready = (await getNode(nodeName))?.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'False' ? ready : undefined;
  });
  assert.equal(stopped.reason, 'KubeletStopped');
});

test('shutdown mode delete removes the Node and its Lease', async (t) => {
  const { vk, nodeName } = await startVirtualNode(t, { node: { shutdownMode: 'delete' } });
  assert.ok(await getNode(nodeName));
  await vk.stop();
  assert.equal(await getNode(nodeName), undefined);
  await waitFor(
    'the Lease to be garbage-collected',
    async () => (await kubectl(['-n', 'kube-node-lease', 'get', 'lease', nodeName], { allowFailure: true })).code !== 0,
    { timeoutMs: 60_000 },
  );
});
