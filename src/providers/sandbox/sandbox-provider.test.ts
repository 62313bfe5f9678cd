// The sandbox runtime on this machine, without a control plane: pods from a local busybox root
// filesystem (config.localImages). Needs root and the runtime's tools; skipped otherwise.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { hasCode, NotFoundError, PodRejectedError } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import type { ResolvedPod } from '../provider.ts';
import { parseSandboxConfig } from './config.ts';
import { cgroupDirs } from './cgroups.ts';
import { isAlive } from './procfs.ts';
import { startPause, type PauseProcess } from './pause.ts';
import { podDir, type PodRecordState } from './state.ts';
import { sandboxBackendPods } from './backend-view.ts';
import { readPodStarts } from './start-log.ts';
import { checkHost, SandboxProvider } from './sandbox-provider.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import { busyboxRootfs } from '../../../test/fixtures/busybox-rootfs.ts';
import { context, fakeSource } from '../../../test/fixtures/fake-source.ts';
import { resolvePod } from '../../resolve/resolve-pod.ts';

/** A provider in a process of its own (to kill -9). */
const PROVIDER_PROCESS = path.join(import.meta.dirname, '../../../test/fixtures/sandbox-provider-process.ts');

let skip: string | false = false;
try {
  await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
} catch (err) {
  skip = (err as Error).message;
}

let dir = '';
let rootfs = '';
let provider: SandboxProvider;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'sbx-unit-'));
  rootfs = busyboxRootfs(dir);
  provider = await SandboxProvider.open(
    { dataDir: path.join(dir, 'data'), localImages: { busybox: rootfs }, crashLoopBackOff: { initialMs: 500, maxMs: 1000 } },
    { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger },
  );
});

after(async () => {
  if (skip) return;
  for (const pod of await provider.listPods(call)) await provider.deletePod(pod, deleted).catch(() => undefined);
  await provider.close();
  rmSync(dir, { recursive: true, force: true });
});

const call = { signal: new AbortController().signal };
const deleted = { ...call, reason: 'deleted' as const };
const finished = { ...call, reason: 'finished' as const };

/** What the provider saved for the pod (the record a restarted provider adopts from). */
function saved(r: ResolvedPod, dataDir = path.join(dir, 'data')): { dir: string; state: PodRecordState } {
  const podPath = podDir(dataDir, r.pod.metadata!.uid!);
  return { dir: podPath, state: JSON.parse(readFileSync(path.join(podPath, 'pod.json'), 'utf8')) as PodRecordState };
}

let counter = 0;
function pod(spec: Record<string, unknown>): ResolvedPod {
  counter++;
  return {
    pod: {
      metadata: { name: `p${counter}`, namespace: 'unit', uid: `uid-${counter}-${Date.now()}` },
      spec: { terminationGracePeriodSeconds: 5, ...spec } as Pod['spec'],
    },
    volumes: new Map(),
  };
}

async function status(r: ResolvedPod) {
  return (await provider.getPodStatus('unit', r.pod.metadata!.name!, call))!;
}

async function exec(r: ResolvedPod, container: string, command: string[]): Promise<{ code: number; out: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const code = await provider.runInContainer('unit', r.pod.metadata!.name!, container, command, {
    stdout: out,
    stderr: out,
    tty: false,
    signal: new AbortController().signal,
  });
  return { code, out: text };
}

async function running(r: ResolvedPod) {
  return waitFor('all containers running', async () => {
    const s = await status(r);
    return s.containerStatuses?.every((c) => c.state?.running) ? s : undefined;
  });
}

test('deletion sends SIGTERM, runs preStop first, and SIGKILLs after the grace period', { skip }, async () => {
  const polite = pod({
    volumes: [{ name: 'out', hostPath: { path: dir } }],
    containers: [
      {
        name: 'c',
        image: 'busybox',
        command: ['sh', '-c', 'trap "echo got TERM >> /out/stop.log; exit 0" TERM; while true; do sleep 0.1; done'],
        volumeMounts: [{ name: 'out', mountPath: '/out' }],
        lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo preStop >> /out/stop.log'] } } },
      },
    ],
  });
  const stubborn = pod({
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] }],
  });
  await provider.createPod(polite, call);
  await provider.createPod(stubborn, call);
  await running(polite);
  await running(stubborn);
  const pause = saved(polite).state.sandbox!.pause;
  let started = Date.now();
  await provider.deletePod(polite.pod, deleted);
  assert.ok(Date.now() - started < 4000, 'a container that exits on SIGTERM stops at once');
  assert.ok(!isAlive(pause.pid, pause.startTicks), 'the sandbox is gone');
  assert.equal(readFileSync(path.join(dir, 'stop.log'), 'utf8'), 'preStop\ngot TERM\n');
  started = Date.now();
  await provider.deletePod(stubborn.pod, deleted);
  const took = Date.now() - started;
  assert.ok(took >= 900 && took < 5000, `SIGKILL after the 1 s grace period (took ${took} ms)`);
  assert.equal(await provider.getPod('unit', stubborn.pod.metadata!.name!, call), undefined);
});

test('restartPolicy OnFailure: a success ends the pod Succeeded; its logs stay readable after release', { skip }, async () => {
  const r = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'echo done'] }] });
  await provider.createPod(r, call);
  await waitFor('Succeeded', async () => (await status(r)).phase === 'Succeeded');
  await provider.deletePod(r.pod, finished); // the core releases finished pods
  const found = await provider.getPod('unit', r.pod.metadata!.name!, call);
  assert.equal(found?.status?.phase, 'Succeeded');
  let text = '';
  for await (const chunk of await provider.getContainerLogs('unit', r.pod.metadata!.name!, 'c', {
    follow: false,
    previous: false,
    timestamps: false,
    signal: new AbortController().signal,
  }))
    text += chunk;
  assert.equal(text, 'done\n');
  await provider.deletePod(found!, deleted); // the API object is gone: the logs go too
  assert.equal(await provider.getPod('unit', r.pod.metadata!.name!, call), undefined);
});

test('a startup probe gates readiness; a failing postStart hook kills the container; an unknown command is a StartError', { skip }, async () => {
  const r = pod({
    containers: [
      {
        name: 'slow',
        image: 'busybox',
        command: ['sh', '-c', 'sleep 1; touch /tmp/up; sleep 3600'],
        startupProbe: { exec: { command: ['test', '-f', '/tmp/up'] }, periodSeconds: 1, failureThreshold: 30 },
      },
      { name: 'hooked', image: 'busybox', command: ['sleep', '3600'], lifecycle: { postStart: { exec: { command: ['false'] } } } },
      { name: 'nocmd', image: 'busybox', command: ['/no/such/binary'] },
    ],
  });
  await provider.createPod(r, call);
  const early = await waitFor('slow running', async () => (await status(r)).containerStatuses?.find((c) => c.name === 'slow' && c.state?.running));
  assert.equal(early.started, false);
  assert.equal(early.ready, false);
  await waitFor('slow started and ready', async () => (await status(r)).containerStatuses?.find((c) => c.name === 'slow' && c.started && c.ready));
  const hooked = await waitFor('hooked restarted', async () => (await status(r)).containerStatuses?.find((c) => c.name === 'hooked' && c.restartCount >= 1));
  assert.ok(hooked);
  const nocmd = await waitFor('nocmd terminated once', async () => {
    const c = (await status(r)).containerStatuses?.find((x) => x.name === 'nocmd');
    return c?.lastState?.terminated ?? (c?.state?.terminated?.reason === 'StartError' ? c.state.terminated : undefined);
  });
  assert.equal(nocmd.reason, 'StartError');
  assert.match(nocmd.message ?? '', /\/no\/such\/binary/);
  await provider.deletePod(r.pod, deleted);
});

test('shareProcessNamespace: containers see each other; exec runs in the container with its environment', { skip }, async () => {
  const r = pod({
    shareProcessNamespace: true,
    containers: [
      { name: 'a', image: 'busybox', command: ['sleep', '3601'], env: [{ name: 'GREETING', value: 'hi' }] },
      { name: 'b', image: 'busybox', command: ['sleep', '3602'] },
    ],
  });
  await provider.createPod(r, call);
  await running(r);
  const ps = await exec(r, 'a', ['ps', '-o', 'args']);
  assert.match(ps.out, /sleep 3601/);
  assert.match(ps.out, /sleep 3602/);
  assert.equal((await exec(r, 'a', ['sh', '-c', 'echo $GREETING $HOSTNAME'])).out, `hi ${r.pod.metadata!.name}\n`);
  assert.equal((await exec(r, 'b', ['sh', '-c', 'exit 9'])).code, 9);
  await provider.deletePod(r.pod, deleted);
});

test('a changed image restarts the container; a restarted provider adopts the pod', { skip }, async () => {
  const r = pod({
    containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
    volumes: [{ name: 'cfg', configMap: { name: 'x' } }],
  });
  r.volumes.set('cfg', { name: 'cfg', type: 'files', source: 'configMap', files: [{ path: 'a', content: Buffer.from('from the volume\n'), mode: 0o644 }] });
  await provider.createPod(r, call);
  await running(r);
  const before = saved(r).state.containers[0]!.running!;
  // Adoption: a second provider on the same data directory takes the pod over as it runs.
  await provider.close();
  provider = await SandboxProvider.open(
    {
      dataDir: path.join(dir, 'data'),
      localImages: { busybox: path.join(dir, 'busybox'), 'busybox:v2': path.join(dir, 'busybox') },
      crashLoopBackOff: { initialMs: 500, maxMs: 1000 },
    },
    { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger },
  );
  const adopted = saved(r).state.containers[0]!.running!;
  assert.equal(adopted.childPid, before.childPid);
  assert.equal((await exec(r, 'c', ['true'])).code, 0);
  // The new run after adoption still mounts the pod's volumes (written before the restart).
  const updated: ResolvedPod = {
    pod: { ...r.pod, spec: { ...r.pod.spec!, containers: [{ ...r.pod.spec!.containers[0]!, image: 'busybox:v2' }] } },
    volumes: new Map(),
  };
  await provider.updatePod(updated, call);
  const s = await waitFor('restarted with the new image', async () =>
    (await status(r)).containerStatuses?.find((c) => c.restartCount === 1 && c.state?.running),
  );
  assert.equal(s.image, 'busybox:v2');
  assert.equal((await exec(r, 'c', ['cat', '/cfg/a'])).out, 'from the volume\n');
  await provider.deletePod(r.pod, deleted);
});

test("hostNetwork: the containers use the host's network namespace and the node's address", { skip }, async () => {
  const r = pod({ hostNetwork: true, containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
  await provider.createPod(r, call);
  const s = await running(r);
  assert.equal(s.podIP, '127.0.0.1');
  const childPid = saved(r).state.containers[0]!.running!.childPid!;
  assert.equal(readlinkSync(`/proc/${childPid}/ns/net`), readlinkSync('/proc/self/ns/net'));
  assert.notEqual(readlinkSync(`/proc/${childPid}/ns/uts`), readlinkSync('/proc/self/ns/uts'), 'its own hostname still');
  await provider.deletePod(r.pod, deleted);
});

test("status.podIP env and the $(VAR)s that use it get the pod's address at container start, as the kubelet's", { skip }, async () => {
  for (const hostNetwork of [false, true]) {
    const spec = {
      hostNetwork,
      containers: [
        {
          name: 'c',
          image: 'busybox',
          command: ['sh', '-c', 'echo "$(POD_IP) $(ADDR)" > /tmp/at-start; exec sleep 3600'],
          env: [
            { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'ADDR', value: '$(POD_IP):8080' },
          ],
        },
      ],
    };
    // As the core hands it over: resolved before the pod has an address.
    const source = pod(spec);
    const resolved = await resolvePod(source.pod, fakeSource(), { ...context, podIP: undefined, podIPs: undefined });
    await provider.createPod(resolved, call);
    const s = await running(resolved);
    assert.ok(s.podIP, 'an address');
    assert.equal((await exec(resolved, 'c', ['cat', '/tmp/at-start'])).out, `${s.podIP} ${s.podIP}:8080\n`, `command (hostNetwork ${hostNetwork})`);
    assert.equal((await exec(resolved, 'c', ['sh', '-c', 'echo $POD_IP $ADDR'])).out, `${s.podIP} ${s.podIP}:8080\n`, `env (hostNetwork ${hostNetwork})`);
    if (!hostNetwork) {
      // A restarted provider adopts the pod; the container's next run still gets the address.
      await provider.close();
      provider = await SandboxProvider.open(
        { dataDir: path.join(dir, 'data'), localImages: { busybox: rootfs }, crashLoopBackOff: { initialMs: 500, maxMs: 1000 } },
        { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger },
      );
      process.kill(saved(resolved).state.containers[0]!.running!.childPid!, 'SIGKILL');
      await waitFor('the container running again', async () => {
        const again = await status(resolved);
        return again.containerStatuses?.[0]?.restartCount === 1 && again.containerStatuses[0].state?.running ? again : undefined;
      });
      assert.equal((await exec(resolved, 'c', ['cat', '/tmp/at-start'])).out, `${s.podIP} ${s.podIP}:8080\n`, 'the run after adoption');
    }
    await provider.deletePod(resolved.pod, deleted);
  }
});

test('a container run the saved state does not know (a crash mid-start) is killed on adoption, then started properly', { skip }, async () => {
  const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
  await provider.createPod(r, call);
  await running(r);
  const sandbox = saved(r);
  const stray = sandbox.state.containers[0]!.running!;
  await provider.close();
  // As if the provider had died before recording the run.
  const file = path.join(sandbox.dir, 'pod.json');
  const state = JSON.parse(readFileSync(file, 'utf8')) as { containers: { running?: unknown; waiting?: unknown }[] };
  delete state.containers[0]!.running;
  state.containers[0]!.waiting = { reason: 'ContainerCreating' };
  writeFileSync(file, JSON.stringify(state));
  provider = await SandboxProvider.open(
    { dataDir: path.join(dir, 'data'), localImages: { busybox: path.join(dir, 'busybox') }, crashLoopBackOff: { initialMs: 500, maxMs: 1000 } },
    { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger },
  );
  await waitFor('the stray run gone', async () => !isAlive(stray.shimPid, stray.shimStart) && !isAlive(stray.childPid, stray.childStart));
  const s = await running(r);
  assert.notEqual(s.containerStatuses?.[0]?.containerID, undefined);
  assert.notEqual(saved(r).state.containers[0]!.running!.childPid, stray.childPid);
  await provider.deletePod(r.pod, deleted);
});

test('cgroups: a container past its memory limit ends OOMKilled (137); exec joins its cgroup; deletion removes the cgroups', { skip }, async (t) => {
  const condition = provider.nodeConfig().conditions?.find((c) => c.type === 'SandboxResourceLimits');
  if (!provider.cgroups.cgroups) {
    assert.equal(condition?.status, 'False');
    t.skip(`no usable cgroups here: ${provider.cgroups.message}`);
    return;
  }
  assert.equal(condition?.status, 'True');
  assert.match(condition?.reason ?? '', /^CgroupV[12]$/);
  const r = pod({
    restartPolicy: 'Never',
    containers: [
      { name: 'hog', image: 'busybox', command: ['sh', '-c', 'x=a; while true; do x=$x$x; done'], resources: { limits: { memory: '32Mi' } } },
      { name: 'idle', image: 'busybox', command: ['sleep', '3600'], resources: { limits: { memory: '64Mi', cpu: '100m' } } },
    ],
  });
  await provider.createPod(r, call);
  const hog = await waitFor('hog OOMKilled', async () => (await status(r)).containerStatuses?.find((c) => c.name === 'hog')?.state?.terminated);
  assert.equal(hog.reason, 'OOMKilled');
  assert.equal(hog.exitCode, 137);
  await waitFor('idle running', async () => (await status(r)).containerStatuses?.find((c) => c.name === 'idle')?.state?.running);
  const sandbox = saved(r);
  const idle = sandbox.state.containers.find((c) => c.name === 'idle')!.running!;
  assert.ok(idle.cgroup, 'the run has a cgroup');
  const sub = (await exec(r, 'idle', ['cat', '/proc/self/cgroup'])).out;
  assert.ok(sub.includes(`/${r.pod.metadata!.uid}/idle`), `exec runs in the container's cgroup: ${sub}`);
  const stats = (await provider.getStats()).find((p) => p.uid === r.pod.metadata!.uid)!.containers.find((c) => c.name === 'idle')!;
  assert.ok((stats.memoryWorkingSetBytes ?? 0) > 0 && (stats.memoryWorkingSetBytes ?? 0) < 64 * 1024 * 1024);
  const dirs = cgroupDirs(sandbox.state.cgroup!);
  assert.ok(dirs.every((d) => existsSync(d)));
  await provider.deletePod(r.pod, deleted);
  assert.deepEqual(
    dirs.filter((d) => existsSync(d)),
    [],
    'no cgroup left behind',
  );
});

test('contract: an aborted call rejects and makes nothing; an unmappable volume mount is rejected; an aborted deletion goes on', { skip }, async () => {
  const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
  await assert.rejects(provider.createPod(r, { signal: AbortSignal.abort() }), (err: unknown) => hasCode(err, 'VK_ABORTED'));
  assert.equal(await provider.getPod('unit', r.pod.metadata!.name!, call), undefined, 'nothing was created');
  await assert.rejects(provider.deletePod(r.pod, deleted), NotFoundError);
  const claim = pod({
    volumes: [{ name: 'claim', persistentVolumeClaim: { claimName: 'data' } }],
    containers: [{ name: 'c', image: 'busybox', command: ['true'], volumeMounts: [{ name: 'claim', mountPath: '/data' }] }],
  });
  await assert.rejects(
    provider.createPod(claim, call),
    (err: unknown) => err instanceof PodRejectedError && err.reason === 'UnsupportedVolume' && /"claim"/.test(err.message),
  );
  assert.equal(await provider.getPod('unit', claim.pod.metadata!.name!, call), undefined);

  const stubborn = pod({
    terminationGracePeriodSeconds: 2,
    containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] }],
  });
  await provider.createPod(stubborn, call);
  await running(stubborn);
  const abort = new AbortController();
  const deleting = provider.deletePod(stubborn.pod, { signal: abort.signal, reason: 'deleted' });
  abort.abort();
  await assert.rejects(deleting, (err: unknown) => hasCode(err, 'VK_ABORTED'));
  // The pod stays deletable: a second call waits for the deletion in progress.
  await provider.deletePod(stubborn.pod, deleted);
  assert.equal(await provider.getPod('unit', stubborn.pod.metadata!.name!, call), undefined);
});

test(
  'createPod: its record and start-log line are on disk before it returns; a provider restarted on the data adopts the pod instead of starting it again',
  { skip },
  async () => {
    const data = path.join(dir, 'start-log-data');
    const createLog = path.join(dir, 'starts.jsonl');
    const config = { dataDir: data, localImages: { busybox: rootfs }, createLog, network: { services: false, egress: false } };
    const context = { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger };
    const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
    const uid = r.pod.metadata!.uid!;
    const first = await SandboxProvider.open(config, context);
    await first.createPod(r, call);
    // A kill -9 right now must not make a restarted provider start the pod a second time.
    assert.ok(existsSync(path.join(podDir(data, uid), 'pod.json')), 'the record is saved before createPod returns');
    assert.deepEqual(
      readPodStarts(createLog).map((s) => s.uid),
      [uid],
    );
    await first.createPod(r, call);
    await waitFor('the pod running on the machine', () => sandboxBackendPods(data).find((p) => p.uid === uid && p.phase === 'Running'), { timeoutMs: 30_000 });
    await first.close();

    const second = await SandboxProvider.open(config, context);
    try {
      await second.createPod(r, call);
      assert.deepEqual(
        readPodStarts(createLog).map((s) => s.uid),
        [uid],
        'started once',
      );
      assert.deepEqual(
        sandboxBackendPods(data).map((p) => [p.uid, p.name, p.phase]),
        [[uid, r.pod.metadata!.name, 'Running']],
      );
      await second.deletePod(r.pod, deleted);
      assert.deepEqual(sandboxBackendPods(data), [], 'no record, process or cgroup left');
    } finally {
      await second.close();
    }
  },
);

test('a deletion cut short by a kill -9 of the provider goes on after its restart: the pod is not started again', { skip }, async () => {
  const data = path.join(dir, 'interrupted-deletion-data');
  const config = { dataDir: data, localImages: { busybox: rootfs }, network: { services: false, egress: false } };
  const context = { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger };
  const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
  const uid = r.pod.metadata!.uid!;
  const first = await SandboxProvider.open(config, context);
  await first.createPod(r, call);
  await waitFor('the pod running on the machine', () => sandboxBackendPods(data).find((p) => p.uid === uid && p.phase === 'Running'), { timeoutMs: 30_000 });
  await first.close();
  // Where a kill -9 in the middle of the deletion leaves it: the deletion recorded, the sandbox
  // torn down (its pause process gone, and with it the containers), the record and files still there.
  const file = path.join(podDir(data, uid), 'pod.json');
  const state = JSON.parse(readFileSync(file, 'utf8')) as PodRecordState;
  writeFileSync(file, JSON.stringify({ ...state, deleting: { at: Date.now(), graceSeconds: 0, keepLogs: false } }));
  process.kill(state.sandbox!.pause.pid, 'SIGKILL');
  await waitFor('the pause process gone', () => !isAlive(state.sandbox!.pause.pid, state.sandbox!.pause.startTicks));

  const second = await SandboxProvider.open(config, context);
  try {
    await waitFor(
      () => `the pod gone from the machine (now ${JSON.stringify(sandboxBackendPods(data))})`,
      () => sandboxBackendPods(data).length === 0,
      { timeoutMs: 20_000 },
    );
    assert.deepEqual(await second.listPods(call), [], 'the provider let go of it');
  } finally {
    for (const p of await second.listPods(call)) await second.deletePod(p, deleted).catch(() => undefined);
    await second.close();
  }
});

test('a pause process started but not recorded before a kill -9 of the provider is killed when the pod is adopted', { skip }, async () => {
  const data = path.join(dir, 'stray-pause-data');
  const config = { dataDir: data, localImages: { busybox: rootfs }, network: { services: false, egress: false } };
  const context = { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger };
  const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sleep', '3600'] }] });
  const uid = r.pod.metadata!.uid!;
  const first = await SandboxProvider.open(config, context);
  await first.createPod(r, call);
  await waitFor('the pod running on the machine', () => sandboxBackendPods(data).find((p) => p.uid === uid && p.phase === 'Running'), { timeoutMs: 30_000 });
  await first.close();
  const recorded = saved(r, data).state.sandbox!.pause;
  // What a provider killed right after starting a pause process leaves: one its record does not name.
  const stray = await startPause(parseSandboxConfig(config).tools, podDir(data, uid));

  const second = await SandboxProvider.open(config, context);
  try {
    await waitFor('the stray pause process gone', () => !isAlive(stray.pid, stray.startTicks), { timeoutMs: 10_000 });
    assert.ok(isAlive(recorded.pid, recorded.startTicks), "the recorded pause process (the pod's sandbox) stays");
    await second.deletePod(r.pod, deleted);
    assert.deepEqual(sandboxBackendPods(data), [], 'no record, process or cgroup left');
  } finally {
    for (const p of await second.listPods(call)) await second.deletePod(p, deleted).catch(() => undefined);
    await second.close();
    if (isAlive(stray.pid, stray.startTicks)) process.kill(stray.pid, 'SIGKILL');
  }
});

test('a provider killed while it made a pod sandbox: the restarted one makes the sandbox again, and the container runs and restarts', { skip }, async (t) => {
  const data = path.join(dir, 'half-made-sandbox-data');
  const config = {
    dataDir: data,
    localImages: { busybox: rootfs },
    network: { services: false, egress: false },
    crashLoopBackOff: { initialMs: 500, maxMs: 1000 },
  };
  const context = { nodeName: 'unit', nodeIP: '127.0.0.1', log: silentLogger };
  const record = (uid: string) => {
    try {
      return JSON.parse(readFileSync(path.join(podDir(data, uid), 'pod.json'), 'utf8')) as PodRecordState;
    } catch {
      return undefined; // not written yet, or being replaced
    }
  };
  // The window: after the pause process is saved in the pod's record, before the sandbox's /etc
  // files are written (its hostname and network are made meanwhile). Some ms wide: a few tries.
  let halfMade: { r: ResolvedPod; pause: PauseProcess } | undefined;
  let tries = 0;
  for (; tries < 5 && !halfMade; tries++) {
    const r = pod({ containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'] }] });
    const uid = r.pod.metadata!.uid!;
    const child = spawn(process.execPath, [PROVIDER_PROCESS, JSON.stringify(config), JSON.stringify(r.pod)], { stdio: 'ignore' });
    const exited = once(child, 'exit');
    try {
      const pause = await waitFor('the pod sandbox recorded', () => record(uid)?.sandbox?.pause, { timeoutMs: 30_000, intervalMs: 1 });
      child.kill('SIGKILL');
      if (!existsSync(path.join(podDir(data, uid), 'etc/hosts'))) halfMade = { r, pause };
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }
  assert.ok(halfMade, 'the provider was killed within the window in one of 5 tries');
  t.diagnostic(`killed within the window on try ${tries}`);
  const { r, pause } = halfMade;
  const name = r.pod.metadata!.name!;

  const second = await SandboxProvider.open(config, context);
  try {
    // Before the fix the container was started in the half-made sandbox: bwrap found no
    // /etc/hosts to bind and every start ended with 137 within a second (CrashLoopBackOff).
    const ranFor = async (ms: number) => {
      const s = (await second.getPodStatus('unit', name, call))!;
      const c = s.containerStatuses![0]!;
      if (c.restartCount > 0) return s; // ended: the caller says how
      const started = c.state?.running?.startedAt;
      return started !== undefined && Date.now() - Date.parse(started) >= ms ? s : undefined;
    };
    const s = await waitFor(
      () => `the container running for 2 s (now ${JSON.stringify(saved(r, data).state.containers[0])})`,
      () => ranFor(2000),
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(s.containerStatuses![0]!.restartCount, 0, `the container ended: ${JSON.stringify(s.containerStatuses![0]!.lastState)}`);
    assert.ok(s.podIP && s.podIP !== '127.0.0.1', `the pod has its own network (${s.podIP})`);
    assert.notEqual(saved(r, data).state.sandbox!.pause.pid, pause.pid, 'a new pause process');
    assert.ok(!isAlive(pause.pid, pause.startTicks), 'the half-made sandbox is gone');
    assert.ok(existsSync(path.join(podDir(data, r.pod.metadata!.uid!), 'etc/hosts')));

    // A later restart of the container works too.
    const run = saved(r, data).state.containers[0]!.running!;
    process.kill(run.childPid!, 'SIGKILL');
    const restarted = await waitFor(
      () => `the container restarted (now ${JSON.stringify(saved(r, data).state.containers[0])})`,
      async () => {
        const c = (await second.getPodStatus('unit', name, call))!.containerStatuses![0]!;
        return c.restartCount >= 1 && c.state?.running ? c : undefined;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(restarted.restartCount, 1);
    assert.equal(restarted.lastState?.terminated?.exitCode, 137);
  } finally {
    for (const p of await second.listPods(call)) await second.deletePod(p, deleted).catch(() => undefined);
    await second.close();
  }
  assert.deepEqual(sandboxBackendPods(data), [], 'no record, process or cgroup left');
});
