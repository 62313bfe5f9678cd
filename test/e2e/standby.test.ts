// Standby replicas (`vk run --leader-elect`) end to end: real vk processes serving one virtual
// node, each through its own provider server (the SDK's serveProvider) in front of one shared
// mock backend, so the backend's own counters tell whether a pod was created twice or lost, and
// each process's provider calls can be told apart. The active process is killed (-9), then
// frozen (SIGSTOP) past its Lease and thawed: a standby takes over within the lease duration, and
// the thawed one makes no provider call after it wakes (fencing).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { Lease, Node, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { serveProvider, type ProviderServer } from '../../src/provider-sdk/server.ts';
import type { Provider } from '../../src/providers/provider.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import { kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
const PODS = 100;
const LEASE_DURATION_MS = 8_000;

interface ProviderCall {
  via: string;
  method: string;
  at: number;
}

/** The backend seen through one provider server: every method call is recorded with the server's label. */
function recorded(provider: Provider, via: string, calls: ProviderCall[]): Provider {
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push({ via, method: String(property), at: Date.now() });
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Vk {
  child: ChildProcess;
  kubeletPort: number;
  output: () => string;
  kill9: () => Promise<void>;
}

async function startVk(nodeName: string, providerConfig: string): Promise<Vk> {
  const kubeletPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      VK,
      'run',
      '--kubeconfig',
      kubeconfigPath(),
      '--node-name',
      nodeName,
      '--node-ip',
      '127.0.0.1',
      '--kubelet-port',
      String(kubeletPort),
      '--kubelet-address',
      '127.0.0.1',
      '--kubelet-serving-cert',
      'self-signed',
      '--provider',
      'remote',
      '--provider-config',
      providerConfig,
      '--leader-elect',
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    kubeletPort,
    output: () => output,
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function getJson<T>(args: string[]): Promise<T | undefined> {
  const result = await kubectl([...args, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as T) : undefined;
}

const leaseHolder = async (nodeName: string) =>
  (await getJson<Lease>(['-n', 'kube-node-lease', 'get', 'lease', `${nodeName}-vk-leader`]))?.spec?.holderIdentity ?? '';
const holderPid = (holder: string) => Number(/_(\d+)_[0-9a-f]+$/.exec(holder)?.[1]);
const servedPort = async (nodeName: string) => (await getJson<Node>(['get', 'node', nodeName]))?.status?.daemonEndpoints?.kubeletEndpoint?.Port;

function podList(names: string[], nodeName: string) {
  return {
    apiVersion: 'v1',
    kind: 'List',
    items: names.map((name) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        nodeName,
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 5,
        tolerations: [{ operator: 'Exists' }],
        containers: [{ name: 'c', image: 'busybox' }],
      },
    })),
  };
}

async function runningPods(namespace: string): Promise<Map<string, string>> {
  const list = await getJson<{ items: Pod[] }>(['-n', namespace, 'get', 'pods']);
  return new Map((list?.items ?? []).filter((p) => p.status?.phase === 'Running').map((p) => [p.metadata!.name!, p.metadata!.uid!]));
}

test('standby replicas: kill -9 of the active one, the standby takes the Lease and the node within 15 s, 100 pods neither lost nor created twice; a frozen holder is fenced', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-standby');
  const dir = tempDir(t, 'vk-standby-');
  const backend = new MockProvider(parseMockConfig({ logIntervalMs: 0 }), { nodeName, hostIP: '127.0.0.1', log });
  const calls: ProviderCall[] = [];
  const servers: ProviderServer[] = [];
  const vks: Vk[] = [];
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false)
      for (const [i, vk] of vks.entries()) process.stderr.write(`----- vk ${i} -----\n${vk.output().slice(-5000)}\n`);
    for (const vk of vks) await vk.kill9();
    for (const server of servers) await server.close();
    await backend.close();
    await kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true });
    await kubectl(['-n', 'kube-node-lease', 'delete', 'lease', `${nodeName}-vk-leader`, '--wait=false'], { allowFailure: true });
  });
  /** One more vk process, behind a provider server of its own labelled `via`. */
  const replica = async (via: string) => {
    const server = await serveProvider(recorded(backend, via, calls), { port: 0, host: '127.0.0.1', log });
    servers.push(server);
    const config = path.join(dir, `${via}.yaml`);
    writeFileSync(config, `endpoint: ${server.url}\n`);
    const vk = await startVk(nodeName, config);
    vks.push(vk);
    return { via, vk };
  };

  const replicas = [await replica('a'), await replica('b')];
  const holder = await waitFor('one replica holds the leader Lease', async () => {
    const pid = holderPid(await leaseHolder(nodeName));
    return replicas.find((r) => r.vk.child.pid === pid);
  });
  const standby = replicas.find((r) => r !== holder)!;
  await waitFor('the holder serves the node', async () => (await servedPort(nodeName)) === holder.vk.kubeletPort);

  const names = Array.from({ length: PODS }, (_, i) => `p-${i}`);
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(podList(names, nodeName)) });
  const before = await waitFor(`${PODS} pods Running`, async () => {
    const running = await runningPods(namespace);
    return running.size === PODS ? running : undefined;
  });
  assert.equal(backend.stats().created, PODS, 'the backend created each pod once');
  assert.ok(
    calls.every((c) => c.via === holder.via || !['createPod', 'updatePod', 'deletePod', 'getPod', 'getPodStatus'].includes(c.method)),
    'the standby made no pod call while it stood by',
  );

  // The node must not go NotReady during the takeover.
  let notReadySeen = false;
  let watching = true;
  const readyWatch = (async () => {
    while (watching) {
      const ready = (await getJson<Node>(['get', 'node', nodeName]))?.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready && ready.status !== 'True') notReadySeen = true;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();

  const killedAt = Date.now();
  await holder.vk.kill9();
  await waitFor('the standby holds the Lease', async () => holderPid(await leaseHolder(nodeName)) === standby.vk.child.pid, {
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  const leaseTakenMs = Date.now() - killedAt;
  await waitFor('the standby serves the node', async () => (await servedPort(nodeName)) === standby.vk.kubeletPort, { timeoutMs: 30_000, intervalMs: 100 });
  const servingMs = Date.now() - killedAt;
  process.stderr.write(`standby takeover after kill -9: Lease held after ${leaseTakenMs} ms, node served after ${servingMs} ms\n`);
  assert.ok(leaseTakenMs <= 15_000, `Lease taken over in ${leaseTakenMs} ms (<= 15 s)`);
  assert.ok(servingMs <= 15_000, `node served again in ${servingMs} ms (<= 15 s)`);

  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(podList(['after-takeover'], nodeName)) });
  await waitFor('a new pod Running through the new holder', async () => (await runningPods(namespace)).has('after-takeover'));
  watching = false;
  await readyWatch;
  assert.equal(notReadySeen, false, 'the node stayed Ready through the takeover');
  const after = await runningPods(namespace);
  for (const [name, uid] of before) assert.equal(after.get(name), uid, `${name} still Running, same pod`);
  const stats = backend.stats();
  assert.equal(stats.created, PODS + 1, 'adopted, not created again: only the new pod was created');
  assert.equal(stats.deleted, 0, 'nothing deleted in the backend');

  // Fencing: freeze the holder past its Lease; a third replica takes over; the thawed one calls nothing.
  const third = await replica('c');
  standby.vk.child.kill('SIGSTOP');
  const frozenAt = Date.now();
  await waitFor('the third replica holds the Lease', async () => holderPid(await leaseHolder(nodeName)) === third.vk.child.pid, {
    timeoutMs: 30_000,
    intervalMs: 100,
  });
  process.stderr.write(`frozen holder: Lease taken over after ${Date.now() - frozenAt} ms\n`);
  assert.ok(Date.now() - frozenAt >= LEASE_DURATION_MS - 2_500, 'not before the frozen holder’s Lease could have expired');
  const thawedAt = Date.now();
  standby.vk.child.kill('SIGCONT');
  await waitFor('the thawed replica gives up its term', () => standby.vk.output().includes('lost the leader Lease'), { timeoutMs: 30_000 });
  // (notifyPods/notifyPodEvents are the provider server's own, when a status stream connects.)
  const late = calls.filter((c) => c.via === standby.via && c.at >= thawedAt && !c.method.startsWith('notify'));
  assert.deepEqual(late, [], 'no provider call from the thawed replica after it woke');
  await waitFor('the third replica serves the node', async () => (await servedPort(nodeName)) === third.vk.kubeletPort, { timeoutMs: 30_000 });
  const final = await runningPods(namespace);
  assert.equal(final.size, PODS + 1, 'every pod still Running');
  assert.equal(backend.stats().created, PODS + 1, 'still none created twice');
});
