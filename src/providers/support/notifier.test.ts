import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import { PodNotifier } from './notifier.ts';

function pod(name: string, phase: string): Pod {
  return { metadata: { namespace: 'ns', name, uid: `uid-${name}` }, status: { phase } };
}

test('changes in one turn reach each listener once, with the latest state, on the next turn', async () => {
  const state = new Map<string, string>([
    ['a', 'Pending'],
    ['b', 'Pending'],
  ]);
  const notifier = new PodNotifier<string>((name) => pod(name, state.get(name) ?? ''), silentLogger);
  const seen: string[] = [];
  notifier.addListener((p) => seen.push(`${p.metadata?.name}:${p.status?.phase}`));
  notifier.markDirty('a');
  state.set('a', 'Running');
  notifier.markDirty('a');
  notifier.markDirty('b');
  assert.deepEqual(seen, [], 'never inside the caller');
  await nextTurn();
  assert.deepEqual(seen, ['a:Running', 'b:Pending']);
  assert.equal(notifier.delivered, 2);
});

test('an item that renders to nothing is skipped; a throwing listener does not stop the others', async () => {
  const notifier = new PodNotifier<string>((name) => (name === 'gone' ? undefined : pod(name, 'Running')), silentLogger);
  const seen: string[] = [];
  notifier.addListener(() => {
    throw new Error('listener bug');
  });
  notifier.addListener((p) => seen.push(p.metadata?.name ?? ''));
  notifier.markDirty('gone');
  notifier.markDirty('kept');
  await nextTurn();
  assert.deepEqual(seen, ['kept']);
});

test('without listeners nothing is collected', async () => {
  let renders = 0;
  const notifier = new PodNotifier<string>((name) => (renders++, pod(name, 'Running')), silentLogger);
  notifier.markDirty('a');
  await nextTurn();
  assert.equal(renders, 0);
  assert.equal(notifier.hasListeners, false);
});
