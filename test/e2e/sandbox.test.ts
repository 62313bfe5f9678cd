// The sandbox provider end to end: real pods (busybox from a real registry on loopback) in Linux
// namespaces on this machine, driven through the real control plane with real kubectl. Needs
// root, bubblewrap, catatonit, busybox-static, iproute2 and util-linux (.ci/run installs them).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { before, test } from 'node:test';
import type { Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { cgroupDirs, cgroupPids } from '../../src/providers/sandbox/cgroups.ts';
import { SandboxProvider } from '../../src/providers/sandbox/sandbox-provider.ts';
import { monitorSpecArg } from '../../src/providers/sandbox/shim-launcher.ts';
import type { PodRecordState } from '../../src/providers/sandbox/state.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { fileScope, kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { freePort } from '../harness/net.ts';
import { startNodeFor } from '../harness/virtual-node.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');
const scope = fileScope();
const skip = sandboxSkip;
let image = '';
let nodeName = '';
let dataDir = '';
let provider: SandboxProvider;

// A fast CrashLoopBackOff for the tests (the defaults, 10 s doubling to 5 min, are unit-tested).
const BACKOFF = { initialMs: 2000, maxMs: 8000, resetAfterMs: 600_000 };

before(async () => {
  if (skip) return;
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: '1.36' })).reference;
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'vk-sandbox-'));
  scope.after(() => rmSync(dataDir, { recursive: true, force: true }));
  nodeName = randomName('vk-sandbox');
  const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  provider = await SandboxProvider.open({ dataDir, crashLoopBackOff: BACKOFF }, { nodeName, nodeIP: '127.0.0.1', log });
  const vk = await startNodeFor(provider, nodeName, { kubeletApi: true, log });
  // Pods first (they hold processes), then the node.
  scope.after(async () => {
    for (const pod of await provider.listPods(call)) await provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
    await vk.stop();
  });
});

function podManifest(name: string, spec: Record<string, unknown>, node = nodeName): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { nodeName: node, automountServiceAccountToken: false, tolerations: [{ operator: 'Exists' }], terminationGracePeriodSeconds: 2, ...spec },
  });
}

async function apply(namespace: string, manifest: string): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: manifest });
}

async function getPod(namespace: string, name: string): Promise<Pod | undefined> {
  const result = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Pod) : undefined;
}

async function waitRunning(namespace: string, name: string, timeoutMs = 60_000): Promise<Pod> {
  return waitFor(
    `pod ${name} Running with all containers running`,
    async () => {
      const pod = await getPod(namespace, name);
      return pod?.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((c) => c.state?.running) ? pod : undefined;
    },
    { timeoutMs },
  );
}

function stateOf(dir: string, uid: string): PodRecordState {
  return JSON.parse(readFileSync(path.join(dir, 'pods', uid, 'pod.json'), 'utf8')) as PodRecordState;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a sleeping busybox pod runs as a real process in its own pid namespace; logs and exec work', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('sleeper', {
      containers: [
        {
          name: 'main',
          image,
          // $(POD_IP) is the kubelet's expansion (the pod's address), $(hostname) the shell's.
          command: ['sh', '-c', 'echo started as $(hostname) at $(POD_IP); exec sleep 3600'],
          env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
        },
      ],
    }),
  );
  const pod = await waitRunning(namespace, 'sleeper');
  assert.match(pod.status?.podIP ?? '', /^10\.215\./);
  // The downward API's status.podIP in env is the address the pod got, as the kubelet's is.
  const podIPEnv = await kubectl(['-n', namespace, 'exec', 'sleeper', '--', 'sh', '-c', 'echo $POD_IP']);
  assert.equal(podIPEnv.stdout, `${pod.status!.podIP}\n`);
  assert.equal(pod.status?.containerStatuses?.[0]?.ready, true);

  const state = stateOf(dataDir, pod.metadata!.uid!);
  const childPid = state.containers[0]!.running!.childPid!;
  assert.ok(alive(childPid), 'the container process runs on this machine');
  assert.notEqual(readlinkSync(`/proc/${childPid}/ns/pid`), readlinkSync('/proc/self/ns/pid'), 'in its own pid namespace');
  assert.notEqual(readlinkSync(`/proc/${childPid}/ns/net`), readlinkSync('/proc/self/ns/net'), 'in its own network namespace');

  const logs = await waitFor('the log line', async () => {
    const r = await kubectl(['-n', namespace, 'logs', 'sleeper'], { allowFailure: true });
    return r.stdout.includes('started as') ? r.stdout : undefined;
  });
  assert.equal(logs, `started as sleeper at ${pod.status!.podIP}\n`);
  const hostname = await kubectl(['-n', namespace, 'exec', 'sleeper', '--', 'cat', '/etc/hostname']);
  assert.equal(hostname.stdout, 'sleeper\n');
  const ps = await kubectl(['-n', namespace, 'exec', 'sleeper', '--', 'ps', '-o', 'pid,args']);
  assert.match(ps.stdout, /\n\s+2 sleep 3600\n/, 'the command is PID 2 of the container (bwrap reaps as PID 1)');
  const code = await kubectl(['-n', namespace, 'exec', 'sleeper', '--', 'sh', '-c', 'exit 7'], { allowFailure: true });
  assert.equal(code.code, 7);
});

test('kubectl logs -f follows the container until it exits; --timestamps and --tail work', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('counter', {
      restartPolicy: 'Never',
      containers: [{ name: 'c', image, command: ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 1; done'] }],
    }),
  );
  await waitFor(
    'counter started',
    async () =>
      (await getPod(namespace, 'counter'))?.status?.containerStatuses?.[0]?.state?.running !== undefined ||
      (await getPod(namespace, 'counter'))?.status?.phase === 'Succeeded',
  );
  const followed = await kubectl(['-n', namespace, 'logs', '-f', 'counter'], { timeoutMs: 60_000 });
  assert.equal(followed.stdout, 'line 1\nline 2\nline 3\n', 'everything, and the command ends with the container');
  const tail = await kubectl(['-n', namespace, 'logs', 'counter', '--tail=1', '--timestamps']);
  assert.match(tail.stdout, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z line 3\n$/);
});

test('two containers of a pod share localhost (busybox httpd + wget)', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('pair', {
      containers: [
        { name: 'web', image, command: ['sh', '-c', 'mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 8080 -h /www'] },
        { name: 'client', image, command: ['sleep', '3600'] },
      ],
    }),
  );
  await waitRunning(namespace, 'pair');
  const body = await waitFor('wget over localhost', async () => {
    const r = await kubectl(['-n', namespace, 'exec', 'pair', '-c', 'client', '--', 'wget', '-qO-', 'http://127.0.0.1:8080/'], { allowFailure: true });
    return r.code === 0 ? r.stdout : undefined;
  });
  assert.equal(body, 'hello from web\n');
});

test("a pod reaches another pod by its status.podIP, without the host's ip_forward", { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  const forwardingBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  await apply(
    namespace,
    podManifest('server', {
      containers: [
        { name: 'web', image, command: ['sh', '-c', 'mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www'] },
      ],
    }),
  );
  await apply(namespace, podManifest('client', { containers: [{ name: 'client', image, command: ['sleep', '3600'] }] }));
  const server = await waitRunning(namespace, 'server');
  await waitRunning(namespace, 'client');
  const serverIP = server.status?.podIP;
  assert.ok(serverIP && serverIP !== '127.0.0.1', `the server pod has its own IP: ${serverIP}`);
  const body = await waitFor('wget from one pod to the other', async () => {
    const r = await kubectl(['-n', namespace, 'exec', 'client', '--', 'wget', '-qO-', `http://${serverIP}:8080/`], { allowFailure: true });
    return r.code === 0 ? r.stdout : undefined;
  });
  assert.equal(body, 'hello from server\n');
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), forwardingBefore, 'the host-wide forwarding setting is left alone');
});

test('a crashing command reaches CrashLoopBackOff with a growing back-off', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(namespace, podManifest('crasher', { containers: [{ name: 'c', image, command: ['sh', '-c', 'echo crashing; exit 3'] }] }));
  const seen = new Set<string>();
  await waitFor(
    'back-off messages of 2s and then 4s',
    async () => {
      const status = (await getPod(namespace, 'crasher'))?.status?.containerStatuses?.[0];
      const waiting = status?.state?.waiting;
      if (waiting?.reason === 'CrashLoopBackOff') {
        const m = /back-off (\d+s) restarting failed container=c pod=crasher_/.exec(waiting.message ?? '');
        if (m) seen.add(m[1]!);
        assert.equal(status?.lastState?.terminated?.exitCode, 3);
        assert.equal(status?.lastState?.terminated?.reason, 'Error');
      }
      return seen.has('2s') && seen.has('4s');
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  const pod = await getPod(namespace, 'crasher');
  assert.ok((pod?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2);
  const previous = await kubectl(['-n', namespace, 'logs', 'crasher', '--previous']);
  assert.equal(previous.stdout, 'crashing\n');
});

test('a failing liveness probe restarts the container; a failing readiness probe keeps it unready', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('probed', {
      containers: [
        {
          name: 'live',
          image,
          command: ['sleep', '3600'],
          livenessProbe: { exec: { command: ['sh', '-c', 'exit 1'] }, periodSeconds: 1, failureThreshold: 2 },
        },
        {
          name: 'unready',
          image,
          command: ['sleep', '3600'],
          readinessProbe: { exec: { command: ['sh', '-c', 'echo probed >> /tmp/probes; exit 1'] }, periodSeconds: 1 },
        },
      ],
    }),
  );
  const restarted = await waitFor(
    'the liveness restart',
    async () => {
      const s = (await getPod(namespace, 'probed'))?.status?.containerStatuses?.find((c) => c.name === 'live');
      return (s?.restartCount ?? 0) >= 1 ? s : undefined;
    },
    { timeoutMs: 60_000 },
  );
  assert.equal(restarted.lastState?.terminated?.reason, 'Error');
  // The readiness probe has run several times (it leaves a line each run), and the pod is still not Ready.
  await waitFor('three readiness probes', async () => {
    const r = await kubectl(['-n', namespace, 'exec', 'probed', '-c', 'unready', '--', 'cat', '/tmp/probes'], { allowFailure: true });
    return r.stdout.split('\n').filter(Boolean).length >= 3;
  });
  const pod = await getPod(namespace, 'probed');
  const unready = pod?.status?.containerStatuses?.find((c) => c.name === 'unready');
  assert.equal(unready?.ready, false);
  assert.equal(unready?.restartCount, 0);
  assert.equal(pod?.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
});

test('kubectl port-forward reaches busybox httpd serving a configMap volume file', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await kubectl(['-n', namespace, 'create', 'configmap', 'site', '--from-literal=index.html=served from a configMap\n']);
  await apply(
    namespace,
    podManifest('site', {
      containers: [
        { name: 'httpd', image, command: ['httpd', '-f', '-p', '80', '-h', '/www'], volumeMounts: [{ name: 'site', mountPath: '/www', readOnly: true }] },
      ],
      volumes: [{ name: 'site', configMap: { name: 'site' } }],
    }),
  );
  await waitRunning(namespace, 'site');
  const child = spawn(process.env.VK_TEST_KUBECTL!, ['-n', namespace, 'port-forward', 'pod/site', ':80'], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
  });
  t.after(() => child.kill());
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 80/.exec(line);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`kubectl port-forward exited ${code}`)));
  });
  const get = () =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/index.html' }, (res) => {
          let data = '';
          res.on('data', (chunk) => (data += chunk));
          res.on('end', () => resolve(data));
        })
        .on('error', reject);
    });
  const body = await waitFor('the page through port-forward', () => get().catch(() => undefined), { timeoutMs: 30_000 });
  assert.equal(body, 'served from a configMap\n');
});

test('a configMap volume follows the ConfigMap in the running container; a subPath mount keeps the first contents', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await kubectl(['-n', namespace, 'create', 'configmap', 'live', '--from-literal=mode=first']);
  await apply(
    namespace,
    podManifest('follows', {
      containers: [
        {
          name: 'app',
          image,
          command: ['sleep', '3600'],
          volumeMounts: [
            { name: 'live', mountPath: '/etc/live', readOnly: true },
            { name: 'live', mountPath: '/etc/pinned-mode', subPath: 'mode', readOnly: true },
          ],
        },
      ],
      volumes: [{ name: 'live', configMap: { name: 'live' } }],
    }),
  );
  const running = await waitRunning(namespace, 'follows');
  const cat = async (file: string) => (await kubectl(['-n', namespace, 'exec', 'follows', '--', 'cat', file])).stdout;
  assert.equal(await cat('/etc/live/mode'), 'first');
  await kubectl(['-n', namespace, 'patch', 'configmap', 'live', '--type', 'merge', '-p', '{"data":{"mode":"second"}}']);
  await waitFor('the new contents inside the container', async () => (await cat('/etc/live/mode')) === 'second', { timeoutMs: 30_000 });
  // As with the kubelet: a subPath mount is a fixed copy, and the container was not restarted.
  assert.equal(await cat('/etc/pinned-mode'), 'first');
  const after = await getPod(namespace, 'follows');
  assert.equal(after?.status?.containerStatuses?.[0]?.restartCount, 0);
  assert.equal(after?.status?.containerStatuses?.[0]?.containerID, running.status?.containerStatuses?.[0]?.containerID);
});

test("exec -it gets a pseudo-terminal; attach -i reaches the container's stdin and output", { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('talk', { containers: [{ name: 'echo', image, stdin: true, command: ['sh', '-c', 'while read line; do echo "got: $line"; done'] }] }),
  );
  await waitRunning(namespace, 'talk');
  // util-linux `script` gives kubectl a terminal, so it asks for a TTY.
  const command = `${process.env.VK_TEST_KUBECTL!} -n ${namespace} exec -it talk -- sh -c 'test -t 0 && test -t 1 && echo is a tty; exit 5'`;
  const result = await new Promise<{ out: string; code: number | null }>((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, KUBECONFIG: kubeconfigPath(), TERM: 'xterm' } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => resolve({ out, code }));
  });
  assert.match(result.out, /is a tty\r\n/, 'a pty, with CRLF line ends');
  assert.equal(result.code, 5);

  const child = spawn(process.env.VK_TEST_KUBECTL!, ['-n', namespace, 'attach', '-i', 'talk', '-c', 'echo'], {
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
  });
  t.after(() => child.kill());
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  await waitFor(
    "the container's answer",
    () => {
      child.stdin.write('hello attach\n');
      return out.includes('got: hello attach');
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
});

test('security context: runAsUser, readOnlyRootFilesystem and capabilities apply to the container and to exec', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('secured', {
      containers: [
        { name: 'user', image, command: ['sleep', '3600'], securityContext: { runAsUser: 1000, runAsGroup: 1000, readOnlyRootFilesystem: true } },
        { name: 'caps', image, command: ['sleep', '3600'], securityContext: { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } } },
        { name: 'default', image, command: ['sleep', '3600'] },
      ],
    }),
  );
  await waitRunning(namespace, 'secured');
  const exec = (container: string, script: string) =>
    kubectl(['-n', namespace, 'exec', 'secured', '-c', container, '--', 'sh', '-c', script], { allowFailure: true });
  assert.equal((await exec('user', 'id -u; id -g')).stdout, '1000\n1000\n');
  const ro = await exec('user', 'touch /newfile');
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  assert.equal((await exec('user', 'echo tmp > /dev/shm/x && cat /dev/shm/x')).stdout, 'tmp\n', '/dev/shm stays writable');
  assert.equal((await exec('user', 'grep CapEff /proc/self/status')).stdout, 'CapEff:\t0000000000000000\n');
  assert.equal((await exec('caps', 'grep CapEff /proc/self/status')).stdout, 'CapEff:\t0000000000000400\n');
  assert.equal((await exec('default', 'grep CapEff /proc/self/status')).stdout, 'CapEff:\t00000000a80425fb\n', "containerd's default set");
});

test('init containers run in order; restartPolicy Never ends Succeeded or Failed; activeDeadlineSeconds fails the pod', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  const work = { volumeMounts: [{ name: 'work', mountPath: '/work' }] };
  await apply(
    namespace,
    podManifest('ordered', {
      restartPolicy: 'Never',
      initContainers: [
        { name: 'first', image, command: ['sh', '-c', 'echo one > /work/out'], ...work },
        { name: 'second', image, command: ['sh', '-c', 'echo two >> /work/out'], ...work },
      ],
      containers: [{ name: 'app', image, command: ['cat', '/work/out'], ...work }],
      volumes: [{ name: 'work', emptyDir: {} }],
    }),
  );
  await apply(namespace, podManifest('fails', { restartPolicy: 'Never', containers: [{ name: 'app', image, command: ['sh', '-c', 'echo bad; exit 4'] }] }));
  await apply(namespace, podManifest('deadline', { activeDeadlineSeconds: 2, containers: [{ name: 'app', image, command: ['sleep', '3600'] }] }));
  const ordered = await waitFor('ordered Succeeded', async () =>
    (await getPod(namespace, 'ordered'))?.status?.phase === 'Succeeded' ? getPod(namespace, 'ordered') : undefined,
  );
  assert.deepEqual(
    ordered?.status?.initContainerStatuses?.map((s) => s.state?.terminated?.reason),
    ['Completed', 'Completed'],
  );
  assert.equal((await kubectl(['-n', namespace, 'logs', 'ordered', '-c', 'app'])).stdout, 'one\ntwo\n', 'logs of a finished pod stay readable');
  const fails = await waitFor('fails Failed', async () =>
    (await getPod(namespace, 'fails'))?.status?.phase === 'Failed' ? getPod(namespace, 'fails') : undefined,
  );
  assert.equal(fails?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 4);
  const deadline = await waitFor(
    'deadline Failed',
    async () => ((await getPod(namespace, 'deadline'))?.status?.phase === 'Failed' ? getPod(namespace, 'deadline') : undefined),
    { timeoutMs: 60_000 },
  );
  assert.equal(deadline?.status?.reason, 'DeadlineExceeded');
});

test("an image that cannot be pulled ends as ErrImagePull/ImagePullBackOff with the registry's message", { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  const missing = image.replace(/library\/busybox:1\.36$/, 'library/missing:1.0');
  await apply(namespace, podManifest('nopull', { containers: [{ name: 'app', image: missing }] }));
  const waiting = await waitFor('ImagePullBackOff', async () => {
    const w = (await getPod(namespace, 'nopull'))?.status?.containerStatuses?.[0]?.state?.waiting;
    return w?.reason === 'ImagePullBackOff' ? w : undefined;
  });
  assert.match(waiting.message ?? '', /failed to pull image/);
  assert.equal((await getPod(namespace, 'nopull'))?.status?.phase, 'Pending');
});

test("stats come from the container's cgroup (or /proc of its processes)", { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(namespace, podManifest('busy', { containers: [{ name: 'spin', image, command: ['sh', '-c', 'while true; do :; done'] }] }));
  await waitRunning(namespace, 'busy');
  const cpu = await waitFor('CPU time and memory of the spinning container', async () => {
    const stats = (await provider.getStats()).find((p) => p.namespace === namespace && p.name === 'busy')?.containers[0];
    return stats && (stats.cpuUsageCoreNanoSeconds ?? 0) > 100_000_000 && (stats.memoryWorkingSetBytes ?? 0) > 0 && stats.cpuUsageNanoCores !== undefined
      ? stats
      : undefined;
  });
  assert.ok((cpu.cpuUsageNanoCores ?? 0) > 0, "a spinning shell uses CPU (how much depends on the machine's load)");
});

/** The node's SandboxResourceLimits condition as the API server has it. */
async function limitsCondition(): Promise<{ status: string; reason?: string; message?: string }> {
  return waitFor("the node's SandboxResourceLimits condition", async () => {
    const node = JSON.parse((await kubectl(['get', 'node', nodeName, '-o', 'json'])).stdout) as {
      status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
    };
    return node.status?.conditions?.find((c) => c.type === 'SandboxResourceLimits');
  });
}

test(
  'memory limits: a container past limits.memory is OOMKilled (137), then restarts into CrashLoopBackOff, or fails the pod with restartPolicy Never',
  { skip },
  async (t) => {
    const condition = await limitsCondition();
    if (!provider.cgroups.cgroups) {
      assert.equal(condition.status, 'False', 'no cgroups: the node says limits are not enforced');
      t.skip(`no usable cgroups on this machine: ${condition.message ?? ''}`);
      return;
    }
    assert.equal(condition.status, 'True');
    assert.match(condition.reason ?? '', /^CgroupV[12]$/);
    assert.match(condition.message ?? '', /memory limits .* are enforced/);
    const namespace = await newNamespace(t, 'vk-sbx');
    // Doubling a shell variable: 16 MiB of string becomes 32 MiB (plus the copy) within a second.
    const hog = { name: 'hog', image, command: ['sh', '-c', 'echo filling; x=a; while true; do x=$x$x; done'], resources: { limits: { memory: '32Mi' } } };
    await apply(namespace, podManifest('oom-always', { containers: [hog] }));
    await apply(namespace, podManifest('oom-never', { restartPolicy: 'Never', containers: [hog] }));
    // Pod-level resources (beta, on by default since 1.34): the pod's cgroup holds the limit, the container has none.
    const { resources: _unlimited, ...podLevelHog } = hog;
    await apply(namespace, podManifest('oom-pod-level', { restartPolicy: 'Never', resources: { limits: { memory: '32Mi' } }, containers: [podLevelHog] }));
    const seen = new Set<string>();
    const restarted = await waitFor(
      'oom-always restarted after OOM kills, in CrashLoopBackOff',
      async () => {
        const status = (await getPod(namespace, 'oom-always'))?.status?.containerStatuses?.[0];
        if (status?.state?.waiting?.reason) seen.add(status.state.waiting.reason);
        return (status?.restartCount ?? 0) >= 2 && seen.has('CrashLoopBackOff') ? status : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 200 },
    );
    assert.equal(restarted?.lastState?.terminated?.reason, 'OOMKilled');
    assert.equal(restarted?.lastState?.terminated?.exitCode, 137);
    const failed = await waitFor('oom-never Failed', async () => {
      const pod = await getPod(namespace, 'oom-never');
      return pod?.status?.phase === 'Failed' ? pod : undefined;
    });
    const terminated = failed.status?.containerStatuses?.[0]?.state?.terminated;
    assert.equal(terminated?.reason, 'OOMKilled');
    assert.equal(terminated?.exitCode, 137);
    assert.equal((await kubectl(['-n', namespace, 'logs', 'oom-never'])).stdout, 'filling\n');
    const podLevel = await waitFor('oom-pod-level Failed', async () => {
      const pod = await getPod(namespace, 'oom-pod-level');
      return pod?.status?.phase === 'Failed' ? pod : undefined;
    });
    assert.equal(podLevel.spec?.containers[0]?.resources?.limits, undefined, 'the container itself has no limit');
    assert.deepEqual(
      podLevel.status?.containerStatuses?.[0]?.state?.terminated && {
        reason: podLevel.status.containerStatuses[0].state.terminated.reason,
        exitCode: podLevel.status.containerStatuses[0].state.terminated.exitCode,
      },
      { reason: 'OOMKilled', exitCode: 137 },
    );
  },
);

test('CPU limits: a busy loop under limits.cpu 100m gets about a tenth of a core', { skip }, async (t) => {
  if (!provider.cgroups.cgroups) {
    t.skip(`no usable cgroups on this machine: ${provider.cgroups.message}`);
    return;
  }
  const namespace = await newNamespace(t, 'vk-sbx');
  await apply(
    namespace,
    podManifest('throttled', {
      containers: [{ name: 'spin', image, command: ['sh', '-c', 'while true; do :; done'], resources: { limits: { cpu: '100m', memory: '64Mi' } } }],
    }),
  );
  const pod = await waitRunning(namespace, 'throttled');
  const cgroup = stateOf(dataDir, pod.metadata!.uid!).containers[0]!.running!.cgroup!;
  const quota =
    cgroup.version === 1
      ? readFileSync(path.join(cgroup.cpu, 'cpu.cfs_quota_us'), 'utf8').trim()
      : readFileSync(path.join(cgroup.cpu, 'cpu.max'), 'utf8').trim().split(' ')[0];
  assert.equal(quota, '10000', '10 ms per 100 ms period');
  const childPid = stateOf(dataDir, pod.metadata!.uid!).containers[0]!.running!.childPid!;
  assert.ok(cgroupPids(cgroup.memory).includes(childPid), "the container's processes are in its cgroup");
  // CPU time as /stats/summary reports it (from the cgroup), over at least 4 s.
  const sample = async () => {
    const stats = (await provider.getStats()).find((p) => p.uid === pod.metadata!.uid)?.containers[0];
    return { at: process.hrtime.bigint(), ns: stats?.cpuUsageCoreNanoSeconds ?? 0 };
  };
  const first = await sample();
  const second = await waitFor(
    '4 s of CPU use',
    async () => {
      const s = await sample();
      return s.at - first.at >= 4_000_000_000n ? s : undefined;
    },
    { intervalMs: 500 },
  );
  const cores = (second.ns - first.ns) / Number(second.at - first.at);
  t.diagnostic(`CPU use under limits.cpu 100m: ${cores.toFixed(3)} cores`);
  assert.ok(cores > 0.01, `the loop runs (${cores.toFixed(3)} cores)`);
  assert.ok(cores < 0.3, `throttled to about 0.1 cores (${cores.toFixed(3)} cores)`);
});

function startVk(args: string[], logFile: string): ChildProcess {
  const child = spawn(process.execPath, [VK, 'run', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const chunks: Buffer[] = [];
  child.stderr!.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.on('exit', () => {
    try {
      writeFileSync(logFile, Buffer.concat(chunks));
    } catch {
      // the test's directory is gone already
    }
  });
  return child;
}

/** Processes whose command line mentions `text`. */
function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

test('kill -9 of the virtual kubelet, then a restart adopts the running pods; deleting them leaves nothing behind', { skip }, async (t) => {
  const namespace = await newNamespace(t, 'vk-sbx');
  const node = randomName('vk-sbx-restart');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-sbx-restart-'));
  const data = path.join(dir, 'data');
  // No egress: the node would turn on forwarding on this machine's uplink for it.
  writeFileSync(path.join(dir, 'sandbox.yaml'), `dataDir: ${data}\nnetwork:\n  egress: false\n`);
  const args = [
    '--kubeconfig',
    kubeconfigPath(),
    '--node-name',
    node,
    '--node-ip',
    '127.0.0.1',
    '--kubelet-port',
    String(await freePort('127.0.0.1')),
    '--provider',
    'sandbox',
    '--provider-config',
    path.join(dir, 'sandbox.yaml'),
    '--lease-renew-interval',
    '1s',
    '--resync-interval',
    '5s',
    '--log-level',
    'info',
  ];
  let vk = startVk(args, path.join(dir, 'vk-1.log'));
  t.after(async () => {
    if (vk.exitCode === null && vk.signalCode === null) {
      // A graceful stop: the node removes its nftables table (a killed one would leave it).
      const exited = new Promise((resolve) => vk.once('exit', resolve));
      vk.kill('SIGTERM');
      const timer = setTimeout(() => vk.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await kubectl(['delete', 'node', node, '--wait=false'], { allowFailure: true });
    if ((t as { passed?: boolean }).passed !== false) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`sandbox restart test: logs kept in ${dir}\n`);
  });
  await apply(
    namespace,
    podManifest('survivor', { containers: [{ name: 'c', image, command: ['sh', '-c', 'while true; do echo tick; sleep 1; done'] }] }, node),
  );
  await apply(namespace, podManifest('web', { containers: [{ name: 'httpd', image, command: ['httpd', '-f', '-p', '80', '-h', '/'] }] }, node));
  const before = await waitRunning(namespace, 'survivor', 90_000);
  await waitRunning(namespace, 'web');
  const uid = before.metadata!.uid!;
  const running = stateOf(data, uid).containers[0]!.running!;
  const hostLink = stateOf(data, uid).sandbox!.network!.hostLink;
  const linkExists = () => readdirSync('/sys/class/net').includes(hostLink);
  assert.ok(linkExists(), "the host end of the pod's veth pair");

  vk.kill('SIGKILL');
  await new Promise((resolve) => vk.once('exit', resolve));
  assert.ok(alive(running.childPid!), 'the container outlives the virtual kubelet');

  vk = startVk(args, path.join(dir, 'vk-2.log'));
  // Back in charge: the pod answers exec again, with the same container (no restart, no copy).
  await waitFor(
    'exec through the restarted node',
    async () => (await kubectl(['-n', namespace, 'exec', 'survivor', '--', 'true'], { allowFailure: true })).code === 0,
    { timeoutMs: 60_000 },
  );
  const after = await getPod(namespace, 'survivor');
  assert.equal(after?.metadata?.uid, uid);
  assert.equal(after?.status?.containerStatuses?.[0]?.restartCount, 0);
  assert.equal(after?.status?.containerStatuses?.[0]?.containerID, running.containerID);
  assert.equal(stateOf(data, uid).containers[0]!.running!.childPid, running.childPid, 'adopted, not started again');
  assert.equal(
    processesMentioning(path.join(data, 'pods', uid, 'containers')).filter((pid) => monitorSpecArg(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')))
      .length,
    1,
    'one monitor for the one container',
  );
  const logs = await kubectl(['-n', namespace, 'logs', 'survivor', '--tail=1']);
  assert.equal(logs.stdout, 'tick\n');
  // The pods' cgroups (when the machine has them) were found again by their recorded paths.
  const webUid = (await getPod(namespace, 'web'))!.metadata!.uid!;
  const cgroups = [stateOf(data, uid).cgroup, stateOf(data, webUid).cgroup].filter((c) => c !== undefined).flatMap((c) => cgroupDirs(c));
  assert.equal(cgroups.length > 0, provider.cgroups.cgroups !== undefined, 'pods have cgroups when the machine offers them');
  const containerCgroup = stateOf(data, uid).containers[0]!.running!.cgroup;
  if (containerCgroup) assert.ok(cgroupPids(containerCgroup.memory).includes(running.childPid!), 'the adopted container is still in its cgroup');

  await kubectl(['-n', namespace, 'delete', 'pod', 'survivor', 'web', '--wait=true', '--timeout=60s']);
  await waitFor('no process, mount, link or cgroup of the pods left', () => {
    const procs = processesMentioning(data);
    const mounts = readFileSync('/proc/self/mounts', 'utf8').includes(data);
    return procs.length === 0 && !mounts && !alive(running.childPid!) && !linkExists() && cgroups.every((d) => !existsSync(d));
  });
});

test(
  "a private image pulls with the pod's imagePullSecret; without it the pod ends in ErrImagePull/ImagePullBackOff with the registry's auth message",
  { skip },
  async (t) => {
    const namespace = await newNamespace(t, 'vk-sbx');
    const privateRegistry = await startTestRegistry({ auth: { type: 'basic', users: { puller: 'pull-secret-pw' } } });
    t.after(() => privateRegistry.stop());
    const privateImage = (await privateRegistry.pushImage('team/private-busybox', await buildBusyboxImage(), { tag: '1.0' })).reference;
    await kubectl([
      '-n',
      namespace,
      'create',
      'secret',
      'docker-registry',
      'regcred',
      `--docker-server=${privateRegistry.host}`,
      '--docker-username=puller',
      '--docker-password=pull-secret-pw',
    ]);

    // Without the secret first, so the image is not on the node yet; `Always` keeps it from using
    // the copy the other pod pulls later (each pull asks the registry, with this pod's credentials).
    await apply(
      namespace,
      podManifest('anonymous', { containers: [{ name: 'app', image: privateImage, imagePullPolicy: 'Always', command: ['sleep', '3600'] }] }),
    );
    const refused = await waitFor('the anonymous pull refused', async () => {
      const w = (await getPod(namespace, 'anonymous'))?.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff' ? w : undefined;
    });
    assert.match(refused.message ?? '', /UNAUTHORIZED|authentication required/);
    assert.match(refused.message ?? '', new RegExp(privateImage.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

    await apply(
      namespace,
      podManifest('authorized', { imagePullSecrets: [{ name: 'regcred' }], containers: [{ name: 'app', image: privateImage, command: ['sleep', '3600'] }] }),
    );
    const running = await waitRunning(namespace, 'authorized');
    assert.equal(running.status?.containerStatuses?.[0]?.ready, true);

    // The image is on the node now, and the pod without credentials still may not have it.
    const anonymous = await getPod(namespace, 'anonymous');
    assert.equal(anonymous?.status?.phase, 'Pending');
    const stillRefused = anonymous?.status?.containerStatuses?.[0]?.state?.waiting;
    assert.match(stillRefused?.reason ?? '', /^(ErrImagePull|ImagePullBackOff)$/);
    assert.match(stillRefused?.message ?? '', /UNAUTHORIZED|authentication required/);
  },
);
