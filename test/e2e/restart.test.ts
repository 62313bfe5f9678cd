// kill -9 of a real vk process while pods run, changes while it is down, then a restart against the same backend.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Pod } from '../../src/kube/types.ts';
import { readMockState } from '../../src/providers/mock/mock-provider.ts';
import { loadMockState } from '../../src/providers/mock/state.ts';
import { kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

function startVk(args: string[], logFile: string): ChildProcess {
  const child = spawn(process.execPath, [VK, 'run', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stderr!.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.on('exit', () => {
    try {
      writeFileSync(logFile, Buffer.concat(chunks));
    } catch (err) {
      // A process stopped by the test's cleanup exits after its directory is gone: nothing to keep.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  });
  return child;
}

async function pod(namespace: string, name: string): Promise<Pod | undefined> {
  const result = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Pod) : undefined;
}

test('after kill -9 and a restart: no duplicate provider pods, statuses resume, pods deleted meanwhile are cleaned up', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-restart');
  const dir = tempDir(t, 'vk-restart-');
  const stateFile = path.join(dir, 'mock-state.json');
  writeFileSync(path.join(dir, 'mock.yaml'), `stateFile: ${stateFile}\n`);
  const args = [
    '--kubeconfig',
    kubeconfigPath(),
    '--node-name',
    nodeName,
    '--node-ip',
    '127.0.0.1',
    '--kubelet-port',
    String(await freePort()),
    '--provider',
    'mock',
    '--provider-config',
    path.join(dir, 'mock.yaml'),
    '--lease-renew-interval',
    '1s',
    '--resync-interval',
    '5s',
    '--log-level',
    'info',
  ];
  let vk = startVk(args, path.join(dir, 'vk-1.log'));
  t.after(async () => {
    vk.kill('SIGKILL');
    await kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true });
  });

  const names = ['keeps-running', 'deleted-gracefully', 'force-deleted'];
  const settings = (value: string) =>
    kubectl(['-n', namespace, 'apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { value } }),
    });
  await settings('before');
  for (const name of names) {
    const volumes = name === 'keeps-running' ? { volumes: [{ name: 'cfg', configMap: { name: 'settings' } }] } : {};
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: { nodeName, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'c', image: 'busybox' }], ...volumes },
    };
    await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  }
  await waitFor('three pods Running and persisted by the provider', async () => {
    const phases = await Promise.all(names.map(async (name) => (await pod(namespace, name))?.status?.phase));
    const persisted = readMockState(stateFile).pods.filter((p) => p.namespace === namespace && p.phase === 'Running');
    return phases.every((phase) => phase === 'Running') && persisted.length === 3;
  });
  const uidBefore = (await pod(namespace, 'keeps-running'))?.metadata?.uid;

  vk.kill('SIGKILL');
  await new Promise((resolve) => vk.once('exit', resolve));

  // While it is down: one graceful delete (waits for the kubelet), one force delete, one new pod.
  await kubectl(['-n', namespace, 'delete', 'pod', 'deleted-gracefully', '--wait=false']);
  await kubectl(['-n', namespace, 'delete', 'pod', 'force-deleted', '--grace-period=0', '--force']);
  const late = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'created-while-down' },
    spec: { nodeName, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'c', image: 'busybox' }] },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(late) });
  assert.equal(readMockState(stateFile).pods.filter((p) => p.namespace === namespace).length, 3, 'the backend still runs the three pods');

  vk = startVk(args, path.join(dir, 'vk-2.log'));
  await waitFor('the gracefully deleted pod to be gone from the API', async () => (await pod(namespace, 'deleted-gracefully')) === undefined);
  await waitFor('the pod created while down to be Running', async () => (await pod(namespace, 'created-while-down'))?.status?.phase === 'Running');
  const backend = await waitFor('the backend to hold exactly the two live pods', async () => {
    const pods = readMockState(stateFile).pods.filter((p) => p.namespace === namespace);
    return pods.length === 2 ? pods : undefined;
  });
  assert.deepEqual(backend.map((p) => p.name).sort(), ['created-while-down', 'keeps-running']);
  const kept = await pod(namespace, 'keeps-running');
  assert.equal(kept?.metadata?.uid, uidBefore);
  assert.equal(backend.find((p) => p.name === 'keeps-running')?.uid, uidBefore, 'adopted, not re-created');
  assert.equal(kept?.status?.phase, 'Running');

  // The adopted pod's volumes still follow its ConfigMap.
  const persistedValue = () => {
    const volume = loadMockState(stateFile)
      .pods.find((p) => p.namespace === namespace && p.name === 'keeps-running')
      ?.volumes.find((v) => v.name === 'cfg');
    return volume?.type === 'files' ? Buffer.from(volume.files.find((f) => f.path === 'value')?.content ?? '', 'base64').toString() : undefined;
  };
  assert.equal(persistedValue(), 'before');
  await settings('after');
  await waitFor('the adopted pod to get the new ConfigMap contents', () => persistedValue() === 'after');
});
