import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { KubeApiError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import type { KubeClient } from './client.ts';
import {
  Informer,
  applyEvent,
  idleLimitMs,
  isExpiredError,
  jitteredTimeoutSeconds,
  objectKey,
  reconcile,
  stripManagedFields,
  type Change,
} from './informer.ts';
import type { ConfigMap, Status, WatchEvent } from './types.ts';

function cm(name: string, resourceVersion: string, opts: { namespace?: string; uid?: string; data?: Record<string, string> } = {}): ConfigMap {
  return {
    metadata: { name, namespace: opts.namespace ?? 'ns', resourceVersion, uid: opts.uid ?? `uid-${name}` },
    data: opts.data ?? {},
  };
}

function cacheOf(...objs: ConfigMap[]): Map<string, ConfigMap> {
  return new Map(objs.map((o) => [objectKey(o), o]));
}

// 'add ns/a@3' style summaries keep the order assertions readable.
function summary(changes: Change<ConfigMap>[]): string[] {
  return changes.map((c) =>
    c.type === 'update'
      ? `update ${objectKey(c.obj)}@${c.oldObj.metadata?.resourceVersion}->${c.obj.metadata?.resourceVersion}`
      : `${c.type} ${objectKey(c.obj)}@${c.obj.metadata?.resourceVersion}`,
  );
}

function event(type: WatchEvent<unknown>['type'], object: ConfigMap | Status): WatchEvent<ConfigMap | Status> {
  return { type, object };
}

describe('objectKey', () => {
  it('is namespace/name for namespaced objects and name for cluster-scoped ones', () => {
    assert.equal(objectKey(cm('a', '1', { namespace: 'ns1' })), 'ns1/a');
    assert.equal(objectKey({ metadata: { name: 'node-1' } }), 'node-1');
    assert.equal(objectKey({ metadata: { name: 'node-1', namespace: '' } }), 'node-1');
  });
});

describe('applyEvent', () => {
  it('ADDED caches a new object and reports an add with its resourceVersion', () => {
    const cache = cacheOf();
    const a = cm('a', '5');
    const result = applyEvent(cache, event('ADDED', a));
    assert.deepEqual(result, { type: 'changes', changes: [{ type: 'add', obj: a }], resourceVersion: '5' });
    assert.equal(cache.get('ns/a'), a);
  });

  it('MODIFIED replaces the cached object and reports old and new', () => {
    const old = cm('a', '5');
    const cache = cacheOf(old);
    const next = cm('a', '6', { data: { k: 'v' } });
    const result = applyEvent(cache, event('MODIFIED', next));
    assert.deepEqual(result, { type: 'changes', changes: [{ type: 'update', oldObj: old, obj: next }], resourceVersion: '6' });
    assert.equal(cache.get('ns/a'), next);
  });

  it('treats ADDED for a cached key as an update and MODIFIED for an unknown key as an add', () => {
    const cache = cacheOf(cm('a', '5'));
    assert.deepEqual(summary(changesOf(applyEvent(cache, event('ADDED', cm('a', '7'))))), ['update ns/a@5->7']);
    assert.deepEqual(summary(changesOf(applyEvent(cache, event('MODIFIED', cm('b', '8'))))), ['add ns/b@8']);
    assert.deepEqual([...cache.keys()].sort(), ['ns/a', 'ns/b']);
  });

  it('reports a new UID under a cached key as delete then add', () => {
    const cache = cacheOf(cm('a', '5', { uid: 'u1' }));
    const result = applyEvent(cache, event('ADDED', cm('a', '9', { uid: 'u2' })));
    assert.deepEqual(summary(changesOf(result)), ['delete ns/a@5', 'add ns/a@9']);
    assert.equal(cache.get('ns/a')?.metadata?.uid, 'u2');
  });

  it('DELETED removes the object and reports the event object, even for an unknown key', () => {
    const cache = cacheOf(cm('a', '5'));
    const gone = cm('a', '10');
    assert.deepEqual(applyEvent(cache, event('DELETED', gone)), { type: 'changes', changes: [{ type: 'delete', obj: gone }], resourceVersion: '10' });
    assert.equal(cache.size, 0);
    assert.deepEqual(summary(changesOf(applyEvent(cache, event('DELETED', cm('x', '11'))))), ['delete ns/x@11']);
    assert.equal(cache.size, 0);
  });

  it('BOOKMARK only carries a resourceVersion and leaves the cache alone', () => {
    const a = cm('a', '5');
    const cache = cacheOf(a);
    const result = applyEvent(cache, event('BOOKMARK', { metadata: { resourceVersion: '42' } }));
    assert.deepEqual(result, { type: 'bookmark', resourceVersion: '42' });
    assert.deepEqual([...cache.entries()], [['ns/a', a]]);
  });

  it('ERROR with a 410 Status (by code or by reason) means expired; other ERRORs do not', () => {
    const cache = cacheOf(cm('a', '5'));
    const expired = applyEvent(cache, event('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version: 1 (308)' }));
    assert.equal(expired.type, 'expired');
    assert.match((expired as { message: string }).message, /410 Expired: too old resource version/);
    assert.equal(applyEvent(cache, event('ERROR', { kind: 'Status', reason: 'Gone' })).type, 'expired');
    assert.equal(applyEvent(cache, event('ERROR', { kind: 'Status', code: 500, reason: 'InternalError', message: 'boom' })).type, 'error');
    assert.equal(cache.size, 1, 'an ERROR event must not touch the cache');
  });

  it('reports malformed events as errors without touching the cache', () => {
    const cache = cacheOf(cm('a', '5'));
    assert.equal(applyEvent(cache, event('ADDED', { metadata: { namespace: 'ns', resourceVersion: '6' } })).type, 'error');
    assert.equal(applyEvent(cache, { type: 'ADDED', object: undefined as unknown as ConfigMap }).type, 'error');
    assert.equal(applyEvent(cache, { type: 'WHATEVER' as 'ADDED', object: cm('b', '7') }).type, 'error');
    assert.deepEqual([...cache.keys()], ['ns/a']);
  });

  it('replaying a watch stream leaves the cache equal to the final state', () => {
    const cache = cacheOf();
    const stream: WatchEvent<ConfigMap>[] = [
      { type: 'ADDED', object: cm('a', '1') },
      { type: 'ADDED', object: cm('b', '2') },
      { type: 'MODIFIED', object: cm('a', '3') },
      { type: 'DELETED', object: cm('b', '4') },
      { type: 'ADDED', object: cm('c', '5') },
    ];
    const all = stream.flatMap((e) => changesOf(applyEvent(cache, e)));
    assert.deepEqual(summary(all), ['add ns/a@1', 'add ns/b@2', 'update ns/a@1->3', 'delete ns/b@4', 'add ns/c@5']);
    assert.deepEqual(
      [...cache.values()].map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`),
      ['a@3', 'c@5'],
    );
  });
});

function changesOf(result: ReturnType<typeof applyEvent<ConfigMap>>): Change<ConfigMap>[] {
  assert.equal(result.type, 'changes');
  return (result as { changes: Change<ConfigMap>[] }).changes;
}

describe('reconcile', () => {
  it('on an empty cache adds every item in list order', () => {
    const cache = cacheOf();
    const changes = reconcile(cache, [cm('b', '2'), cm('a', '1'), cm('c', '3', { namespace: 'other' })]);
    assert.deepEqual(summary(changes), ['add ns/b@2', 'add ns/a@1', 'add other/c@3']);
    assert.deepEqual([...cache.keys()], ['ns/b', 'ns/a', 'other/c']);
  });

  it('deletes what is gone, updates what changed, adds what is new, and skips what did not change', () => {
    const same = cm('same', '1');
    const cache = cacheOf(same, cm('changed', '2'), cm('gone', '3'), cm('recreated', '4', { uid: 'old' }));
    const listed = [cm('new', '9'), cm('same', '1'), cm('changed', '7'), cm('recreated', '8', { uid: 'new' })];
    const changes = reconcile(cache, listed);
    assert.deepEqual(summary(changes), ['delete ns/gone@3', 'add ns/new@9', 'update ns/changed@2->7', 'delete ns/recreated@4', 'add ns/recreated@8']);
    assert.deepEqual([...cache.keys()].sort(), ['ns/changed', 'ns/new', 'ns/recreated', 'ns/same']);
    assert.equal(cache.get('ns/same'), same, 'an unchanged object keeps the copy handlers already saw');
    assert.equal(cache.get('ns/changed')?.metadata?.resourceVersion, '7');
    assert.equal(cache.get('ns/recreated')?.metadata?.uid, 'new');
  });

  it('passes the cached object as the old one of an update and the cached copy to delete', () => {
    const old = cm('a', '1', { data: { v: 'old' } });
    const gone = cm('g', '2');
    const cache = cacheOf(old, gone);
    const next = cm('a', '5', { data: { v: 'new' } });
    assert.deepEqual(reconcile(cache, [next]), [
      { type: 'delete', obj: gone },
      { type: 'update', oldObj: old, obj: next },
    ]);
  });

  it('an empty list deletes everything; the same list twice changes nothing', () => {
    const items = [cm('a', '1'), cm('b', '2', { namespace: 'x' })];
    const cache = cacheOf();
    reconcile(cache, items);
    assert.deepEqual(
      reconcile(
        cache,
        items.map((o) => structuredClone(o)),
      ),
      [],
    );
    assert.deepEqual(summary(reconcile(cache, [])), ['delete ns/a@1', 'delete x/b@2']);
    assert.equal(cache.size, 0);
  });

  it('keys cluster-scoped objects by name', () => {
    const cache = new Map<string, ConfigMap>();
    reconcile(cache, [{ metadata: { name: 'n1', resourceVersion: '1' } }]);
    assert.deepEqual([...cache.keys()], ['n1']);
  });

  it('after reconcile the cache equals the list, whatever it held before', () => {
    const cache = cacheOf(cm('a', '1'), cm('b', '2'), cm('c', '3'));
    const listed = [cm('c', '30'), cm('d', '4'), cm('a', '1')];
    reconcile(cache, listed);
    assert.deepEqual(
      [...cache.values()].map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`).sort(),
      listed.map((o) => `${objectKey(o)}@${o.metadata?.resourceVersion}`).sort(),
    );
  });
});

describe('isExpiredError', () => {
  it('is true only for a KubeApiError with 410 or reason Expired/Gone', () => {
    assert.equal(isExpiredError(new KubeApiError('WATCH', '/api/v1/pods', 410, 'Expired', 'too old')), true);
    assert.equal(isExpiredError(new KubeApiError('GET', '/api/v1/pods', 400, 'Expired', 'continue too old')), true);
    assert.equal(isExpiredError(new KubeApiError('WATCH', '/api/v1/pods', 500, 'InternalError', 'boom')), false);
    assert.equal(isExpiredError(new KubeApiError('WATCH', '/api/v1/pods', 504, 'Timeout', 'too large resource version')), false);
    assert.equal(isExpiredError(new Error('410')), false);
  });
});

describe('jitteredTimeoutSeconds', () => {
  it('stays in [min, 2*min)', () => {
    assert.equal(
      jitteredTimeoutSeconds(300, () => 0),
      300,
    );
    assert.equal(
      jitteredTimeoutSeconds(300, () => 0.9999999),
      599,
    );
    assert.equal(
      jitteredTimeoutSeconds(1, () => 0.9),
      1,
    );
    for (let i = 0; i < 200; i++) {
      const t = jitteredTimeoutSeconds(30);
      assert.ok(Number.isInteger(t) && t >= 30 && t < 60, String(t));
    }
  });
});

describe('idleLimitMs', () => {
  it('outlasts the watch timeout for short watches and two bookmark periods for long ones', () => {
    assert.equal(idleLimitMs(1), 31_000);
    assert.equal(idleLimitMs(60), 90_000);
    assert.equal(idleLimitMs(300), 150_000);
    assert.equal(idleLimitMs(599), 150_000);
  });
});

describe('Informer without a server', () => {
  // Never called: these tests only cover lifecycle paths that do no I/O.
  const client = {} as KubeClient;

  it('waitForSync rejects when the informer is stopped before it synced', async () => {
    const informer = new Informer<ConfigMap>({ client, path: '/api/v1/configmaps', log: silentLogger });
    const waiting = informer.waitForSync();
    await informer.stop();
    await assert.rejects(waiting, { name: 'AbortError' });
    assert.equal(informer.hasSynced(), false);
    informer.start(); // a stopped informer stays stopped
    await informer.stop();
  });

  it('waitForSync rejects with the reason of its own signal', async () => {
    const informer = new Informer<ConfigMap>({ client, path: '/api/v1/configmaps', log: silentLogger });
    const controller = new AbortController();
    const waiting = informer.waitForSync(controller.signal);
    controller.abort(new Error('gave up'));
    await assert.rejects(waiting, /gave up/);
    await assert.rejects(informer.waitForSync(AbortSignal.abort(new Error('already'))), /already/);
    await informer.stop();
  });
});

describe('stripManagedFields', () => {
  it('drops metadata.managedFields and keeps the rest, in order', () => {
    const cm: ConfigMap = { metadata: { name: 'a', namespace: 'ns', managedFields: [{ manager: 'kubectl' }], labels: { x: 'y' } }, data: { k: 'v' } };
    stripManagedFields(cm);
    assert.deepEqual(cm, { metadata: { name: 'a', namespace: 'ns', labels: { x: 'y' } }, data: { k: 'v' } });
    assert.deepEqual(Object.keys(cm.metadata ?? {}), ['name', 'namespace', 'labels']);
    // `delete` would leave a dictionary-mode object (~300 bytes more per cached pod).
    setFlagsFromString('--allow-natives-syntax');
    const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: unknown) => boolean;
    assert.equal(hasFastProperties(cm.metadata), true);
    const plain: ConfigMap = { metadata: { name: 'b' } };
    const before = plain.metadata;
    stripManagedFields(plain);
    assert.equal(plain.metadata, before, 'nothing to drop: untouched');
  });
});
