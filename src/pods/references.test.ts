// Until a reference's watch has synced, pods read it from the API: the reads of a burst of pods
// share one request per object or namespace, and a failed read is not remembered.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubeClient } from '../kube/client.ts';
import { silentLogger } from '../log.ts';
import { ReferenceWatcher } from './references.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function fakeClient() {
  const calls: string[] = [];
  const answers: ReturnType<typeof deferred<unknown>>[] = [];
  const answer = (path: string) => {
    calls.push(path);
    const next = deferred<unknown>();
    answers.push(next);
    return next.promise;
  };
  const client = { list: answer, get: answer } as unknown as KubeClient;
  return { client, calls, answers };
}

test('concurrent Service lists of one namespace before its watch syncs send one request; the next burst sends another', async () => {
  const { client, calls, answers } = fakeClient();
  const watcher = new ReferenceWatcher(client, silentLogger, () => {});
  const burst = Array.from({ length: 50 }, () => watcher.listServices('ns'));
  const other = watcher.listServices('default');
  assert.deepEqual(calls, ['/api/v1/namespaces/ns/services', '/api/v1/namespaces/default/services']);
  answers[0]!.resolve({ items: [{ metadata: { name: 'web' } }] });
  answers[1]!.resolve({ items: [] });
  for (const services of await Promise.all(burst)) assert.deepEqual(services, [{ metadata: { name: 'web' } }]);
  assert.deepEqual(await other, []);
  void watcher.listServices('ns');
  assert.equal(calls.length, 3, 'a read after the first one answered is a new request');
});

test('concurrent reads of one ConfigMap share a request and its failure; a later read tries again', async () => {
  const { client, calls, answers } = fakeClient();
  const watcher = new ReferenceWatcher(client, silentLogger, () => {});
  const first = watcher.getConfigMap('ns', 'cm');
  const second = watcher.getConfigMap('ns', 'cm');
  const secret = watcher.getSecret('ns', 'cm');
  assert.equal(calls.length, 2, 'a Secret of the same name is another object');
  answers[0]!.reject(new Error('connection refused'));
  await assert.rejects(first, /connection refused/);
  await assert.rejects(second, /connection refused/);
  answers[1]!.resolve({ metadata: { name: 'cm' } });
  assert.deepEqual(await secret, { metadata: { name: 'cm' } });
  const again = watcher.getConfigMap('ns', 'cm');
  assert.equal(calls.length, 3);
  answers[2]!.resolve({ metadata: { name: 'cm' }, data: { a: '1' } });
  assert.deepEqual(await again, { metadata: { name: 'cm' }, data: { a: '1' } });
});
