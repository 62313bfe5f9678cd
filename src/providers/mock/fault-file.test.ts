import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Pod } from '../../kube/types.ts';
import { createLogger } from '../../log.ts';
import { Delays } from './delays.ts';
import { seededRandom } from '../../util/seeded-random.ts';
import { FaultFile } from './fault-file.ts';
import { parseMockConfig } from './config.ts';
import { MockProvider, readMockState } from './mock-provider.ts';
import { InjectedFailureError } from './annotations.ts';

const log = createLogger('silent');

test('seededRandom repeats its sequence for a seed and differs across seeds', () => {
  const a = seededRandom(7);
  const b = seededRandom(7);
  const c = seededRandom(8);
  const seqA = Array.from({ length: 5 }, a);
  assert.deepEqual(Array.from({ length: 5 }, b), seqA);
  assert.notDeepEqual(Array.from({ length: 5 }, c), seqA);
  for (const x of seqA) assert.ok(x >= 0 && x < 1);
});

test('failRate 1 fails every call, 0 none; a missing or broken file keeps the last good settings', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'faults.json');
  const faults = new FaultFile(file, new Delays(), log);
  t.after(() => faults.close());
  await faults.before('call', undefined); // no file: no faults
  writeFileSync(file, JSON.stringify({ failRate: 1 }));
  (faults as unknown as { reload(): void }).reload();
  await assert.rejects(
    faults.before('mock: createPod a/b', undefined),
    (err: Error) => err instanceof InjectedFailureError && /createPod a\/b/.test(err.message),
  );
  writeFileSync(file, '{ not json');
  (faults as unknown as { reload(): void }).reload();
  assert.equal(faults.faults.failRate, 1);
  writeFileSync(file, JSON.stringify({ failRate: 0, clockOffsetMs: 3_600_000 }));
  (faults as unknown as { reload(): void }).reload();
  await faults.before('call', undefined);
  assert.equal(faults.clockOffsetMs, 3_600_000);
  assert.equal(faults.injected.failed, 1);
});

test('the mock logs each creation once per UID and reports timestamps shifted by clockOffsetMs', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-faults-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const faultsFile = path.join(dir, 'faults.json');
  const createLog = path.join(dir, 'creates.jsonl');
  writeFileSync(faultsFile, JSON.stringify({ clockOffsetMs: 86_400_000 }));
  const fixed = new Date('2026-01-01T00:00:00Z');
  const mock = new MockProvider(parseMockConfig({ createLog, faultsFile }), { nodeName: 'n', log, now: () => fixed });
  t.after(() => mock.close());
  const pod: Pod = { metadata: { namespace: 'ns', name: 'p', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'i' }] } };
  const call = { signal: new AbortController().signal };
  await mock.createPod({ pod, volumes: new Map() }, call);
  await mock.createPod({ pod, volumes: new Map() }, call); // same UID: no second creation
  const lines = readFileSync(createLog, 'utf8').trim().split('\n');
  assert.equal(lines.length, 1);
  assert.equal(JSON.parse(lines[0]!).uid, 'u1');
  const status = await mock.getPodStatus('ns', 'p', call);
  assert.equal(status?.startTime, '2026-01-02T00:00:00Z');
});

test('with a state file, createPod returns only once the pod is in the file (a kill -9 right after loses nothing)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-durable-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stateFile = path.join(dir, 'backend.json');
  const mock = new MockProvider(parseMockConfig({ stateFile }), { nodeName: 'n', log });
  t.after(() => mock.close());
  const call = { signal: new AbortController().signal };
  for (let i = 0; i < 5; i++) {
    const pod: Pod = { metadata: { namespace: 'ns', name: `p${i}`, uid: `u${i}` }, spec: { containers: [{ name: 'c', image: 'i' }] } };
    await mock.createPod({ pod, volumes: new Map() }, call);
    assert.ok(
      readMockState(stateFile).pods.some((p) => p.uid === `u${i}`),
      `u${i} in the state file as soon as createPod returned`,
    );
  }
});
