// One pod watch for many nodes: each node's view sees only its pods, late views and late
// handlers get the cached pods as adds, and the informer runs while any view does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { InformerHandlers } from '../kube/informer.ts';
import type { Pod } from '../kube/types.ts';
import { makePod } from '../../test/harness/pods.ts';
import { SharedPodWatch, type PodCache } from './shared-pod-watch.ts';

class FakeInformer implements PodCache {
  handlers: InformerHandlers<Pod>[] = [];
  started = false;
  stopped = false;
  synced = false;
  addHandlers(h: InformerHandlers<Pod>): void {
    this.handlers.push(h);
  }
  start(): void {
    this.started = true;
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
  async waitForSync(): Promise<void> {}
  hasSynced(): boolean {
    return this.synced;
  }
  add(pod: Pod): void {
    for (const h of this.handlers) h.onAdd?.(pod);
  }
  update(old: Pod, pod: Pod): void {
    for (const h of this.handlers) h.onUpdate?.(old, pod);
  }
  remove(pod: Pod): void {
    for (const h of this.handlers) h.onDelete?.(pod);
  }
}

function recorder() {
  const seen: string[] = [];
  const handlers: InformerHandlers<Pod> = {
    onAdd: (p) => seen.push(`add ${p.metadata?.name}`),
    onUpdate: (_o, p) => seen.push(`update ${p.metadata?.name}`),
    onDelete: (p) => seen.push(`delete ${p.metadata?.name}`),
  };
  return { seen, handlers };
}

test("each node's view holds and hears only the pods bound to it", () => {
  const informers: FakeInformer[] = [];
  const shared = new SharedPodWatch(() => (informers.push(new FakeInformer()), informers.at(-1)!));
  const a = shared.forNode('node-a');
  const b = shared.forNode('node-b');
  const ra = recorder();
  const rb = recorder();
  a.addHandlers(ra.handlers);
  b.addHandlers(rb.handlers);
  a.start();
  b.start();
  assert.equal(informers.length, 1, 'one informer for both nodes');
  const informer = informers[0]!;
  const p1 = makePod({ name: 'p1', nodeName: 'node-a' });
  const p2 = makePod({ name: 'p2', nodeName: 'node-b' });
  const elsewhere = makePod({ name: 'p3', nodeName: 'another-process' });
  informer.add(p1);
  informer.add(p2);
  informer.add(elsewhere);
  informer.update(p1, { ...p1, status: { phase: 'Running' } });
  informer.remove(p2);
  assert.deepEqual(ra.seen, ['add p1', 'update p1']);
  assert.deepEqual(rb.seen, ['add p2', 'delete p2']);
  assert.equal(a.get('default/p1')?.status?.phase, 'Running');
  assert.deepEqual(
    a.list().map((p) => p.metadata?.name),
    ['p1'],
  );
  assert.deepEqual(b.list(), []);
  assert.equal(b.get('default/p2'), undefined);
});

test('a view started later, and handlers added later, get the cached pods as adds', () => {
  const informer = new FakeInformer();
  const shared = new SharedPodWatch(() => informer);
  const a = shared.forNode('node-a');
  a.start();
  informer.add(makePod({ name: 'early', nodeName: 'node-b' }));
  const b = shared.forNode('node-b');
  const before = recorder();
  b.addHandlers(before.handlers);
  assert.deepEqual(before.seen, [], 'nothing before the view starts');
  b.start();
  assert.deepEqual(before.seen, ['add early']);
  const after = recorder();
  b.addHandlers(after.handlers);
  assert.deepEqual(after.seen, ['add early']);
});

test('the informer stops with the last view; views started again get a fresh one', async () => {
  const informers: FakeInformer[] = [];
  const shared = new SharedPodWatch(() => (informers.push(new FakeInformer()), informers.at(-1)!));
  const a = shared.forNode('node-a');
  const b = shared.forNode('node-b');
  a.start();
  b.start();
  informers[0]!.add(makePod({ name: 'p1', nodeName: 'node-a' }));
  await a.stop();
  assert.equal(informers[0]!.stopped, false, 'node-b still watches');
  await b.stop();
  assert.equal(informers[0]!.stopped, true);
  const again = shared.forNode('node-a');
  const r = recorder();
  again.addHandlers(r.handlers);
  again.start();
  assert.equal(informers.length, 2, 'a new informer (a fresh LIST), not the stopped one');
  assert.deepEqual(again.list(), [], 'the old cache is gone');
  informers[0]!.add(makePod({ name: 'stale', nodeName: 'node-a' }));
  assert.deepEqual(r.seen, [], "the stopped informer's late events are ignored");
  informers[1]!.add(makePod({ name: 'p1', nodeName: 'node-a' }));
  assert.deepEqual(r.seen, ['add p1']);
});
