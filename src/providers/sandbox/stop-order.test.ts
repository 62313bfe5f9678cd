import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerRecord } from './state.ts';
import { stopInKubeletOrder } from './stop-order.ts';

function record(name: string, sidecar: boolean, running = true): ContainerRecord {
  return {
    name,
    init: sidecar,
    sidecar,
    restartCount: 0,
    attempts: 1,
    backoffMs: 0,
    pullBackoffMs: 0,
    ready: true,
    started: true,
    ...(running && { running: { containerID: `sandbox://${name}`, startedAt: '2026-01-01T00:00:00Z' } }),
  } as ContainerRecord;
}

test('app containers stop first, together; then the sidecars one by one in reverse order with the grace left', async () => {
  let clock = 0;
  const events: string[] = [];
  const containers = [record('sidecar-a', true), record('sidecar-b', true), record('app-1', false), record('app-2', false), record('done', false, false)];
  await stopInKubeletOrder(
    containers,
    30,
    async (c, grace) => {
      events.push(`start ${c.name} ${grace}`);
      await new Promise((r) => setTimeout(r, 5));
      clock += c.sidecar ? 2000 : 10_000;
      events.push(`end ${c.name}`);
    },
    () => clock,
  );
  assert.deepEqual(events.slice(0, 2).sort(), ['start app-1 30', 'start app-2 30']);
  assert.deepEqual(events.slice(4), ['start sidecar-b 10', 'end sidecar-b', 'start sidecar-a 8', 'end sidecar-a']);
});
