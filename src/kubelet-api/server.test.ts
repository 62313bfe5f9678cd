// The kubelet API server in-process: auth decisions (with fake TokenReview/SubjectAccessReview),
// routing, errors, log options, and the hand-over of upgrade requests.
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { KubeClient } from '../kube/client.ts';
import { ContainerStateError, InvalidRequestError, NotFoundError, ProviderUnavailableError, TimeoutError, UnsupportedError, VkError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { parseMockConfig } from '../providers/mock/config.ts';
import { MockProvider } from '../providers/mock/mock-provider.ts';
import type { Provider } from '../providers/provider.ts';
import { KubeletAuth, TtlCache, requestAttributes, type ReviewClient } from './auth.ts';
import { selfSignedServingCert } from './certificates.ts';
import { boolParam, parseLogOptions } from '../kube/params.ts';
import { errorStatus } from './http.ts';
import { KubeletServer, pathBucket, type UpgradeRequest } from './server.ts';
import { KubeletApi } from './start.ts';
import { resourceMetricsText, StatsSource } from './stats.ts';
import { VkMetrics } from '../metrics.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const TOKENS: Record<string, { username: string; groups: string[] }> = {
  'admin-token': { username: 'admin', groups: ['system:masters'] },
  'reader-token': { username: 'reader', groups: ['readers'] },
  'nobody-token': { username: 'nobody', groups: [] },
};

/** Allows admin everything, reader get on nodes/stats and nodes/pods only. */
class FakeReviews implements ReviewClient {
  tokenReviews = 0;
  accessReviews: { user: string; verb: string; subresource: string; name: string }[] = [];
  async create<T>(path: string, body: unknown): Promise<T> {
    const spec = (body as { spec: Record<string, unknown> }).spec;
    if (path.endsWith('/tokenreviews')) {
      this.tokenReviews++;
      const user = TOKENS[spec.token as string];
      return { status: user ? { authenticated: true, user } : { authenticated: false, error: 'invalid token' } } as T;
    }
    const attrs = spec.resourceAttributes as { verb: string; subresource: string; name: string };
    this.accessReviews.push({ user: spec.user as string, ...attrs });
    const allowed = spec.user === 'admin' || (spec.user === 'reader' && attrs.verb === 'get' && ['stats', 'pods'].includes(attrs.subresource));
    return { status: { allowed } } as T;
  }
}

interface Reply {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
}

describe('kubelet API server', () => {
  let server: KubeletServer;
  let provider: MockProvider;
  const reviews = new FakeReviews();
  const upgrades: UpgradeRequest[] = [];

  before(async () => {
    provider = new MockProvider(parseMockConfig({ logIntervalMs: 20 }), { nodeName: 'vk-unit', log: silentLogger });
    await provider.createPod(
      {
        pod: {
          metadata: { name: 'web', namespace: 'ns', uid: 'uid-web' },
          spec: {
            containers: [
              { name: 'app', image: 'nginx' },
              { name: 'side', image: 'busybox' },
            ],
          },
        },
        volumes: new Map(),
      },
      call,
    );
    const cert = selfSignedServingCert({ nodeName: 'vk-unit', nodeIP: '127.0.0.1' });
    server = await KubeletServer.start({
      nodeName: 'vk-unit',
      provider,
      log: silentLogger,
      address: '127.0.0.1',
      port: 0,
      cert: cert.cert,
      key: cert.key,
      auth: new KubeletAuth(reviews, { nodeName: 'vk-unit', log: silentLogger }),
      healthChecks: { ping: () => undefined, provider: () => undefined },
    });
  });

  after(async () => {
    await server.close();
    await provider.close();
  });

  function request(path: string, o: { token?: string; method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: server.port,
          path,
          method: o.method ?? 'GET',
          rejectUnauthorized: false,
          headers: { ...(o.token && { Authorization: `Bearer ${o.token}` }), ...o.headers },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        },
      );
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers });
      });
      req.on('error', reject);
      req.end();
    });
  }

  const upgrade = (path: string, token = 'admin-token', method = 'POST') =>
    request(path, { token, method, headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' } });

  test('no credentials or an unknown token: 401; a user without rights: 403 in the kubelet style', async () => {
    assert.deepEqual(await request('/pods').then((r) => [r.status, r.body]), [401, 'Unauthorized\n']);
    assert.equal((await request('/pods', { token: 'bogus' })).status, 401);
    const denied = await request('/containerLogs/ns/web/app', { token: 'nobody-token' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[proxy])\n');
    const pods = await request('/pods', { token: 'nobody-token' });
    assert.equal(pods.body, 'Forbidden (user=nobody, verb=get, resource=nodes, subresource(s)=[pods proxy])\n');
  });

  test('fine-grained subresources first, then proxy; decisions and token reviews are cached', async () => {
    const before = { tokens: reviews.tokenReviews, access: reviews.accessReviews.length };
    assert.equal((await request('/pods', { token: 'reader-token' })).status, 200, 'reader has nodes/pods');
    assert.equal((await request('/stats/summary', { token: 'reader-token' })).status, 200, 'reader has nodes/stats');
    assert.equal((await request('/metrics/resource', { token: 'reader-token' })).status, 403, 'but not nodes/metrics');
    assert.equal((await request('/pods', { token: 'reader-token' })).status, 200);
    assert.equal(reviews.tokenReviews - before.tokens, 1, 'one token review for the reader');
    const reader = reviews.accessReviews.slice(before.access);
    assert.deepEqual(
      reader.map((r) => `${r.user} ${r.verb} ${r.subresource} ${r.name}`),
      ['reader get pods vk-unit', 'reader get stats vk-unit', 'reader get metrics vk-unit'],
    );
    assert.equal((await request('/exec/ns/web/app?command=ls', { token: 'reader-token', method: 'POST' })).status, 403);
    assert.deepEqual(reviews.accessReviews.at(-1), {
      user: 'reader',
      verb: 'create',
      subresource: 'proxy',
      name: 'vk-unit',
      group: '',
      version: 'v1',
      resource: 'nodes',
    });
  });

  test('routes: pods, healthz, unknown paths and methods', async () => {
    const pods = await request('/pods', { token: 'admin-token' });
    const list = JSON.parse(pods.body) as { kind: string; items: { metadata: { name: string } }[] };
    assert.equal(list.kind, 'PodList');
    assert.deepEqual(
      list.items.map((p) => p.metadata.name),
      ['web'],
    );
    assert.deepEqual(await request('/healthz', { token: 'admin-token' }).then((r) => [r.status, r.body]), [200, 'ok']);
    assert.equal((await request('/healthz?verbose', { token: 'admin-token' })).body, '[+]ping ok\n[+]provider ok\nhealthz check passed\n');
    assert.equal((await request('/healthz/ping', { token: 'admin-token' })).body, 'ok');
    assert.deepEqual(await request('/nope', { token: 'admin-token' }).then((r) => [r.status, r.body]), [404, '404 page not found\n']);
    assert.equal((await request('/pods', { token: 'admin-token', method: 'DELETE' })).status, 405);
    assert.equal((await request('/metrics', { token: 'admin-token' })).status, 404, 'no registry given');
  });

  test('container logs: options, validation errors, unknown pod and container', async () => {
    const logs = await request('/containerLogs/ns/web/app?tailLines=1&timestamps=true', { token: 'admin-token' });
    assert.equal(logs.status, 200);
    assert.match(logs.body, /^\d{4}-\d\d-\d\dT[\d:.]+Z mock web\/app: (started|tick \d+)/);
    assert.equal(logs.body.trim().split('\n').length, 1);
    assert.equal((await request('/containerLogs/ns/web/app?limitBytes=4', { token: 'admin-token' })).body, 'mock');
    for (const [query, message] of [
      ['tailLines=-1', 'invalid tailLines -1: must be greater than or equal to 0'],
      ['limitBytes=0', 'invalid limitBytes 0: must be greater than 0'],
      ['sinceSeconds=-5', 'invalid sinceSeconds -5: must be greater than 0'],
      ['sinceSeconds=5&sinceTime=2025-01-01T00:00:00Z', 'at most one of sinceTime or sinceSeconds may be specified'],
      ['sinceTime=yesterday', 'invalid sinceTime "yesterday": expected an RFC 3339 time such as 2025-01-02T15:04:05Z'],
      ['tailLines=ten', 'invalid value for tailLines: "ten" (expected an integer)'],
    ]) {
      assert.deepEqual(
        await request(`/containerLogs/ns/web/app?${query}`, { token: 'admin-token' }).then((r) => [r.status, r.body]),
        [400, `${message}\n`],
        query,
      );
    }
    assert.deepEqual(await request('/containerLogs/ns/ghost/app', { token: 'admin-token' }).then((r) => [r.status, r.body]), [
      404,
      'pod "ghost" does not exist in namespace "ns" on this node\n',
    ]);
    assert.deepEqual(await request('/containerLogs/ns/web/ghost', { token: 'admin-token' }).then((r) => [r.status, r.body]), [
      404,
      'container "ghost" not found in pod "web" in namespace "ns"\n',
    ]);
    // The status for the provider's own errors is by code: see 'errors answer with the status their code names' below.
    assert.equal(
      await request('/containerLogs/ns/web/app?previous=true', { token: 'admin-token' }).then((r) => r.body),
      'previous terminated container "app" in pod "web" not found\n',
    );
    // Clients that accept JSON (kubectl get --raw, client-go) get a Status whose message they show.
    const json = await request('/containerLogs/ns/ghost/app', { token: 'admin-token', headers: { Accept: 'application/json, */*' } });
    assert.equal(json.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(json.body), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pod "ghost" does not exist in namespace "ns" on this node',
      reason: 'NotFound',
      code: 404,
    });
  });

  test('following logs streams until the client disconnects, and the server keeps serving', async () => {
    const lines = await new Promise<string>((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port: server.port,
          path: '/containerLogs/ns/web/app?follow=true&tailLines=0',
          rejectUnauthorized: false,
          headers: { Authorization: 'Bearer admin-token' },
        },
        (res) => {
          let seen = '';
          res.on('data', (c: Buffer) => {
            seen += c.toString();
            if ((seen.match(/tick/g) ?? []).length >= 3) {
              req.destroy();
              resolve(seen);
            }
          });
        },
      );
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
    });
    assert.equal((lines.match(/tick/g) ?? []).length, 3);
    assert.equal((await request('/healthz', { token: 'admin-token' })).status, 200);
  });

  test('exec/attach/portForward: plain requests need an upgrade; upgrades are checked, then handed over', async () => {
    assert.deepEqual(await request('/exec/ns/web/app?command=ls', { token: 'admin-token', method: 'POST' }).then((r) => [r.status, r.body]), [
      400,
      'Upgrade request required\n',
    ]);
    assert.deepEqual(await upgrade('/exec/ns/web/app?command=ls').then((r) => [r.status]), [501], 'no handler registered yet');
    assert.equal((await upgrade('/exec/ns/web/app?command=ls', 'bogus')).status, 401);
    assert.equal((await upgrade('/exec/ns/web/app?command=ls', 'reader-token', 'GET')).status, 403);
    assert.equal((await upgrade('/exec/ns/ghost/app')).status, 404);
    assert.equal((await upgrade('/attach/ns/web/ghost')).status, 404);
    assert.equal((await upgrade('/portForward/ns/web/other-uid')).status, 404);
    assert.equal((await upgrade('/pods', 'admin-token', 'GET')).status, 400);

    server.setUpgradeHandler((request) => {
      upgrades.push(request);
      request.socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
    });
    assert.equal((await upgrade('/exec/ns/web/uid-web/side?command=echo&command=hi&output=1')).status, 101);
    assert.equal((await upgrade('/portForward/ns/web?port=80', 'admin-token', 'GET')).status, 101);
    assert.deepEqual(
      upgrades.map((u) => ({ route: u.route, namespace: u.namespace, pod: u.pod, container: u.container, uid: u.uid, command: u.query.getAll('command') })),
      [
        { route: 'exec', namespace: 'ns', pod: 'web', container: 'side', uid: 'uid-web', command: ['echo', 'hi'] },
        { route: 'portForward', namespace: 'ns', pod: 'web', container: undefined, uid: undefined, command: [] },
      ],
    );
  });
});

test('a provider without a capability gets a clear error, not a hang', async (t) => {
  const bare = {
    name: 'bare',
    getPod: async () => ({ metadata: { name: 'p', namespace: 'ns', uid: 'u' }, spec: { containers: [{ name: 'c' }] } }),
    listPods: async () => [],
  } as unknown as Provider;
  const cert = selfSignedServingCert({ nodeName: 'bare', nodeIP: '127.0.0.1' });
  const server = await KubeletServer.start({
    nodeName: 'bare',
    provider: bare,
    log: silentLogger,
    address: '127.0.0.1',
    port: 0,
    cert: cert.cert,
    key: cert.key,
  });
  t.after(() => server.close());
  server.setUpgradeHandler(() => assert.fail('must not be called'));
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    new Promise<[number, string]>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.port, path, method, headers, rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve([res.statusCode ?? 0, body]));
      });
      req.on('error', reject);
      req.end();
    });
  assert.deepEqual(await get('/containerLogs/ns/p/c'), [501, 'provider bare does not support container logs\n']);
  assert.deepEqual(await get('/exec/ns/p/c?command=ls', { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' }, 'POST'), [
    501,
    'provider bare does not support exec\n',
  ]);
  assert.deepEqual(
    await get('/portForward/ns/p', {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
    }),
    [501, 'provider bare does not support port forwarding\n'],
  );
  const summary = JSON.parse((await get('/stats/summary'))[1]) as { node: { nodeName: string; cpu?: unknown }; pods: unknown[] };
  assert.equal(summary.node.nodeName, 'bare');
  assert.equal(summary.node.cpu, undefined, 'no stats capability: no usage figures');
});

test('errors answer with the status their code names: 404 unknown pod, 400 container not running, 501 capability missing, 503 provider unavailable, 504 timeout', async (t) => {
  const pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u' },
    spec: { containers: ['stopped', 'waiting', 'down', 'slow', 'apiserver', 'broken'].map((name) => ({ name })) },
  };
  const failures: Record<string, () => Error> = {
    stopped: () => ContainerStateError.notRunning('p', 'stopped'),
    waiting: () => ContainerStateError.waiting('p', 'waiting'),
    down: () => new ProviderUnavailableError('backend unreachable'),
    slow: () => new TimeoutError('no answer in 5 s'),
    apiserver: () => new VkError('VK_KUBE_CONNECT', 'cannot reach the API server'),
    broken: () => new Error('unexpected'),
  };
  const stub = {
    name: 'stub',
    getPod: async (_namespace: string, name: string) => (name === 'p' ? pod : undefined),
    listPods: async () => [],
    getContainerLogs: async (_namespace: string, _pod: string, container: string) => {
      throw failures[container]!();
    },
  } as unknown as Provider;
  const cert = selfSignedServingCert({ nodeName: 'stub', nodeIP: '127.0.0.1' });
  const server = await KubeletServer.start({
    nodeName: 'stub',
    provider: stub,
    log: silentLogger,
    address: '127.0.0.1',
    port: 0,
    cert: cert.cert,
    key: cert.key,
  });
  t.after(() => server.close());
  const get = (path: string, method = 'GET', accept?: string) =>
    new Promise<[number, string]>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: server.port, path, method, headers: accept ? { Accept: accept } : {}, rejectUnauthorized: false },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve([res.statusCode ?? 0, body]));
        },
      );
      req.on('error', reject);
      req.end();
    });
  assert.deepEqual(await get('/containerLogs/ns/ghost/c'), [404, 'pod "ghost" does not exist in namespace "ns" on this node\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/stopped'), [400, 'container "stopped" in pod "p" is not running\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/waiting'), [400, 'container "waiting" in pod "p" is waiting to start: ContainerCreating\n']);
  assert.deepEqual(await get('/run/ns/p/stopped?cmd=ls', 'POST'), [501, 'provider stub does not support exec\n']);
  assert.deepEqual(await get('/run/ns/p/stopped', 'POST'), [400, 'missing cmd: pass the command as ?cmd=word+word\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/down'), [503, 'backend unreachable\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/slow'), [504, 'no answer in 5 s\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/apiserver'), [503, 'cannot reach the API server\n']);
  assert.deepEqual(await get('/containerLogs/ns/p/broken'), [500, 'unexpected\n']);
  const [status, body] = await get('/containerLogs/ns/p/slow', 'GET', 'application/json');
  assert.equal(status, 504);
  assert.deepEqual(JSON.parse(body), {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'no answer in 5 s',
    reason: 'Timeout',
    code: 504,
  });
});

test('errorStatus: the status by code, the message as thrown', () => {
  assert.deepEqual(errorStatus(new NotFoundError('no pod')), { status: 404, message: 'no pod' });
  assert.deepEqual(errorStatus(new InvalidRequestError('bad')), { status: 400, message: 'bad' });
  assert.deepEqual(errorStatus(ContainerStateError.noPrevious('p', 'c')), { status: 400, message: 'previous terminated container "c" in pod "p" not found' });
  assert.deepEqual(errorStatus(new UnsupportedError('no exec')), { status: 501, message: 'no exec' });
  assert.equal(errorStatus(new VkError('VK_KUBE_CONNECT', 'down')).status, 503);
  assert.equal(errorStatus(new TimeoutError('late')).status, 504);
  assert.equal(errorStatus(new VkError('VK_PROVIDER', 'failed')).status, 500);
  assert.equal(errorStatus('thrown string').message, 'thrown string');
});

test('boolean query parameters follow the parameter codec: absent, 0, f or false (any case) are false; anything else, empty included, is true', () => {
  const read = (query: string) => boolParam(new URLSearchParams(query), 'x');
  assert.deepEqual(['', 'y=1', 'x=0', 'x=f', 'x=F', 'x=false', 'x=False', 'x=FALSE'].map(read), [false, false, false, false, false, false, false, false]);
  assert.deepEqual(['x=', 'x', 'x=1', 'x=true', 'x=t', 'x=yes', 'x=00'].map(read), [true, true, true, true, true, true, true]);
});

test('request attributes follow the kubelet, including fine-grained subresources', () => {
  assert.deepEqual(requestAttributes('GET', '/stats/summary'), { verb: 'get', subresources: ['stats'] });
  assert.deepEqual(requestAttributes('GET', '/metrics/resource'), { verb: 'get', subresources: ['metrics'] });
  assert.deepEqual(requestAttributes('GET', '/metrics'), { verb: 'get', subresources: ['metrics'] });
  assert.deepEqual(requestAttributes('GET', '/logs/syslog'), { verb: 'get', subresources: ['log'] });
  assert.deepEqual(requestAttributes('GET', '/pods'), { verb: 'get', subresources: ['pods', 'proxy'] });
  assert.deepEqual(requestAttributes('GET', '/healthz/ping'), { verb: 'get', subresources: ['healthz', 'proxy'] });
  assert.deepEqual(requestAttributes('POST', '/exec/ns/p/c'), { verb: 'create', subresources: ['proxy'] });
  assert.deepEqual(requestAttributes('GET', '/containerLogs/ns/p/c'), { verb: 'get', subresources: ['proxy'] });
  assert.deepEqual(requestAttributes('GET', '/statsfoo'), { verb: 'get', subresources: ['proxy'] }, 'a prefix is not a subpath');
  assert.equal(pathBucket('/metrics/resource'), 'metrics/resource');
  assert.equal(pathBucket('/containerLogs/a/b/c'), 'containerLogs');
  assert.equal(pathBucket('/secret/../x'), 'other');
});

test('caches expire and stay bounded', () => {
  let now = 0;
  const cache = new TtlCache<number>(2, () => now);
  cache.set('a', 1, 100);
  cache.set('b', 2, 100);
  assert.equal(cache.get('a'), 1);
  cache.set('c', 3, 100); // evicts b, the least recently used
  assert.equal(cache.get('b'), undefined);
  assert.equal(cache.size, 2);
  now = 100;
  assert.equal(cache.get('a'), undefined, 'expired');
});

test('log options: tail=all, booleans as the parameter codec reads them, sinceSeconds relative to now', () => {
  const now = new Date(Date.UTC(2025, 0, 1));
  assert.deepEqual(parseLogOptions(new URLSearchParams('follow=true&previous=0&timestamps=1&tail=all'), now), {
    follow: true,
    previous: false,
    timestamps: true,
  });
  assert.deepEqual(parseLogOptions(new URLSearchParams('tail=5&sinceSeconds=60'), now), {
    follow: false,
    previous: false,
    timestamps: false,
    tailLines: 5,
    sinceTime: new Date(now.getTime() - 60_000),
  });
  assert.deepEqual(parseLogOptions(new URLSearchParams('sinceTime=2025-01-01T01:02:03.5%2B01:00')).sinceTime, new Date('2025-01-01T00:02:03.500Z'));
});

test('summary and resource metrics from the provider stats; the node CPU counter never goes back', async (t) => {
  let now = Date.UTC(2025, 0, 1, 12);
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'n', log: silentLogger, now: () => new Date(now) });
  t.after(() => provider.close());
  const pod = (name: string, uid: string) => ({
    pod: { metadata: { name, namespace: 'ns', uid }, spec: { containers: [{ name: 'c', image: 'i' }] } },
    volumes: new Map(),
  });
  await provider.createPod(pod('a', 'uid-a'), call);
  await provider.createPod(pod('b', 'uid-b'), call);
  now += 10_000;
  const stats = new StatsSource(provider, 'n', { startTime: new Date(Date.UTC(2025, 0, 1, 11)), now: () => new Date(now) });
  const first = await stats.summary(new AbortController().signal);
  assert.equal(first.node.startTime, '2025-01-01T11:00:00Z');
  assert.equal(first.pods.length, 2);
  const a = first.pods.find((p) => p.podRef.name === 'a')!;
  assert.deepEqual(a.podRef, { name: 'a', namespace: 'ns', uid: 'uid-a' });
  assert.equal(a.containers[0]!.startTime, '2025-01-01T12:00:00Z');
  assert.equal(a.cpu!.usageCoreNanoSeconds, a.containers[0]!.cpu!.usageCoreNanoSeconds);
  assert.equal(
    first.node.cpu!.usageNanoCores,
    first.pods.reduce((s, p) => s + p.cpu!.usageNanoCores!, 0),
  );
  const nodeCpu = first.node.cpu!.usageCoreNanoSeconds!;
  assert.ok(first.node.memory!.availableBytes! > 0);

  await provider.deletePod(pod('a', 'uid-a').pod, { ...call, reason: 'deleted' });
  const second = await stats.summary(new AbortController().signal);
  assert.equal(second.pods.length, 1);
  assert.ok(second.node.cpu!.usageCoreNanoSeconds! >= nodeCpu, 'monotonic after a pod left');

  const text = resourceMetricsText(second);
  assert.match(text, /^# HELP container_cpu_usage_seconds_total \[STABLE\] Cumulative cpu time consumed by the container in core-seconds$/m);
  assert.match(text, /^# TYPE container_cpu_usage_seconds_total counter$/m);
  assert.match(text, /^container_cpu_usage_seconds_total\{container="c",namespace="ns",pod="b"\} [\d.e+]+ \d{13}$/m);
  assert.match(text, /^container_start_time_seconds\{container="c",namespace="ns",pod="b"\} 1735732800$/m);
  for (const name of [
    'container_memory_working_set_bytes',
    'node_cpu_usage_seconds_total',
    'node_memory_working_set_bytes',
    'pod_cpu_usage_seconds_total',
    'pod_memory_working_set_bytes',
  ]) {
    assert.match(text, new RegExp(`^${name}[{ ]`, 'm'), name);
  }
  assert.match(text, /^resource_scrape_error 0$/m);
  assert.match(resourceMetricsText(undefined), /^resource_scrape_error 1$/m);
});

test("an empty node's figures are its own overhead (metrics-server drops a node reporting zero); with pods, pods plus overhead", async (t) => {
  let now = Date.UTC(2025, 0, 1, 12);
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'n', log: silentLogger, now: () => new Date(now) });
  t.after(() => provider.close());
  let system = { cpuCoreNanoSeconds: 2e9, workingSetBytes: 50e6 };
  const stats = new StatsSource(provider, 'n', { startTime: new Date(now - 10_000), now: () => new Date(now), system: () => system });
  const empty = await stats.summary(new AbortController().signal);
  assert.equal(empty.pods.length, 0);
  assert.equal(empty.node.cpu!.usageCoreNanoSeconds, 2e9);
  assert.equal(empty.node.cpu!.usageNanoCores, 0.2e9, '2 s of CPU over the 10 s since start');
  assert.equal(empty.node.memory!.workingSetBytes, 50e6);
  assert.match(resourceMetricsText(empty), /^node_cpu_usage_seconds_total 2 \d{13}$/m);

  await provider.createPod(
    { pod: { metadata: { name: 'a', namespace: 'ns', uid: 'uid-a' }, spec: { containers: [{ name: 'c', image: 'i' }] } }, volumes: new Map() },
    call,
  );
  now += 10_000;
  system = { cpuCoreNanoSeconds: 3e9, workingSetBytes: 60e6 };
  const busy = await stats.summary(new AbortController().signal);
  const pod = busy.pods[0]!;
  assert.equal(busy.node.cpu!.usageCoreNanoSeconds, pod.cpu!.usageCoreNanoSeconds! + 3e9);
  assert.equal(busy.node.cpu!.usageNanoCores, pod.cpu!.usageNanoCores! + 0.1e9, '1 s of CPU over the 10 s since the last summary');
  assert.equal(busy.node.memory!.workingSetBytes, pod.memory!.workingSetBytes! + 60e6);
});

test('--kubelet-auth=none serves everyone, with a warning at start; a busy port is named', async (t) => {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'open', log: silentLogger });
  t.after(() => provider.close());
  const options = { auth: 'none' as const, servingCert: 'self-signed' as const, csrTimeoutMs: 0, address: '127.0.0.1' };
  const api = await KubeletApi.start({} as KubeClient, provider, options, { nodeName: 'open', nodeIP: '127.0.0.1', port: 0 }, log);
  t.after(() => api.stop());
  assert.ok(
    lines.some((l) => /--kubelet-auth=none.*local development only/.test(l) && /"level":40/.test(l)),
    'a warning',
  );
  const reply = await new Promise<number>((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port: api.port, path: '/pods', rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
  assert.equal(reply, 200);
  await assert.rejects(
    KubeletApi.start({} as KubeClient, provider, options, { nodeName: 'open', nodeIP: '127.0.0.1', port: api.port }, silentLogger),
    new RegExp(`--kubelet-port ${api.port}: address already in use`),
  );
});

test('close() does not wait for a client that keeps a refused upgrade socket open', async () => {
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'n', log: silentLogger });
  const cert = selfSignedServingCert({ nodeName: 'n', nodeIP: '127.0.0.1' });
  const server = await KubeletServer.start({ nodeName: 'n', provider, log: silentLogger, address: '127.0.0.1', port: 0, cert: cert.cert, key: cert.key });
  // allowHalfOpen: the client never closes its side, as kube-apiserver did after a refused exec.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { host: '127.0.0.1', port: server.port, rejectUnauthorized: false, allowHalfOpen: true };
  const socket = tls.connect(options);
  const answer = await new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString();
      if (got.includes('\n\n') || got.endsWith('\n')) resolve(got);
    });
    socket.write('POST /exec/ns/ghost/c?command=ls HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n');
  });
  assert.match(answer, /^HTTP\/1\.1 404 Not Found/);
  const started = Date.now();
  await server.close();
  assert.ok(Date.now() - started < 2000, `closed in ${Date.now() - started} ms`);
  socket.destroy();
  await provider.close();
});

test("/metrics asks for the node's registry on each scrape, and not before the first", async (t) => {
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'scraped', log: silentLogger });
  t.after(() => provider.close());
  const cert = selfSignedServingCert({ nodeName: 'scraped', nodeIP: '127.0.0.1' });
  const metrics = new VkMetrics({ node: 'scraped' });
  metrics.setNodeName('scraped');
  let asked = 0;
  const registry = () => {
    asked++;
    return metrics.scrapeRegistry();
  };
  const server = await KubeletServer.start({
    nodeName: 'scraped',
    provider,
    log: silentLogger,
    address: '127.0.0.1',
    port: 0,
    cert: cert.cert,
    key: cert.key,
    registry,
  });
  t.after(() => server.close());
  assert.equal(asked, 0);
  const scrape = () =>
    new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port: server.port, path: '/metrics', rejectUnauthorized: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  const first = await scrape();
  assert.match(first, /^kubelet_node_name\{node="scraped"\} 1$/m);
  assert.match(first, /^process_cpu_seconds_total\{node="scraped"\} \d/m);
  metrics.podController().podCreated!(true, false);
  assert.match(await scrape(), /^kubelet_started_pods_total\{node="scraped"\} 1$/m);
  assert.equal(asked, 2);
});
