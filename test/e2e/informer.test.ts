// The informer against a real control plane: paged initial sync, event order, field
// selectors, re-watch after the server ends a stream, LIST retries until a collection exists,
// and a real 410 (a custom resource's watch cache starts at the CRD's creation, so a watch from
// resourceVersion 1 is "too old") forcing a relist that reconciles changes the informer missed.
// Also the client's metadata-only answers, which the status writer relies on for resourceVersions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startLocalCluster, type LocalCluster } from '../../src/cluster/local.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { Informer, objectKey, stripManagedFields, type InformerOptions } from '../../src/kube/informer.ts';
import type { ConfigMap, KubeObject } from '../../src/kube/types.ts';
import { ApiProxy } from '../harness/api-proxy.ts';
import { waitFor } from '../harness/wait.ts';

const suffix = randomBytes(4).toString('hex');
const ns = `informer-${suffix}`;
const cmPath = `/api/v1/namespaces/${ns}/configmaps`;
const group = `vk${suffix}.informer.test`;
const crdName = `widgets.${group}`;
const widgetPath = `/apis/${group}/v1/namespaces/${ns}/widgets`;

let cluster: LocalCluster | undefined;
let clusterDir: string | undefined;
let client: KubeClient;
const informers: Informer<KubeObject>[] = [];

interface LogLine {
  level: number;
  msg: string;
  informer?: string;
  [key: string]: unknown;
}

// Captures log lines so tests can assert on them and show them when a wait times out.
function capturingLogger(): { log: InformerOptions['log']; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

// For waitFor: the message (a function, called at the deadline) shows the state then.
const WAIT = { timeoutMs: 20_000, intervalMs: 25 };

// Records handler calls as 'add a', 'update a 12->13', 'delete a'.
function recorder<T extends KubeObject>(informer: Informer<T>): string[] {
  const seen: string[] = [];
  const name = (o: T) => o.metadata?.name ?? '?';
  informer.addHandlers({
    onAdd: (o) => void seen.push(`add ${name(o)}`),
    onUpdate: (o, n) => void seen.push(`update ${name(n)} ${o.metadata?.resourceVersion}->${n.metadata?.resourceVersion}`),
    onDelete: (o) => void seen.push(`delete ${name(o)}`),
  });
  return seen;
}

function newInformer<T extends KubeObject>(options: Omit<InformerOptions, 'client'> & { client?: KubeClient }): Informer<T> {
  const informer = new Informer<T>({ client, ...options });
  informers.push(informer as Informer<KubeObject>);
  return informer;
}

async function createCm(name: string, labels: Record<string, string> = {}, data: Record<string, string> = { v: '0' }): Promise<ConfigMap> {
  return await client.create<ConfigMap>(cmPath, { metadata: { name, labels }, data });
}

async function patchCm(name: string, data: Record<string, string>): Promise<ConfigMap> {
  return await client.patch<ConfigMap>(`${cmPath}/${name}`, { data });
}

async function deleteCm(name: string): Promise<void> {
  await client.delete(`${cmPath}/${name}`);
}

const sync = <T extends KubeObject>(informer: Informer<T>) => informer.waitForSync(AbortSignal.timeout(20_000));

before(async () => {
  let kubeconfig = process.env.VK_TEST_KUBECONFIG;
  if (!kubeconfig) {
    clusterDir = mkdtempSync(path.join(os.tmpdir(), 'vk-informer-test-'));
    cluster = await startLocalCluster({ dir: clusterDir });
    kubeconfig = cluster.info.kubeconfig;
  }
  client = await KubeClient.load({ kubeconfig });
  await client.create('/api/v1/namespaces', { metadata: { name: ns } });
});

after(async () => {
  await Promise.all(informers.map((i) => i.stop()));
  try {
    await client?.delete(`/api/v1/namespaces/${ns}`);
    await client?.delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crdName}`).catch(() => {});
  } finally {
    client?.close();
    await cluster?.stop();
    if (clusterDir) rmSync(clusterDir, { recursive: true, force: true });
  }
});

describe('Informer on ConfigMaps', () => {
  it('syncs pre-existing objects through a paged LIST, then sees new ones', async () => {
    await createCm('pre-1', { suite: 'sync' });
    await createCm('pre-2', { suite: 'sync' });
    await createCm('pre-3', { suite: 'sync' });
    await createCm('unrelated', { suite: 'other' });
    const { log, lines } = capturingLogger();
    const listsBefore = client.requestCounts.get('list') ?? 0;
    const informer = newInformer<ConfigMap>({ path: cmPath, labelSelector: 'suite=sync', pageSize: 2, log });
    const seen = recorder(informer);
    assert.equal(informer.hasSynced(), false);
    informer.start();
    await sync(informer);

    assert.equal(informer.hasSynced(), true);
    assert.deepEqual(seen, ['add pre-1', 'add pre-2', 'add pre-3']);
    assert.deepEqual(informer.list().map(objectKey).sort(), [`${ns}/pre-1`, `${ns}/pre-2`, `${ns}/pre-3`]);
    assert.equal(informer.get(`${ns}/pre-2`)?.metadata?.name, 'pre-2');
    assert.equal(informer.get(`${ns}/unrelated`), undefined);
    assert.equal((client.requestCounts.get('list') ?? 0) - listsBefore, 2, 'three items at pageSize 2 take two pages');
    assert.match(informer.lastResourceVersion ?? '', /^\d+$/);

    // A handler added late is replayed the cache.
    const late = recorder(informer);
    assert.deepEqual(late, ['add pre-1', 'add pre-2', 'add pre-3']);

    await createCm('post', { suite: 'sync' });
    await waitFor(
      () => `add post in ${JSON.stringify(seen)}`,
      () => seen.includes('add post') && late.includes('add post'),
      WAIT,
    );
    assert.ok(lines.length > 0 && lines.every((l) => l.informer === cmPath), 'every log line names the path');
    assert.deepEqual(
      lines.filter((l) => l.level >= 40),
      [],
      'no warnings on the happy path',
    );
  });

  it('delivers add, update and delete in order, and survives a throwing handler', async () => {
    const { log, lines } = capturingLogger();
    const informer = newInformer<ConfigMap>({ path: cmPath, labelSelector: 'suite=order', log });
    let thrown = 0;
    informer.addHandlers({
      onAdd: () => {
        thrown++;
        throw new Error('handler bug');
      },
    });
    const seen = recorder(informer);
    informer.start();
    await sync(informer);
    assert.equal(seen.length, 0, JSON.stringify(seen));

    const a1 = await createCm('a', { suite: 'order' });
    const a2 = await patchCm('a', { v: '1' });
    const b1 = await createCm('b', { suite: 'order' });
    await deleteCm('a');
    const b2 = await patchCm('b', { v: '2' });
    const b3 = await patchCm('b', { v: '3' });
    await deleteCm('b');
    await waitFor(
      () => `delete b in ${JSON.stringify(seen)}`,
      () => seen.includes('delete b'),
      WAIT,
    );
    const rv = (o: ConfigMap) => o.metadata?.resourceVersion;
    assert.deepEqual(seen, [
      'add a',
      `update a ${rv(a1)}->${rv(a2)}`,
      'add b',
      'delete a',
      `update b ${rv(b1)}->${rv(b2)}`,
      `update b ${rv(b2)}->${rv(b3)}`,
      'delete b',
    ]);
    assert.deepEqual(informer.list(), []);
    assert.equal(thrown, 2);
    const handlerErrors = lines.filter((l) => l.msg === 'informer handler threw');
    assert.equal(handlerErrors.length, 2);
    assert.ok(handlerErrors.every((l) => l.level === 50 && l.informer === cmPath));
    assert.ok(BigInt(informer.lastResourceVersion ?? '0') >= BigInt(b3.metadata?.resourceVersion ?? 'x'));
  });

  it('honours a fieldSelector in both LIST and WATCH', async () => {
    await createCm('picked', { suite: 'field' });
    await createCm('ignored', { suite: 'field' });
    const { log } = capturingLogger();
    const informer = newInformer<ConfigMap>({ path: cmPath, fieldSelector: 'metadata.name=picked', log });
    const seen = recorder(informer);
    informer.start();
    await sync(informer);
    assert.deepEqual(seen, ['add picked']);

    await patchCm('ignored', { v: 'x' });
    const picked = await patchCm('picked', { v: 'y' });
    // One stream is in resourceVersion order: had 'ignored' been sent, it would have come first.
    await waitFor(
      () => `the update of picked in ${JSON.stringify(seen)}`,
      () => seen.length >= 2,
      WAIT,
    );
    assert.match(seen[1] ?? '', new RegExp(`^update picked \\d+->${picked.metadata?.resourceVersion}$`));
    await deleteCm('ignored');
    await deleteCm('picked');
    await waitFor(
      () => `delete picked in ${JSON.stringify(seen)}`,
      () => seen.length >= 3,
      WAIT,
    );
    assert.deepEqual(seen.slice(2), ['delete picked']);
  });

  it('a transform edits listed and watched objects before they are cached (stripManagedFields)', async () => {
    const listed = await createCm('stripped-listed', { suite: 'transform' });
    assert.ok(listed.metadata?.managedFields?.length, 'the API server records managedFields');
    const { log } = capturingLogger();
    const informer = newInformer<ConfigMap>({ path: cmPath, labelSelector: 'suite=transform', log, transform: stripManagedFields });
    informer.start();
    await sync(informer);
    await createCm('stripped-watched', { suite: 'transform' });
    await patchCm('stripped-listed', { v: 'changed' });
    await waitFor(
      'both objects in the cache',
      () => informer.get(`${ns}/stripped-watched`) !== undefined && informer.get(`${ns}/stripped-listed`)?.data?.v === 'changed',
      WAIT,
    );
    for (const cm of informer.list()) assert.equal(cm.metadata?.managedFields, undefined, `${cm.metadata?.name} has no managedFields`);
  });

  it("a metadataOnly write is answered with the object's metadata alone, resourceVersion included", async () => {
    await createCm('metadata-only', {}, { v: 'before' });
    const answer = await client.patch<KubeObject & { data?: unknown }>(`${cmPath}/metadata-only`, { data: { v: 'after' } }, undefined, {
      metadataOnly: true,
    });
    assert.equal(answer.kind, 'PartialObjectMetadata');
    assert.equal(answer.data, undefined, 'the data is not sent back');
    const stored = await client.get<ConfigMap>(`${cmPath}/metadata-only`);
    assert.equal(stored.data?.v, 'after');
    assert.equal(answer.metadata?.resourceVersion, stored.metadata?.resourceVersion);
  });

  it('re-watches from the last resourceVersion when the server ends the stream, without relisting', async () => {
    // Its own client, so its request counts are this informer's alone; through a proxy that can cut its watch.
    const proxy = await ApiProxy.start(client.config);
    const own = await KubeClient.load({ kubeconfig: proxy.kubeconfig });
    try {
      const { log, lines } = capturingLogger();
      const informer = newInformer<ConfigMap>({ client: own, path: cmPath, labelSelector: 'suite=rewatch', watchTimeoutSeconds: 1, log });
      const seen = recorder(informer);
      informer.start();
      await sync(informer);
      const watches = () => own.requestCounts.get('watch') ?? 0;
      // Each watch asks for timeoutSeconds=1, so the server ends it and the informer must come back.
      await waitFor(
        () => `3 watches, have ${watches()}`,
        () => watches() >= 3,
        WAIT,
      );
      await createCm('r1', { suite: 'rewatch' });
      await waitFor(
        () => `add r1 in ${JSON.stringify(seen)}`,
        () => seen.includes('add r1'),
        WAIT,
      );
      const atPause = watches();
      await waitFor(
        () => `2 more watches, have ${watches() - atPause}`,
        () => watches() >= atPause + 2,
        WAIT,
      );
      await patchCm('r1', { v: 'after-rewatch' });
      await waitFor(
        () => `update r1 in ${JSON.stringify(seen)}`,
        () => seen.length === 2,
        WAIT,
      );
      assert.equal(own.requestCounts.get('list'), 1, 'a closed stream must not cause a relist');
      assert.ok(lines.some((l) => l.msg === 'watch closed; watching again' && l.level === 20));
      assert.deepEqual(
        lines.filter((l) => l.level >= 40),
        [],
      );

      // A watch broken off while changes happen resumes from the last resourceVersion and replays them.
      proxy.cutWatches();
      await proxy.watchHeld();
      await patchCm('r1', { v: 'missed' });
      await createCm('r2', { suite: 'rewatch' });
      proxy.restoreWatches();
      await waitFor(
        () => `add r2 in ${JSON.stringify(seen)}`,
        () => seen.includes('add r2'),
        WAIT,
      );
      assert.match(seen[2] ?? '', /^update r1 /);
      assert.equal(seen[3], 'add r2');
      assert.equal(own.requestCounts.get('list'), 1);
      await informer.stop();
    } finally {
      own.close();
      await proxy.close();
    }
  });

  it('stop() ends an open watch promptly', async () => {
    const { log } = capturingLogger();
    const informer = newInformer<ConfigMap>({ path: cmPath, labelSelector: 'suite=stop', log });
    const watches = () => client.requestCounts.get('watch') ?? 0;
    const before = watches();
    informer.start();
    await sync(informer);
    await waitFor('the watch to be open', () => watches() > before, WAIT);
    const started = Date.now();
    await informer.stop();
    assert.ok(Date.now() - started < 2_000, `stop took ${Date.now() - started} ms`);
  });
});

interface Widget extends KubeObject {
  spec?: { size?: number };
}

let crdReady: Promise<void> | undefined;
function ensureCrd(): Promise<void> {
  crdReady ??= (async () => {
    await client.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
      metadata: { name: crdName },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
      },
    });
    // Established can precede the first successful LIST by a moment; wait for both.
    await waitFor(
      `${widgetPath} to be served`,
      async () => {
        try {
          await client.list(widgetPath);
          return true;
        } catch {
          return false;
        }
      },
      WAIT,
    );
  })();
  return crdReady;
}

async function createWidget(name: string, size = 0): Promise<Widget> {
  return await client.create<Widget>(widgetPath, { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name }, spec: { size } });
}

describe('Informer on a custom resource', () => {
  it('keeps retrying a failing LIST with backoff until the collection exists', async () => {
    const { log, lines } = capturingLogger();
    const informer = newInformer<Widget>({ path: widgetPath, log });
    informer.start();
    const failures = () => lines.filter((l) => l.msg === 'list failed; retrying');
    await waitFor(
      () => `two LIST failures logged, have ${JSON.stringify(lines)}`,
      () => failures().length >= 2,
      WAIT,
    );
    assert.equal(informer.hasSynced(), false);
    const [first, second] = failures();
    assert.ok(first && second && first.level === 40 && first.informer === widgetPath);
    assert.ok((second.retryInMs as number) > (first.retryInMs as number), 'the retry delay grows');
    await ensureCrd();
    await sync(informer);
    const seen = recorder(informer);
    await createWidget('early');
    await waitFor(
      () => `add early in ${JSON.stringify(seen)}`,
      () => seen.includes('add early'),
      WAIT,
    );
  });

  it('relists on a real 410 and reconciles what it missed: delete, update, add, recreate', async () => {
    await ensureCrd();
    await createWidget('w-keep');
    await createWidget('w-change');
    await createWidget('w-delete');
    const recreatedBefore = await createWidget('w-recreate');
    const { log, lines } = capturingLogger();
    const proxy = await ApiProxy.start(client.config);
    const own = await KubeClient.load({ kubeconfig: proxy.kubeconfig });
    try {
      // Its watch never reaches the server until the proxy lets it through.
      proxy.cutWatches();
      const informer = newInformer<Widget>({ client: own, path: widgetPath, log });
      informer.start();
      await sync(informer);
      const seen = recorder(informer);
      seen.length = 0; // drop the replayed initial adds
      const keptBefore = informer.get(`${ns}/w-keep`);
      const changedBefore = informer.get(`${ns}/w-change`);
      assert.ok(keptBefore && changedBefore && informer.get(`${ns}/w-delete`));

      // Changes the informer does not see: its watch is down.
      await proxy.watchHeld();
      const changed = await client.patch<Widget>(`${widgetPath}/w-change`, { spec: { size: 7 } });
      await client.delete(`${widgetPath}/w-delete`);
      await client.delete(`${widgetPath}/w-recreate`);
      const recreated = await createWidget('w-recreate', 1);
      await createWidget('w-new');
      assert.notEqual(recreated.metadata?.uid, recreatedBefore.metadata?.uid);

      // The custom resource's watch cache begins after resourceVersion 1: the server answers 410.
      const listsBefore = own.requestCounts.get('list') ?? 0;
      proxy.restoreWatches({ resourceVersion: '1' });
      await waitFor(
        () => `5 reconcile events in ${JSON.stringify(seen)}; log ${JSON.stringify(lines)}`,
        () => seen.length >= 5,
        WAIT,
      );
      assert.deepEqual(seen, [
        'delete w-delete',
        `update w-change ${changedBefore.metadata?.resourceVersion}->${changed.metadata?.resourceVersion}`,
        'add w-new',
        'delete w-recreate',
        'add w-recreate',
      ]);
      assert.ok(lines.some((l) => l.msg === 'watch expired (410); relisting' && /too old resource version/.test(String(l.status))));
      assert.equal((own.requestCounts.get('list') ?? 0) - listsBefore, 1, 'exactly one relist');
      assert.equal(informer.get(`${ns}/w-keep`), keptBefore, 'an unchanged object keeps its cached copy');
      assert.equal(informer.get(`${ns}/w-delete`), undefined);
      assert.equal(informer.get(`${ns}/w-recreate`)?.metadata?.uid, recreated.metadata?.uid);
      assert.equal(informer.get(`${ns}/w-change`)?.spec?.size, 7);
      const names = informer
        .list()
        .map((w) => w.metadata?.name ?? '')
        .filter((n) => n.startsWith('w-'));
      assert.deepEqual(names.sort(), ['w-change', 'w-keep', 'w-new', 'w-recreate']);

      // And it watches again from the relist's resourceVersion.
      await createWidget('w-after');
      await waitFor(
        () => `add w-after in ${JSON.stringify(seen)}`,
        () => seen.includes('add w-after'),
        WAIT,
      );
      assert.equal(seen.length, 6);
      assert.deepEqual(
        lines.filter((l) => l.level >= 40),
        [],
      );
      await informer.stop();
    } finally {
      own.close();
      await proxy.close();
    }
  });
});
