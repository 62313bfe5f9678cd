// The Event recorder with a recording client: repeats aggregate into one Event's count, and what a
// provider adds (occurrence counts, first time, container) reaches the Event.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeClient } from '../kube/client.ts';
import type { CoreEvent } from '../kube/types.ts';
import { silentLogger } from '../log.ts';
import { makePod } from '../../test/harness/pods.ts';
import { waitFor } from '../../test/harness/wait.ts';
import { EventBudget } from './event-budget.ts';
import { EventRecorder } from './events.ts';

function recordingClient() {
  const created: CoreEvent[] = [];
  const patched: { path: string; body: { count: number } }[] = [];
  const client = {
    create: async (_path: string, body: CoreEvent) => void created.push(body),
    patch: async (path: string, body: { count: number }) => void patched.push({ path, body }),
  } as unknown as KubeClient;
  return { client, created, patched };
}

test('provider details: the count and first time start the Event, later reports add their count, the container is its own Event', async (t) => {
  const { client, created, patched } = recordingClient();
  const recorder = new EventRecorder(client, 'vk', silentLogger, new EventBudget());
  t.after(() => recorder.stop());
  const pod = makePod();
  recorder.pod(pod, 'Normal', 'Pulling', 'pulling image', { count: 3, firstTimestamp: '2026-01-01T00:00:00Z', fieldPath: 'spec.containers{app}' });
  await waitFor('created', () => created.length === 1, { timeoutMs: 2000, intervalMs: 2 });
  recorder.pod(pod, 'Normal', 'Pulling', 'pulling image', { count: 2, fieldPath: 'spec.containers{app}' });
  await waitFor('patched', () => patched.length === 1, { timeoutMs: 2000, intervalMs: 2 });
  recorder.pod(pod, 'Normal', 'Pulling', 'pulling image', { fieldPath: 'spec.containers{sidecar}' });
  await waitFor('second Event', () => created.length === 2, { timeoutMs: 2000, intervalMs: 2 });
  const [first, second] = created;
  assert.equal(first!.count, 3);
  assert.equal(first!.firstTimestamp, '2026-01-01T00:00:00Z');
  assert.equal(first!.involvedObject.fieldPath, 'spec.containers{app}');
  assert.deepEqual(first!.source, { component: 'kubelet', host: 'vk' });
  assert.equal(patched[0]!.body.count, 5);
  assert.ok(patched[0]!.path.endsWith(`/events/${first!.metadata!.name}`));
  assert.equal(second!.involvedObject.fieldPath, 'spec.containers{sidecar}');
  assert.equal(second!.count, 1);
  // The core's own Events are unchanged: count 1, first time now, no fieldPath.
  recorder.pod(pod, 'Normal', 'Created', 'Created pod');
  await waitFor('third Event', () => created.length === 3, { timeoutMs: 2000, intervalMs: 2 });
  assert.equal(created[2]!.count, 1);
  assert.equal(created[2]!.involvedObject.fieldPath, undefined);
  assert.equal(created[2]!.firstTimestamp, created[2]!.lastTimestamp);
});
