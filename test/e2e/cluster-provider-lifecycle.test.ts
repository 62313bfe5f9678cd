// The cluster provider, end to end, for what the walk-through (cluster-provider.test.ts) does not
// cover: streams forced onto SPDY/3.1 against the real target control plane, logs of completed
// pods, and a target pod deleted behind our back while vk is down (the tombstone survives the
// restart). Target: a second local control plane whose only node runs the sandbox provider.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { before, test } from 'node:test';
import type { CoreEvent, ObjectList, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { ClusterProvider } from '../../src/providers/cluster/cluster-provider.ts';
import { LABEL_NODE, LABEL_UID } from '../../src/providers/cluster/names.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { adminClient, fileScope, kubeconfigPath, kubectl, randomName, spawnKubectl, waitFor } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { startTargetCluster, type TargetCluster } from '../harness/target-cluster.ts';
import { tempDir } from '../harness/temp.ts';
import { startNodeFor } from '../harness/virtual-node.ts';
import { startVkProcess } from '../harness/vk-process.ts';

const scope = fileScope();
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
const skip = sandboxSkip;

let target: TargetCluster;
let image = '';
let nodeName = '';
let namespace = '';
let configDir = '';

before(async () => {
  if (skip) return;
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: '1.36' })).reference;
  target = await startTargetCluster(scope, { provider: 'sandbox', nodeName: randomName('vk-target') });
  configDir = tempDir(scope, 'vk-cluster-lifecycle-');
  namespace = randomName('burst');
  await kubectl(['create', 'namespace', namespace]);
  scope.after(() => kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true }));
  await waitFor(
    `ServiceAccount default in ${namespace}`,
    async () => (await kubectl(['-n', namespace, 'get', 'sa', 'default'], { allowFailure: true })).code === 0,
  );
  nodeName = randomName('vk-cluster');
  const client = await adminClient();
  const provider = await ClusterProvider.open(
    {
      kubeconfig: target.kubeconfig,
      namespaces: { allow: [namespace] },
      scheduling: { tolerations: [{ operator: 'Exists' }] },
      requestTimeoutMs: 5000,
      // Never WebSocket: exec, attach and port-forward below all go over SPDY/3.1.
      streams: { protocol: 'spdy' },
    },
    { nodeName, nodeIP: '127.0.0.1', log, kube: client },
  );
  const vk = await startNodeFor(provider, nodeName, { kubeletApi: true, log, client });
  scope.after(() => vk.stop());
});

function podSpec(node: string, containers: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    nodeSelector: { 'kubernetes.io/hostname': node },
    tolerations: [{ operator: 'Exists' }],
    terminationGracePeriodSeconds: 2,
    containers,
    ...extra,
  };
}

async function apply(manifest: unknown): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

async function sourcePod(name: string): Promise<Pod | undefined> {
  const result = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Pod) : undefined;
}

async function targetPods(selector: string): Promise<Pod[]> {
  return (JSON.parse((await target.kubectl(['get', 'pods', '-A', '-l', selector, '-o', 'json'])).stdout) as ObjectList<Pod>).items;
}

async function waitPhase(name: string, phase: string): Promise<Pod> {
  let last: Pod | undefined;
  return waitFor(
    () => `pod ${name} ${phase} (last status: ${JSON.stringify(last?.status)})`,
    async () => {
      last = await sourcePod(name);
      if (last?.status?.phase !== phase) return undefined;
      return phase !== 'Running' || (last.status.containerStatuses ?? []).every((c) => c.state?.running) ? last : undefined;
    },
    { timeoutMs: 120_000 },
  );
}

/** `kubectl exec -it` under util-linux `script` (a terminal of `rows` x `cols`), so kubectl asks for a TTY and sends its size. */
function execTty(pod: string, container: string, shell: string, rows: number, cols: number): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    const command = `stty rows ${rows} cols ${cols}; ${process.env.VK_TEST_KUBECTL} -n ${namespace} exec -it ${pod} -c ${container} -- sh -c '${shell}'`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, KUBECONFIG: kubeconfigPath(), TERM: 'xterm' } });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => resolve({ out, code }));
  });
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function podEvents(name: string): Promise<CoreEvent[]> {
  const out = await kubectl(['-n', namespace, 'get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'json']);
  return (JSON.parse(out.stdout) as ObjectList<CoreEvent>).items;
}

test('streams forced onto SPDY: kubectl exec -i with 1 MB of stdin, exec -it with its terminal size, attach and port-forward', { skip }, async (t) => {
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'spdy' },
    spec: podSpec(nodeName, [
      { name: 'echo', image, stdin: true, command: ['sh', '-c', 'while read l; do echo got: $l; done'] },
      { name: 'web', image, command: ['sh', '-c', 'mkdir -p /www && echo hello over spdy > /www/index.html && exec httpd -f -p 8080 -h /www'] },
    ]),
  });
  await waitPhase('spdy', 'Running');

  const input = 'x'.repeat(1 << 20);
  const counted = await kubectl(['-n', namespace, 'exec', '-i', 'spdy', '-c', 'web', '--', 'wc', '-c'], { input });
  assert.equal(counted.stdout.trim(), String(1 << 20));
  const failing = await kubectl(['-n', namespace, 'exec', 'spdy', '-c', 'web', '--', 'sh', '-c', 'echo to stderr >&2; exit 7'], { allowFailure: true });
  assert.equal(failing.code, 7, 'the exit code travels back (v4 error stream)');
  assert.match(failing.stderr, /to stderr/);

  // The size kubectl reads from its terminal reaches the container's pty over the resize stream.
  // It travels kubectl → source API → vk → target API → target node while the command already
  // runs (as on a kubelet: a CRI exec has no initial size), so the command waits for it (5 s at most).
  const waitSize = 'i=0; until [ "$(stty size 2>/dev/null)" = "37 111" ] || [ $i -ge 50 ]; do sleep 0.1; i=$((i+1)); done';
  const tty = await execTty('spdy', 'web', `test -t 0 && echo is a tty; ${waitSize}; stty size; exit 5`, 37, 111);
  assert.match(tty.out, /is a tty\r\n/);
  assert.match(tty.out, /37 111\r\n/, `the terminal size in the container (output: ${JSON.stringify(tty.out)})`);
  assert.equal(tty.code, 5);

  const attach = spawnKubectl(t, ['-n', namespace, 'attach', '-i', 'spdy', '-c', 'echo']);
  await waitFor(
    'attach to echo stdin back',
    () => {
      attach.child.stdin!.write('hello attach\n');
      return attach.out().includes('got: hello attach');
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );

  const forward = spawnKubectl(t, ['-n', namespace, 'port-forward', 'pod/spdy', ':8080']);
  const port = await waitFor('port-forward to listen', () => /127\.0\.0\.1:(\d+)/.exec(forward.out())?.[1], { timeoutMs: 30_000 });
  assert.equal(await get(`http://127.0.0.1:${port}/index.html`), 'hello over spdy\n');
  assert.equal(await get(`http://127.0.0.1:${port}/index.html`), 'hello over spdy\n', 'a second connection through the same forward');
  await kubectl(['-n', namespace, 'delete', 'pod', 'spdy', '--wait=false']);
});

test('a completed pod: kubectl logs (and --previous of its failed first run) work; the target pod goes when the source pod is deleted', { skip }, async () => {
  await apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'done' },
    spec: podSpec(
      nodeName,
      [
        {
          name: 'job',
          image,
          command: ['sh', '-c', 'if [ -e /work/ran ]; then echo second run; exit 0; fi; touch /work/ran; echo first run; exit 1'],
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        },
      ],
      { restartPolicy: 'OnFailure', volumes: [{ name: 'work', emptyDir: {} }] },
    ),
  });
  const finished = await waitPhase('done', 'Succeeded');
  assert.equal(finished.status?.containerStatuses?.[0]?.restartCount, 1);
  const uid = finished.metadata!.uid!;
  // Well past the release of the finished pod: its target pod (and so its logs) must still be there.
  await waitFor('the finished target pod still in the target', async () => (await targetPods(`${LABEL_UID}=${uid}`)).length === 1, { timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 3000));
  const logs = await kubectl(['-n', namespace, 'logs', 'done']);
  assert.equal(logs.stdout.trim(), 'second run');
  const previous = await kubectl(['-n', namespace, 'logs', 'done', '--previous']);
  assert.equal(previous.stdout.trim(), 'first run');
  assert.equal((await targetPods(`${LABEL_UID}=${uid}`)).length, 1, 'the finished target pod is kept');

  await kubectl(['-n', namespace, 'delete', 'pod', 'done', '--wait=true', '--timeout=60s']);
  await waitFor('the target pod gone with the source pod', async () => (await targetPods(`${LABEL_UID}=${uid}`)).length === 0, { timeoutMs: 60_000 });
});

test(
  'a target pod deleted behind our back while vk is down: after the restart the pod reports TargetPodDeleted (with an Event) and is not created again',
  { skip },
  async (t) => {
    const name = randomName('vk-tomb');
    const config = path.join(configDir, 'tomb.yaml');
    writeFileSync(
      config,
      JSON.stringify({ kubeconfig: target.kubeconfig, namespaces: { allow: [namespace] }, scheduling: { tolerations: [{ operator: 'Exists' }] } }),
    );
    const args = ['run', '--kubeconfig', kubeconfigPath(), '--node-name', name, '--node-ip', '127.0.0.1', '--kubelet-port', '0', '--kubelet-auth', 'none'];
    args.push('--kubelet-serving-cert', 'self-signed', '--provider', 'cluster', '--provider-config', config, '--resync-interval', '5s', '--log-level', 'info');
    const vk = startVkProcess(t, args);
    t.after(async () => {
      await kubectl(['delete', 'node', name, '--wait=false'], { allowFailure: true });
    });
    const podName = (restartPolicy: string) => `lost-${restartPolicy.toLowerCase()}`;
    for (const restartPolicy of ['Never', 'Always'])
      await apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: podName(restartPolicy) },
        spec: podSpec(name, [{ name: 'c', image, command: ['sleep', '3600'] }], { restartPolicy }),
      });
    const never = await waitPhase(podName('Never'), 'Running');
    const always = await waitPhase(podName('Always'), 'Running');
    const firstAlways = (await targetPods(`${LABEL_UID}=${always.metadata!.uid}`))[0]!;

    await vk.kill9();
    for (const pod of [never, always])
      await target.kubectl(['-n', namespace, 'delete', 'pod', pod.metadata!.name!, '--grace-period=0', '--force', '--wait=true'], { allowFailure: true });
    assert.equal((await targetPods(`${LABEL_NODE}=${name}`)).length, 0);
    vk.start();

    const failed = await waitPhase(podName('Never'), 'Failed');
    assert.equal(failed.status?.reason, 'TargetPodDeleted');
    assert.match(failed.status?.message ?? '', /was deleted in the target cluster/);
    await waitFor('a TargetPodDeleted Event', async () =>
      (await podEvents(podName('Never'))).some((e) => e.reason === 'TargetPodDeleted' && e.type === 'Warning' && e.involvedObject?.uid === never.metadata?.uid),
    );
    // restartPolicy Always: created again, as a restart (a new target pod for the same source pod).
    const again = await waitFor('the Always pod created again in the target', async () => {
      const pods = await targetPods(`${LABEL_UID}=${always.metadata!.uid}`);
      return pods.find((p) => p.metadata?.uid !== firstAlways.metadata?.uid);
    });
    assert.ok(again);
    await waitPhase(podName('Always'), 'Running');
    // Several resyncs (5 s) later the Never pod still has no target pod.
    await new Promise((r) => setTimeout(r, 12_000));
    assert.equal((await targetPods(`${LABEL_UID}=${never.metadata!.uid}`)).length, 0, 'the Never pod was not created again');
    assert.equal((await sourcePod(podName('Never')))?.status?.phase, 'Failed');
    for (const restartPolicy of ['Never', 'Always']) await kubectl(['-n', namespace, 'delete', 'pod', podName(restartPolicy), '--wait=false']);
  },
);
