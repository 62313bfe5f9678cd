// ACI instance-view events → pod Events, on their own: reasons, types, counts, baseline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NewOccurrences } from '../support/pod-events.ts';
import type { AciEvent, ContainerGroup } from './arm-types.ts';
import { baselineGroupEvents, newGroupEvents, reasonOf } from './events.ts';

const pod = { namespace: 'ns', name: 'web', uid: 'u1' };

function group(container: AciEvent[], own: AciEvent[] = [], init: AciEvent[] = []): ContainerGroup {
  return {
    properties: {
      containers: [{ name: 'app', properties: { image: 'nginx', resources: { requests: { cpu: 1, memoryInGB: 1 } }, instanceView: { events: container } } }],
      initContainers: [{ name: 'setup', properties: { image: 'busybox', instanceView: { events: init } } }],
      instanceView: { events: own },
    },
  } as unknown as ContainerGroup;
}

const started = (count: number, last: string): AciEvent => ({
  count,
  firstTimestamp: '2026-01-01T00:00:00Z',
  lastTimestamp: last,
  name: 'Started',
  message: 'Started container',
  type: 'Normal',
});

test('reasons: CamelCase names are kept, others joined into CamelCase, nothing usable is ContainerGroupEvent', () => {
  assert.equal(reasonOf('Pulling'), 'Pulling');
  assert.equal(reasonOf('failed mount'), 'FailedMount');
  assert.equal(reasonOf('Container-Restart'), 'ContainerRestart');
  assert.equal(reasonOf(''), 'ContainerGroupEvent');
  assert.equal(reasonOf('9lives'), 'ContainerGroupEvent');
  assert.equal(reasonOf(undefined), 'ContainerGroupEvent');
});

test('each occurrence once: a count that grows reports the difference, a moved lastTimestamp with the same count reports one', () => {
  const seen = new NewOccurrences();
  const first = newGroupEvents(group([started(1, '2026-01-01T00:00:00Z')]), seen, pod);
  assert.deepEqual(first, [
    { ...pod, type: 'Normal', reason: 'Started', message: 'Started container', container: 'app', count: 1, firstTimestamp: new Date('2026-01-01T00:00:00Z') },
  ]);
  assert.deepEqual(newGroupEvents(group([started(1, '2026-01-01T00:00:00Z')]), seen, pod), [], 'the same read again is nothing new');
  const grown = newGroupEvents(group([started(4, '2026-01-01T00:01:00Z')]), seen, pod);
  assert.equal(grown.length, 1);
  assert.equal(grown[0]!.count, 3);
  assert.equal(grown[0]!.firstTimestamp, undefined, 'not the first report: the Event already has its first time');
  const moved = newGroupEvents(group([started(4, '2026-01-01T00:02:00Z')]), seen, pod);
  assert.equal(moved[0]!.count, 1);
});

test('types: Warning as ACI says, or by a failure name ACI marks Normal; group events name no container, init events their init container', () => {
  const events = newGroupEvents(
    group(
      [{ name: 'FailedMount', message: 'Output: mount error(2): Permission denied', type: 'Normal', count: 1 }],
      [{ name: 'ProvisioningFailed', message: 'Subnet is full', type: 'Warning' }],
      [{ name: 'Pulled', message: 'Successfully pulled image "busybox"', type: 'Normal' }],
    ),
    new NewOccurrences(),
    pod,
  );
  assert.deepEqual(
    events.map((e) => [e.reason, e.type, e.container]),
    [
      ['Pulled', 'Normal', 'setup'],
      ['FailedMount', 'Warning', 'app'],
      ['ProvisioningFailed', 'Warning', undefined],
    ],
  );
});

test('baseline: an adopted group reports only what happens after it', () => {
  const seen = new NewOccurrences();
  baselineGroupEvents(group([started(2, '2026-01-01T00:01:00Z')]), seen);
  assert.deepEqual(newGroupEvents(group([started(2, '2026-01-01T00:01:00Z')]), seen, pod), []);
  assert.equal(newGroupEvents(group([started(3, '2026-01-01T00:02:00Z')]), seen, pod)[0]!.count, 1);
});
