import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ConfigError } from '../../errors.ts';
import { silentLogger } from '../../log.ts';
import type { Pod } from '../../kube/types.ts';
import type { ResolvedPod, ResolvedVolume } from '../provider.ts';
import { parseMockConfig } from './config.ts';
import { MockProvider, readMockState } from './mock-provider.ts';
import { loadMockState, StateWriter, stateText } from './state.ts';
import { makePod as makeHarnessPod, type PodOptions } from '../../../test/harness/pods.ts';
import { waitFor } from '../../../test/harness/wait.ts';
/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** The shared pod builder, with each pod's uid derived from its name (uid-<name>). */
function makePod(o: PodOptions = {}): Pod {
  return makeHarnessPod({ uid: `uid-${o.name ?? 'p'}`, ...o });
}

function resolved(pod: Pod, volumes: ResolvedVolume[] = []): ResolvedPod {
  return { pod, volumes: new Map(volumes.map((v) => [v.name, v])) };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'mock-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A provider on `stateFile`; closed (which flushes the file) when the test ends unless closed before. */
function provider(t: TestContext, stateFile: string, config: Record<string, unknown> = {}): MockProvider {
  const p = new MockProvider(parseMockConfig({ ...config, stateFile }), { nodeName: 'vk', log: silentLogger });
  t.after(() => p.close());
  return p;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'VK_CONFIG');
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

const summary = (file: string) => readMockState(file).pods.map((p) => `${p.namespace}/${p.name} ${p.uid} ${p.phase}`);

describe('state file round trip', () => {
  test('a new provider on the same file has the pods: uid, IP, phase, env, volume bytes, status', async (t) => {
    const file = join(tempDir(t), 'nested', 'state.json'); // the directory is created on demand
    const a = provider(t, file, { lifecycle: { restartDelayMs: 60_000 } });
    const bytes = new Uint8Array(256).map((_, i) => i); // every byte value, not valid UTF-8
    const volumes: ResolvedVolume[] = [
      {
        name: 'cfg',
        type: 'files',
        source: 'secret',
        files: [
          { path: 'bin/key', content: bytes, mode: 0o600 },
          { path: 'empty', content: new Uint8Array(0), mode: 0o644 },
        ],
      },
      { name: 'scratch', type: 'emptyDir', medium: 'Memory', sizeLimit: '1Gi' },
    ];
    await a.createPod(resolved(makePod({ name: 'web' }), volumes), call);
    await a.createPod(resolved(makePod({ name: 'host', hostNetwork: true })), call);
    await a.createPod(resolved(makePod({ name: 'slow', annotations: { 'mock.vk.io/running-delay-ms': '600000' } })), call);
    await a.createPod(
      resolved(makePod({ name: 'failed', restartPolicy: 'Never', annotations: { 'mock.vk.io/exit-code': '3', 'mock.vk.io/complete-after-ms': '0' } })),
      call,
    );
    await a.createPod(
      resolved(makePod({ name: 'crashing', restartPolicy: 'OnFailure', annotations: { 'mock.vk.io/exit-code': '1', 'mock.vk.io/complete-after-ms': '0' } })),
      call,
    );
    const before = await a.listPods(call);
    assert.deepEqual(
      before.map((p) => [p.metadata?.name, p.status?.phase]),
      [
        ['web', 'Running'],
        ['host', 'Running'],
        ['slow', 'Pending'],
        ['failed', 'Failed'],
        ['crashing', 'Running'],
      ],
    );
    await a.close();

    const b = provider(t, file, { lifecycle: { restartDelayMs: 60_000 } });
    assert.deepEqual(await b.listPods(call), before, 'same pods, same rendered status (uid, IPs, phases, timestamps, restart counts)');
    const web = b.resolvedPod('default', 'web');
    assert.deepEqual(web?.pod.spec?.containers[0]?.env, [{ name: 'GREETING', value: 'hello' }]);
    assert.deepEqual(web?.volumes, new Map(volumes.map((v) => [v.name, v])), 'volume bytes round-trip as Uint8Arrays');
    assert.equal((await b.getPod('default', 'web', call))?.status?.podIP, '10.244.0.2');
    assert.equal((await b.getPod('default', 'crashing', call))?.status?.containerStatuses?.[0]?.state?.waiting?.reason, 'CrashLoopBackOff');
    const s = b.stats();
    assert.equal(s.restored, 5);
    assert.equal(s.podIPsInUse, 4, 'every restored non-host-network pod holds its IP');
    assert.equal(s.timers, 2, 'the pending pod and the crash-looping one are timed again');

    // Restored IPs are reserved: a new pod gets the next free address, not a restored one's.
    await b.createPod(resolved(makePod({ name: 'new' })), call);
    assert.equal((await b.getPod('default', 'new', call))?.status?.podIP, '10.244.0.6');
    await b.deletePod(makePod({ name: 'web' }), { ...call, reason: 'deleted' });
    await b.close();
    assert.deepEqual(summary(file), [
      'default/host uid-host Running',
      'default/slow uid-slow Pending',
      'default/failed uid-failed Failed',
      'default/crashing uid-crashing Running',
      'default/new uid-new Running',
    ]);
    assert.deepEqual(
      readMockState(file).pods.map((p) => p.podIP),
      [undefined, '10.244.0.3', '10.244.0.4', '10.244.0.5', '10.244.0.6'],
    );
    assert.deepEqual(readdirSync(join(file, '..')), ['state.json'], 'no temp files left behind');
  });

  test('a missing file is an empty backend', async (t) => {
    const file = join(tempDir(t), 'state.json');
    assert.deepEqual(readMockState(file), { savedAt: '', pods: [] });
    const p = provider(t, file);
    assert.equal(p.podCount(), 0);
    await p.close();
    assert.deepEqual(readMockState(file).pods, [], 'close writes nothing new, and nothing breaks');
  });

  test('creates, updates, deletes and replacements reach the file while the provider runs', async (t) => {
    const file = join(tempDir(t), 'state.json');
    const p = provider(t, file);
    await p.createPod(resolved(makePod({ name: 'a' })), call);
    await p.createPod(resolved(makePod({ name: 'b' })), call);
    await waitFor('two pods in the file', () => summary(file).length === 2, { timeoutMs: 2000, intervalMs: 1 });

    await p.deletePod(makePod({ name: 'a' }), { ...call, reason: 'deleted' });
    await waitFor('deletion in the file', () => summary(file).join() === 'default/b uid-b Running', { timeoutMs: 2000, intervalMs: 1 });

    await p.createPod(resolved(makePod({ name: 'b', uid: 'uid-b2' })), call); // a new incarnation replaces the old
    await waitFor('replacement in the file', () => summary(file).join() === 'default/b uid-b2 Running', { timeoutMs: 2000, intervalMs: 1 });

    await p.updatePod(resolved(makePod({ name: 'b', uid: 'uid-b2', containers: [{ name: 'app', image: 'nginx:1.28' }] })), call);
    const updated = await waitFor('update in the file', () => loadMockState(file).pods.find((x) => x.pod.spec?.containers[0]?.image === 'nginx:1.28'), {
      timeoutMs: 2000,
      intervalMs: 1,
    });
    assert.equal(updated.containers[0]?.restartCount, 1);

    // Not closed: what the file holds is what a kill -9 would leave.
    const again = provider(t, file);
    const pod = await again.getPod('default', 'b', call);
    assert.equal(pod?.metadata?.uid, 'uid-b2');
    assert.equal(pod?.status?.containerStatuses?.[0]?.image, 'nginx:1.28');
    assert.equal(pod?.status?.containerStatuses?.[0]?.restartCount, 1);
    assert.equal(again.podCount(), 1);
  });

  test('a lifecycle transition is on disk within 100 ms', async (t) => {
    const file = join(tempDir(t), 'state.json');
    const p = provider(t, file);
    let runningAt = 0;
    p.notifyPods!((pod) => {
      if (pod.status?.phase === 'Running' && runningAt === 0) runningAt = performance.now();
    });
    await p.createPod(resolved(makePod({ annotations: { 'mock.vk.io/running-delay-ms': '50' } })), call);
    await waitFor('Running notification', () => runningAt > 0, { timeoutMs: 2000, intervalMs: 1 });
    await waitFor('Running in the file', () => readMockState(file).pods[0]?.phase === 'Running', { timeoutMs: 100, intervalMs: 1 });
    t.diagnostic(`notified Running → on disk: ${(performance.now() - runningAt).toFixed(1)}ms`);
  });
});

describe('lifecycle continues after a restart (fake clock)', () => {
  test('pods due to complete or restart meanwhile do so at their recorded times', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
    const file = join(tempDir(t), 'state.json');
    const config = { lifecycle: { completeAfterMs: 10_000 } };
    const a = provider(t, file, config);
    await a.createPod(resolved(makePod({ name: 'job', restartPolicy: 'Never' })), call);
    await a.createPod(resolved(makePod({ name: 'svc' })), call);
    await a.createPod(resolved(makePod({ name: 'later', restartPolicy: 'Never', annotations: { 'mock.vk.io/complete-after-ms': '40000' } })), call);
    t.mock.timers.tick(1000);
    await a.close(); // the process goes away at T0+1s ...

    t.mock.timers.tick(24_000); // ... and a new one starts at T0+25s
    const b = provider(t, file, config);
    const job = await b.getPod('default', 'job', call);
    assert.equal(job?.status?.phase, 'Succeeded');
    assert.equal(job?.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt, iso(T0 + 10_000));
    let svc = (await b.getPod('default', 'svc', call))?.status?.containerStatuses?.[0];
    assert.equal(svc?.restartCount, 2);
    assert.deepEqual(svc?.state, { running: { startedAt: iso(T0 + 20_000) } });
    assert.equal((await b.getPod('default', 'later', call))?.status?.phase, 'Running');

    t.mock.timers.tick(5000);
    svc = (await b.getPod('default', 'svc', call))?.status?.containerStatuses?.[0];
    assert.equal(svc?.restartCount, 3, 'the restored pod has its timer again');
    t.mock.timers.tick(10_000);
    const later = await b.getPod('default', 'later', call);
    assert.equal(later?.status?.phase, 'Succeeded');
    assert.equal(later?.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt, iso(T0 + 40_000));

    await b.close();
    assert.deepEqual(summary(file), ['default/job uid-job Succeeded', 'default/svc uid-svc Running', 'default/later uid-later Succeeded']);
    assert.equal(loadMockState(file).pods[1]?.containers[0]?.restartCount, 4);
  });
});

describe('corrupt state files', () => {
  const write = (t: TestContext, content: string) => {
    const file = join(tempDir(t), 'state.json');
    writeFileSync(file, content);
    return file;
  };
  const valid = async (t: TestContext) => {
    const file = join(tempDir(t), 'state.json');
    const p = provider(t, file);
    await p.createPod(resolved(makePod({ name: 'a' })), call);
    await p.createPod(resolved(makePod({ name: 'b' })), call);
    await p.close();
    return { file, state: JSON.parse(readMockStateText(file)) as { pods: Record<string, unknown>[] } };
  };
  const readMockStateText = (file: string) => JSON.stringify(loadMockState(file));

  test('not JSON: the file and the parse error are named; both the provider and readMockState throw', (t) => {
    const file = write(t, '{"kind":"MockProviderState","version":1,"pods":[{"namesp');
    const message = configError(() => new MockProvider(parseMockConfig({ stateFile: file }), { nodeName: 'vk', log: silentLogger }));
    assert.match(message, new RegExp(`^mock stateFile ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not valid JSON \\(.+\\)$`));
    assert.equal(
      configError(() => readMockState(file)),
      message,
    );
    assert.match(
      configError(() => readMockState(write(t, ''))),
      /: not valid JSON/,
    );
  });

  test('wrong shape: the field path is named', async (t) => {
    assert.match(
      configError(() => readMockState(write(t, '[]'))),
      /state\.json: expected an object$/,
    );
    assert.match(
      configError(() => readMockState(write(t, '{"kind":"Other","version":1,"savedAt":"","pods":[]}'))),
      /state\.json: kind: /,
    );
    const { file, state } = await valid(t);
    const pod = state.pods[1]!;
    pod.stage = 'exploded';
    writeFileSync(file, JSON.stringify({ kind: 'MockProviderState', version: 1, savedAt: '', pods: state.pods }));
    assert.match(
      configError(() => readMockState(file)),
      /state\.json: pods\[1\]\.stage: expected one of "creating", "running", "backoff", "terminated"$/,
    );
    pod.stage = 'running';
    pod.volumes = [{ name: 'v', type: 'files', source: 'secret', files: [{ path: 'k', content: 'not base64!', mode: 420 }] }];
    writeFileSync(file, JSON.stringify({ kind: 'MockProviderState', version: 1, savedAt: '', pods: state.pods }));
    assert.match(
      configError(() => readMockState(file)),
      /pods\[1\]\.volumes\[0\]\.files\[0\]\.content: expected base64$/,
    );
  });

  test('inconsistent pods: duplicates, mismatched names, IPs outside the CIDR or shared', async (t) => {
    const { file, state } = await valid(t);
    const [a, b] = state.pods as [Record<string, unknown>, Record<string, unknown>];
    const save = (pods: unknown[]) => writeFileSync(file, JSON.stringify({ kind: 'MockProviderState', version: 1, savedAt: '', pods }));
    const open = () => new MockProvider(parseMockConfig({ stateFile: file }), { nodeName: 'vk', log: silentLogger });

    save([a, a]);
    assert.match(configError(open), /state\.json: pods\[1\]: pod default\/a appears twice$/);
    save([a, { ...b, uid: 'other' }]);
    assert.match(configError(open), /pods\[1\] \(default\/b\): pod\.metadata\.uid "uid-b" differs from uid "other"$/);
    save([a, { ...b, ip: a.ip }]);
    assert.match(configError(open), /state\.json: pod default\/[ab]: IP 10\.244\.0\.2 is outside podCIDR 10\.244\.0\.0\/16 or held by another pod$/);
    save([a, b]);
    assert.match(
      configError(() => new MockProvider(parseMockConfig({ stateFile: file, podCIDR: '10.9.0.0/16' }), { nodeName: 'vk', log: silentLogger })),
      /IP 10\.244\.0\.2 is outside podCIDR 10\.9\.0\.0\/16/,
    );
    assert.equal(open().podCount(), 2, 'the untouched file still loads');
  });

  test('unreadable: a directory where the file should be', (t) => {
    const file = join(tempDir(t), 'state.json');
    mkdirSync(file);
    assert.match(
      configError(() => readMockState(file)),
      /state\.json: cannot read: EISDIR/,
    );
  });
});

describe('coalescing', () => {
  test('StateWriter: one write at a time, changes made meanwhile written after, the latest state wins', async (t) => {
    const file = join(tempDir(t), 'state.json');
    let version = 0;
    const w = new StateWriter(file, () => stateText(String(version), []), silentLogger);
    for (let i = 1; i <= 1000; i++) {
      version = i;
      w.request();
      if (i % 50 === 0) await nextTurn();
    }
    await waitFor('latest version on disk', () => readMockState(file).savedAt === '1000', { timeoutMs: 2000, intervalMs: 1 });
    await w.close(); // also waits for a write whose rename the poll above may have seen before it finished
    const writes = w.writes;
    assert.ok(writes >= 1 && writes <= 20, `${writes} writes for 1000 changes in 20 turns`);
    version = 1001;
    w.request();
    assert.equal(w.busy, false, 'a request after close schedules no write');
    assert.equal(w.writes, writes, 'nothing written after close');
    assert.equal(readMockState(file).savedAt, '1000');
  });

  test('thousands of rapid changes: few writes, and the file ends consistent', async (t) => {
    const file = join(tempDir(t), 'state.json');
    const p = provider(t, file, { lifecycle: { runningDelayMs: 20, completeAfterMs: 30 } });
    let changes = 0;
    const restartPolicy = (i: number) => (i % 3 === 0 ? 'Never' : 'Always');
    // Creates come 100 at a time, as the pod controller's workers send them: each returns once
    // durable, and one write makes a whole batch durable.
    for (let batch = 0; batch < 3000; batch += 100) {
      const ids = Array.from({ length: 100 }, (_, k) => batch + k);
      await Promise.all(ids.map((i) => p.createPod(resolved(makePod({ name: `p${i}`, restartPolicy: restartPolicy(i) })), call)));
      changes += ids.length;
      for (const i of ids) {
        if (i % 5 === 1) {
          await p.updatePod(resolved(makePod({ name: `p${i}`, restartPolicy: restartPolicy(i), containers: [{ name: 'app', image: `img:${i}` }] })), call);
          changes++;
        }
        if (i % 7 === 2) {
          await p.deletePod(makePod({ name: `p${i - 1}` }), { ...call, reason: 'deleted' });
          changes++;
        }
      }
      await nextTurn(); // let writes and lifecycle timers interleave with the changes
    }
    const writesDuringBurst = p.stats().stateWrites;

    // Consistent: the file holds exactly the provider's pods, uids and phases.
    const expected = async () => (await p.listPods(call)).map((x) => `${x.metadata?.namespace}/${x.metadata?.name} ${x.metadata?.uid} ${x.status?.phase}`);
    await waitFor(
      'file consistent with the provider',
      async () => {
        const want = await expected();
        return want.length === summary(file).length && summary(file).join('\n') === want.join('\n');
      },
      { timeoutMs: 10_000, intervalMs: 1 },
    );
    const want = await expected();
    assert.equal(want.length, 3000 - Math.floor((3000 + 4) / 7));
    assert.ok(want.some((x) => x.endsWith('Succeeded')) && want.some((x) => x.endsWith('Running')));

    const writes = p.stats().stateWrites;
    t.diagnostic(`${changes} API changes (plus lifecycle transitions): ${writesDuringBurst} writes during the burst, ${writes} in all`);
    assert.ok(writes < changes / 10, `${writes} writes for ${changes} changes`);

    await p.close();
    const b = provider(t, file, { lifecycle: { runningDelayMs: 20, completeAfterMs: 30 } });
    assert.equal(b.podCount(), want.length);
    assert.equal(new Set(readMockState(file).pods.map((x) => x.podIP)).size, want.length, 'no IP handed out twice');
  });
});

describe('kill -9', () => {
  test('pods survive a SIGKILLed process and go on in the next one', async (t) => {
    const dir = tempDir(t);
    const file = join(dir, 'state.json');
    const child = join(dir, 'child.mjs');
    const url = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
    writeFileSync(
      child,
      `import { MockProvider } from ${url('./mock-provider.ts')};
import { parseMockConfig } from ${url('./config.ts')};
import { silentLogger } from ${url('../../log.ts')};

const p = new MockProvider(parseMockConfig({ stateFile: process.argv[2] }), { nodeName: 'vk', log: silentLogger });
p.notifyPods((pod) => process.stdout.write(pod.metadata.name + ' ' + pod.status.phase + '\\n'));
await Promise.all(JSON.parse(process.argv[3]).map((pod) => p.createPod({ pod, volumes: new Map() }, { signal: new AbortController().signal })));
process.stdout.write('created\\n');
setInterval(() => {}, 60_000); // runs until killed
`,
    );
    const pods = [
      makePod({ name: 'web' }),
      makePod({ name: 'job', restartPolicy: 'Never', annotations: { 'mock.vk.io/complete-after-ms': '1500' } }),
      makePod({ name: 'slow', annotations: { 'mock.vk.io/running-delay-ms': '1500' } }),
    ];
    const proc = spawn(process.execPath, [child, file, JSON.stringify(pods)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, signal) => resolve(signal)));
    t.after(() => proc.kill('SIGKILL'));
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));

    await waitFor(
      'child reports its creates done, web and job Running',
      () => out.includes('created\n') && out.includes('web Running\n') && out.includes('job Running\n'),
      {
        timeoutMs: 10_000,
        intervalMs: 1,
      },
    );
    const seen = performance.now();
    await waitFor(
      'Running pods in the file',
      () => {
        const phases = new Map(readMockState(file).pods.map((x) => [x.name, x.phase]));
        return phases.get('web') === 'Running' && phases.get('job') === 'Running';
      },
      { timeoutMs: 1000, intervalMs: 1 },
    );
    t.diagnostic(`child reported Running → visible in the file: ${(performance.now() - seen).toFixed(1)}ms`);
    proc.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    const recorded = loadMockState(file);
    const b = provider(t, file);
    assert.equal(b.podCount(), 3);
    const web = await b.getPod('default', 'web', call);
    assert.equal(web?.metadata?.uid, 'uid-web');
    assert.equal(web?.status?.phase, 'Running');
    assert.equal(web?.status?.podIP, '10.244.0.2');

    // The job completes 1.5 s after it started in the dead process, whenever that falls.
    const jobStart = recorded.pods.find((x) => x.name === 'job')?.runStart ?? 0;
    const job = await waitFor(
      'job Succeeded',
      async () => {
        const pod = await b.getPod('default', 'job', call);
        return pod?.status?.phase === 'Succeeded' ? pod : undefined;
      },
      { timeoutMs: 5000, intervalMs: 1 },
    );
    assert.equal(job.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt, iso(jobStart + 1500));
    await waitFor('slow Running', async () => (await b.getPod('default', 'slow', call))?.status?.phase === 'Running', { timeoutMs: 5000, intervalMs: 1 });

    await waitFor('file follows', () => summary(file).join() === 'default/web uid-web Running,default/job uid-job Succeeded,default/slow uid-slow Running', {
      timeoutMs: 1000,
      intervalMs: 1,
    });
    assert.ok(
      readdirSync(dir).every((f) => !f.endsWith('.tmp') || f.includes(`.${proc.pid}-`)),
      'only the killed process may leave a temp file',
    );
  });
});
