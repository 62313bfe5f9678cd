// The remote provider protocol without a cluster: the mock provider behind serveProvider(),
// driven through RemoteProvider, plus hand-made servers and clients that send bad input both ways.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { AbortedError, ContainerStateError, NotFoundError, PodRejectedError, ProviderUnavailableError, TryLaterError, VkError } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import { serveProvider, type ProviderServer, type ServeProviderOptions } from '../../provider-sdk/server.ts';
import { parseMockConfig } from '../mock/config.ts';
import { MockProvider } from '../mock/mock-provider.ts';
import {
  providerCapabilities,
  type CallOptions,
  type DeleteOptions,
  type LogOptions,
  type PodEvent,
  type PodEventListener,
  type Provider,
  type ResolvedPod,
} from '../provider.ts';
import { parseRemoteConfig } from './config.ts';
import { RemoteProvider } from './remote-provider.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import { tempDir } from '../../../test/harness/temp.ts';

const log = silentLogger;

const call = { signal: new AbortController().signal };

function podFor(name: string, uid: string, extra: { annotations?: Record<string, string>; containers?: object[]; restartPolicy?: string } = {}): Pod {
  return {
    metadata: { namespace: 'ns', name, uid, annotations: extra.annotations ?? {} },
    spec: {
      nodeName: 'n',
      restartPolicy: extra.restartPolicy ?? 'Always',
      containers: (extra.containers as never) ?? [{ name: 'c', image: 'busybox', env: [{ name: 'GREETING', value: 'hi' }] }],
    },
  };
}

function resolved(pod: Pod): ResolvedPod {
  return {
    pod,
    volumes: new Map([
      ['cfg', { name: 'cfg', type: 'files', source: 'configMap', files: [{ path: 'a/b.txt', content: new Uint8Array([0, 1, 2, 255, 10]), mode: 0o600 }] }],
      ['scratch', { name: 'scratch', type: 'emptyDir', medium: 'Memory', sizeLimit: '1Gi' }],
    ]),
    pullSecrets: [
      {
        metadata: { name: 'registry', namespace: pod.metadata?.namespace },
        type: 'kubernetes.io/dockerconfigjson',
        data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') },
      },
    ],
  };
}

interface Backend {
  mock: MockProvider;
  server: ProviderServer;
  remote: RemoteProvider;
}

async function backend(
  t: { after: (fn: () => unknown) => void },
  options: { mock?: unknown; server?: Partial<ServeProviderOptions>; remote?: Record<string, unknown> } = {},
): Promise<Backend> {
  const mock = new MockProvider(parseMockConfig({ logIntervalMs: 50, ...(options.mock as object) }), { nodeName: 'n', log });
  const server = await serveProvider(mock, { port: 0, log, ...options.server });
  const remote = await RemoteProvider.connect({ endpoint: server.url, timeoutMs: 5_000, connectTimeoutMs: 2_000, ...options.remote }, { log });
  t.after(async () => {
    await remote.close();
    await server.close();
    await mock.close();
  });
  return { mock, server, remote };
}

describe('the mock provider behind the protocol', () => {
  test('capabilities mirror the server; the pod lifecycle round-trips; volumes arrive byte for byte', async (t) => {
    const { mock, remote } = await backend(t);
    assert.equal(remote.name, 'mock');
    assert.deepEqual(providerCapabilities(remote), providerCapabilities(mock));
    assert.equal(remote.nodeConfig?.().capacity.pods, '10000');

    await remote.createPod(resolved(podFor('p', 'u1')), call);
    await remote.createPod(resolved(podFor('p', 'u1')), call); // idempotent per UID
    assert.equal(mock.podCount(), 1);
    const got = await remote.getPod('ns', 'p', call);
    assert.equal(got?.metadata?.uid, 'u1');
    assert.equal(got?.status?.phase, 'Running');
    assert.equal((await remote.getPodStatus('ns', 'p', call))?.phase, 'Running');
    assert.deepEqual(
      (await remote.listPods(call)).map((p) => p.metadata?.name),
      ['p'],
    );
    assert.equal(await remote.getPod('ns', 'nope', call), undefined);
    assert.equal(await remote.getPodStatus('ns', 'nope', call), undefined);

    const received = mock.resolvedPod('ns', 'p');
    const cfg = received?.volumes.get('cfg');
    assert.ok(cfg?.type === 'files');
    assert.deepEqual(cfg.files, [{ path: 'a/b.txt', content: new Uint8Array([0, 1, 2, 255, 10]), mode: 0o600 }]);
    assert.deepEqual(received?.volumes.get('scratch'), { name: 'scratch', type: 'emptyDir', medium: 'Memory', sizeLimit: '1Gi' });
    assert.deepEqual((await remote.resolvedPod!('ns', 'p'))?.volumes.get('cfg'), cfg);
    // imagePullSecrets travel with the pod: name, type and data.
    assert.deepEqual(
      received?.pullSecrets?.map((s) => [s.metadata?.name, s.metadata?.namespace, s.type, s.data]),
      [['registry', 'ns', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') }]],
    );

    const updated = podFor('p', 'u1', { containers: [{ name: 'c', image: 'busybox:2' }] });
    await remote.updatePod(resolved(updated), call);
    assert.equal(mock.resolvedPod('ns', 'p')?.pod.spec?.containers[0]?.image, 'busybox:2');

    await assert.rejects(remote.deletePod(podFor('p', 'other-uid'), { ...call, reason: 'deleted' }), NotFoundError);
    await remote.deletePod(podFor('p', 'u1'), { ...call, reason: 'deleted' });
    assert.equal(await remote.getPod('ns', 'p', call), undefined);
    await assert.rejects(remote.deletePod(podFor('p', 'u1'), { ...call, reason: 'deleted' }), NotFoundError);
  });

  test('a provider error keeps its message; a poll-only provider declares no notifyPods', async (t) => {
    const { remote } = await backend(t, { mock: { notify: false } });
    assert.equal(remote.notifyPods, undefined);
    await assert.rejects(
      remote.createPod(resolved(podFor('f', 'u', { annotations: { 'mock.vk.io/fail-create': 'quota exceeded in region' } })), call),
      (err: Error) => err instanceof VkError && err.message === 'quota exceeded in region',
    );
  });

  test('the status stream pushes changes, and after the server comes back every pod is handed over again', async (t) => {
    const { mock, server, remote } = await backend(t, { mock: { lifecycle: { runningDelayMs: 100 } }, server: { heartbeatIntervalMs: 200 } });
    const seen: Pod[] = [];
    remote.notifyPods!((pod) => seen.push(pod));
    await waitFor('the stream to connect', () => remote.streaming);
    await remote.createPod(resolved(podFor('w', 'u1')), call);
    await waitFor('a Running push', () => seen.some((p) => p.metadata?.name === 'w' && p.status?.phase === 'Running'));

    // The server goes away and comes back on the same port (the backend kept its pods).
    const port = server.port;
    await server.close();
    await waitFor('the stream to notice', () => !remote.streaming);
    await assert.rejects(remote.ping(AbortSignal.timeout(2_000)), /remote provider at http:\/\/127\.0\.0\.1:\d+ is unreachable: .*ECONNREFUSED/);
    seen.length = 0;
    const again = await serveProvider(mock, { port, log, heartbeatIntervalMs: 200 });
    t.after(() => again.close());
    await waitFor('the stream to reconnect', () => remote.streaming && remote.streamConnections >= 2, { timeoutMs: 15_000 });
    await waitFor('every pod handed over again', () => seen.some((p) => p.metadata?.name === 'w'));
    await remote.ping(AbortSignal.timeout(2_000));
  });

  test('ping reports an unhealthy backend with its message', async (t) => {
    const { mock, remote } = await backend(t);
    mock.setHealthy(false, 'backend down for maintenance');
    await assert.rejects(remote.ping(AbortSignal.timeout(2_000)), /remote provider reports it is unhealthy: backend down for maintenance/);
    mock.setHealthy(true);
    await remote.ping(AbortSignal.timeout(2_000));
  });

  test('exec: stdout, stderr, exit codes, a large stdin round trip, tty; errors keep their type', async (t) => {
    const { remote } = await backend(t);
    await remote.createPod(resolved(podFor('x', 'u1')), call);
    const run = async (command: string[], input?: string, tty = false) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      stdout.on('data', (c: Buffer) => out.push(c));
      stderr.on('data', (c: Buffer) => err.push(c));
      const code = await remote.runInContainer!('ns', 'x', 'c', command, {
        stdin: input === undefined ? undefined : Readable.from([Buffer.from(input)]),
        stdout,
        stderr,
        tty,
        signal: new AbortController().signal,
        ...(tty && {
          resize: (async function* () {
            yield { width: 80, height: 24 };
          })(),
        }),
      });
      return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
    };
    assert.deepEqual(await run(['sh', '-c', 'echo hi; echo oops >&2; exit 3']), { code: 3, stdout: 'hi\n', stderr: 'oops\n' });
    assert.deepEqual(await run(['printenv', 'GREETING']), { code: 0, stdout: 'hi\n', stderr: '' });
    const big = 'line of input\n'.repeat(40_000);
    const echoed = await run(['cat'], big);
    assert.equal(echoed.stdout.length, big.length);
    assert.equal(echoed.stdout, big);
    assert.match((await run(['sh', '-c', 'hostname'], undefined, true)).stdout, /^x\r\n$/);
    await assert.rejects(
      remote.runInContainer!('ns', 'x', 'nope', ['true'], { tty: false, signal: new AbortController().signal }),
      (err: Error) => err instanceof NotFoundError && /container "nope" not found/.test(err.message),
    );
    await assert.rejects(remote.runInContainer!('ns', 'missing', 'c', ['true'], { tty: false, signal: new AbortController().signal }), NotFoundError);
  });

  test('attach echoes stdin back; port-forward echoes and answers HTTP on port 80', async (t) => {
    const { remote } = await backend(t);
    await remote.createPod(resolved(podFor('a', 'u1', { containers: [{ name: 'c', image: 'busybox', stdin: true, stdinOnce: true }] })), call);
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    await remote.attachToContainer!('ns', 'a', 'c', {
      stdin: Readable.from([Buffer.from('attached input\n')]),
      stdout,
      tty: false,
      signal: new AbortController().signal,
    });
    assert.match(out, /attached input/);

    // A socket pair: one end to the provider, the other is "kubectl".
    const forward = async (port: number, send: string, halfClose: boolean) => {
      const server = net.createServer({ allowHalfOpen: true });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
      const inner = await accepted;
      const done = remote.portForward!('ns', 'a', port, inner);
      let reply = '';
      client.on('data', (c: Buffer) => (reply += c.toString()));
      const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
      client.write(send);
      if (halfClose) client.end();
      await ended;
      client.destroy();
      await done;
      server.close();
      return reply;
    };
    assert.equal(await forward(7000, 'echo me', true), 'echo me');
    assert.match(await forward(80, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', false), /^HTTP\/1\.1 200 OK[\s\S]*hello from a\n$/);
  });

  test('logs: tail, and follow until aborted', async (t) => {
    const { remote } = await backend(t);
    await remote.createPod(resolved(podFor('l', 'u1', { annotations: { 'mock.vk.io/log-lines': 'first line' } })), call);
    const read = async (stream: Readable) => {
      let text = '';
      for await (const chunk of stream) text += chunk.toString();
      return text;
    };
    const all = await read(
      await remote.getContainerLogs!('ns', 'l', 'c', { follow: false, previous: false, timestamps: false, signal: new AbortController().signal }),
    );
    assert.match(all, /first line/);
    const tail = await read(
      await remote.getContainerLogs!('ns', 'l', 'c', { follow: false, previous: false, timestamps: false, tailLines: 1, signal: new AbortController().signal }),
    );
    assert.equal(tail.trimEnd().split('\n').length, 1);
    const abort = new AbortController();
    const follower = await remote.getContainerLogs!('ns', 'l', 'c', { follow: true, previous: false, timestamps: false, tailLines: 0, signal: abort.signal });
    let followed = '';
    follower.on('data', (c: Buffer) => (followed += c.toString()));
    await waitFor('two followed lines', () => followed.split('\n').length > 2);
    abort.abort();
    await waitFor('the follower to end', () => follower.destroyed);
    await assert.rejects(
      remote.getContainerLogs!('ns', 'l', 'nope', { follow: false, previous: false, timestamps: false, signal: new AbortController().signal }),
      NotFoundError,
    );
  });

  test('stats arrive for running pods', async (t) => {
    const { remote } = await backend(t);
    await remote.createPod(resolved(podFor('s', 'u1')), call);
    const stats = await remote.getStats!();
    assert.equal(stats[0]?.name, 's');
    assert.ok((stats[0]?.containers[0]?.memoryWorkingSetBytes ?? 0) > 0);
  });
});

describe('bad input from a client never reaches the provider', () => {
  let server: ProviderServer;
  let mock: MockProvider;
  before(async () => {
    mock = new MockProvider(parseMockConfig({}), { nodeName: 'n', log });
    server = await serveProvider(mock, { port: 0, log, maxRequestBytes: 64 << 10, token: 'sekret' });
  });
  after(async () => {
    await server.close();
    await mock.close();
  });

  const request = (method: string, path: string, options: { body?: string | Buffer; headers?: Record<string, string>; agent?: http.Agent } = {}) => {
    return new Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }>((resolve, reject) => {
      const req = http.request(
        `${server.url}${path}`,
        {
          method,
          agent: options.agent,
          headers: { authorization: 'Bearer sekret', ...(options.body !== undefined && { 'content-type': 'application/json' }), ...options.headers },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as never) : {} }));
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });
  };

  test('unknown versions are 400 UnsupportedVersion, unknown paths 404', async () => {
    assert.deepEqual(await request('GET', '/v2/pods'), {
      status: 400,
      body: {
        error: {
          code: 'UnsupportedVersion',
          message:
            'protocol version v2 is not supported by this server; it speaks v1 paths (protocol versions 1 and 2, chosen with the vk-provider-protocol header)',
        },
      },
    });
    const header = await request('GET', '/v1/pods', { headers: { 'vk-provider-protocol': '3' } });
    assert.equal(header.status, 400);
    assert.equal(header.body.error?.code, 'UnsupportedVersion');
    assert.equal((await request('GET', '/v1/nothing')).body.error?.code, 'UnknownPath');
    assert.equal((await request('GET', '/pods')).status, 404);
    assert.equal((await request('GET', '/v1/pods/%E0%A4%A/x')).body.error?.code, 'BadRequest');
  });

  test('a missing or wrong token is 401', async () => {
    assert.equal((await request('GET', '/v1/pods', { headers: { authorization: '' } })).status, 401);
    assert.equal((await request('GET', '/v1/pods', { headers: { authorization: 'Bearer wrong' } })).status, 401);
  });

  test('malformed JSON, wrong fields and wrong media types are 400/415 naming the problem', async () => {
    const malformed = await request('POST', '/v1/pods', { body: '{"pod": ' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error?.message ?? '', /^malformed JSON in request body: /);
    const noUid = await request('POST', '/v1/pods', { body: JSON.stringify({ pod: { metadata: { namespace: 'a', name: 'b' } } }) });
    assert.equal(noUid.body.error?.message, 'invalid request body: pod.metadata.uid: required (string)');
    const badVolume = await request('POST', '/v1/pods', {
      body: JSON.stringify({ pod: { metadata: { namespace: 'a', name: 'b', uid: 'u' } }, volumes: [{ name: 'v', type: 'hostPath' }] }),
    });
    assert.match(badVolume.body.error?.message ?? '', /^invalid request body: volumes\[0\]\.type/);
    assert.equal((await request('POST', '/v1/pods', { body: '[]' })).body.error?.message, 'invalid request body: expected an object');
    assert.equal((await request('POST', '/v1/pods', { body: '' })).body.error?.message, 'request body is empty; expected JSON');
    assert.equal((await request('POST', '/v1/pods', { body: '{}', headers: { 'content-type': 'text/plain' } })).status, 415);
    assert.equal((await request('PATCH', '/v1/pods/a/b')).status, 405);
    assert.equal(mock.podCount(), 0);
  });

  test('an oversize body is 413, and the kept-alive connection still works afterwards', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const pod = podFor('big', 'u');
      const huge = JSON.stringify({ pod: { ...pod, metadata: { ...pod.metadata, annotations: { blob: 'x'.repeat(200_000) } } } });
      const tooBig = await request('POST', '/v1/pods', { body: huge, agent });
      assert.equal(tooBig.status, 413);
      assert.equal(tooBig.body.error?.code, 'PayloadTooLarge');
      // Chunked (no Content-Length): cut off while reading.
      const chunked = await request('POST', '/v1/pods', { body: huge, agent, headers: { 'transfer-encoding': 'chunked' } });
      assert.equal(chunked.status, 413);
      assert.equal((await request('GET', '/v1/pods', { agent })).status, 200);
    } finally {
      agent.destroy();
    }
  });

  test('a WebSocket request with bad parameters is refused with a JSON error before the upgrade', async () => {
    const upgrade = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${server.url}${path}`, {
          headers: {
            connection: 'Upgrade',
            upgrade: 'websocket',
            authorization: 'Bearer sekret',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('upgrade', () => reject(new Error('unexpected upgrade')));
        req.on('error', reject);
        req.end();
      });
    assert.equal((await upgrade('/v1/pods/a/b/portforward?port=99999')).status, 400);
    assert.match((await upgrade('/v1/pods/a/b/containers/c/exec')).body, /missing command/);
    assert.equal((await upgrade('/v3/pods/a/b/containers/c/exec?command=x')).status, 400);
  });
});

describe('bad input from a server never crashes the client', () => {
  /** A raw HTTP server answering each path as told. */
  async function fakeServer(t: { after: (fn: () => unknown) => void }, answer: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<string> {
    const server = http.createServer(answer);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }
  const capabilities = (extra: object = {}) =>
    JSON.stringify({ protocol: 'v1', name: 'fake', capabilities: ['notifyPods'], heartbeatIntervalMs: 100, ...extra });

  test('malformed answers become clear errors', async (t) => {
    let calls = 0;
    const url = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities({ capabilities: [] }));
      if (req.url === '/v1/pods') return res.end('{"items": [');
      if (req.url === '/v1/pods/ns/wrong') return res.end('[1,2]');
      if (req.url === '/v1/pods/ns/html') {
        res.statusCode = 502;
        calls++;
        return res.end('<html>bad gateway</html>');
      }
      if (req.url === '/v1/pods/ns/version') {
        res.setHeader('vk-provider-protocol', '9');
        return res.end('{}');
      }
      res.end('{}');
    });
    const remote = await RemoteProvider.connect({ endpoint: url, retries: 2 }, { log });
    t.after(() => remote.close());
    await assert.rejects(remote.listPods(call), /remote provider sent malformed JSON for GET \/v1\/pods: /);
    await assert.rejects(remote.getPod('ns', 'wrong', call), /remote provider sent an invalid pod for GET \/v1\/pods\/ns\/wrong: expected an object/);
    await assert.rejects(
      remote.getPod('ns', 'html', call),
      /remote provider rejected GET \/v1\/pods\/ns\/html: HTTP 502 BadGateway: <html>bad gateway<\/html>/,
    );
    assert.equal(calls, 3, 'a 502 is retried');
    await assert.rejects(remote.getPod('ns', 'version', call), /speaks protocol version 9; this client speaks 1/);
  });

  test('a server that stalls before or during its answer times out, and idempotent calls are retried', async (t) => {
    let listCalls = 0;
    const url = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities({ capabilities: [] }));
      if (req.url === '/v1/pods') {
        listCalls++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"items": ['); // and never more
        return;
      }
      // GET /v1/pods/ns/slow: no answer at all
    });
    const remote = await RemoteProvider.connect({ endpoint: url, timeoutMs: 300, retries: 1 }, { log });
    t.after(() => remote.close());
    await assert.rejects(remote.listPods(call), /remote provider at http:\/\/127\.0\.0\.1:\d+ did not finish answering GET \/v1\/pods within 300 ms/);
    assert.equal(listCalls, 2, 'one retry');
    await assert.rejects(remote.getPod('ns', 'slow', call), /did not answer GET \/v1\/pods\/ns\/slow within 300 ms/);
  });

  test('an oversize answer is refused', async (t) => {
    const url = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities({ capabilities: [] }));
      res.end(JSON.stringify({ items: [], pad: 'x'.repeat(100_000) }));
    });
    const remote = await RemoteProvider.connect({ endpoint: url, maxResponseBytes: 10_000 }, { log });
    t.after(() => remote.close());
    await assert.rejects(remote.listPods(call), /larger than 10000 bytes \(maxResponseBytes\)/);
  });

  test('a server of another protocol version, or an unreachable one, fails start-up with the reason', async (t) => {
    const url = await fakeServer(t, (_req, res) => res.end(capabilities({ protocol: 'v3' })));
    await assert.rejects(
      RemoteProvider.connect({ endpoint: url }, { log }),
      /remote provider at http:\/\/127\.0\.0\.1:\d+: remote provider speaks protocol "v3"; this client speaks v1 and v2/,
    );
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await assert.rejects(
      RemoteProvider.connect({ endpoint: `http://127.0.0.1:${port}`, connectTimeoutMs: 300 }, { log }),
      /remote provider at http:\/\/127\.0\.0\.1:\d+ is unreachable: connect ECONNREFUSED .*\(gave up after 300 ms\)$/,
    );
  });

  test('garbage on the status stream is skipped; good lines still arrive; a silent stream reconnects', async (t) => {
    let watches = 0;
    const url = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities());
      if (req.url === '/v1/pods') return res.end(JSON.stringify({ items: [podFor('listed', 'u0')] }));
      if (req.url === '/v1/pods/watch') {
        watches++;
        res.write('{"type":"READY"}\n');
        res.write('not json at all\n{"type": 42}\n{"type":"POD","pod":{"metadata":{}}}\n{"type":"SOMETHING_NEW"}\n\n');
        res.write('{"type":"POD","pod":');
        res.write(`${JSON.stringify(podFor('pushed', 'u1'))}}\n`);
        return; // then silence: no heartbeats
      }
      res.end('{}');
    });
    const remote = await RemoteProvider.connect({ endpoint: url }, { log });
    t.after(() => remote.close());
    const seen: string[] = [];
    remote.notifyPods!((pod) => seen.push(pod.metadata?.name ?? ''));
    await waitFor('the good lines', () => seen.includes('pushed') && seen.includes('listed'));
    await waitFor('a reconnect after three missed heartbeats', () => watches >= 2, { timeoutMs: 5_000 });
  });

  test('EVENT lines: asked for only when the server declares notifyPodEvents; bad ones are skipped, good ones arrive', async (t) => {
    const queries: string[] = [];
    const good = { namespace: 'ns', name: 'p', uid: 'u1', type: 'Warning', reason: 'Failed', message: 'pull failed', firstTimestamp: '2026-01-01T00:00:00Z' };
    const url = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities({ capabilities: ['notifyPods', 'notifyPodEvents'] }));
      if (req.url === '/v1/pods') return res.end(JSON.stringify({ items: [] }));
      if (req.url?.startsWith('/v1/pods/watch')) {
        queries.push(new URL(req.url, 'http://x').search);
        res.write(
          '{"type":"READY"}\n{"type":"EVENT"}\n{"type":"EVENT","event":{"namespace":"ns","name":"p","uid":"u1","type":"Bad","reason":"X","message":""}}\n',
        );
        res.write(`${JSON.stringify({ type: 'EVENT', event: good })}\n`);
        return;
      }
      res.end('{}');
    });
    const remote = await RemoteProvider.connect({ endpoint: url }, { log });
    t.after(() => remote.close());
    const seen: PodEvent[] = [];
    remote.notifyPodEvents!((event) => seen.push(event));
    await waitFor('the good EVENT line', () => seen.length === 1);
    assert.deepEqual(seen[0], { ...good, firstTimestamp: new Date(good.firstTimestamp) });
    assert.deepEqual(queries, ['?events=true']);

    // A server that does not declare it: the client neither offers notifyPodEvents nor asks.
    const plain = await fakeServer(t, (req, res) => {
      if (req.url === '/v1/capabilities') return res.end(capabilities());
      if (req.url === '/v1/pods') return res.end(JSON.stringify({ items: [] }));
      if (req.url?.startsWith('/v1/pods/watch')) {
        queries.push(new URL(req.url, 'http://x').search);
        return void res.write('{"type":"READY"}\n');
      }
      res.end('{}');
    });
    const older = await RemoteProvider.connect({ endpoint: plain }, { log });
    t.after(() => older.close());
    assert.equal(older.notifyPodEvents, undefined);
    older.notifyPods!(() => {});
    await waitFor('the second watch', () => queries.length === 2);
    assert.equal(queries[1], '');
  });
});

/** A provider that records what reaches it, and fails or hangs as a test tells it to. */
class Recorder implements Provider {
  readonly name = 'recorder';
  deletes: { uid: string | undefined; reason: string }[] = [];
  aborted: string[] = [];
  fail: Error | undefined;
  hang = false;
  private async step(what: string, options: CallOptions): Promise<void> {
    if (this.fail) throw this.fail;
    if (!this.hang) return;
    await new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
    this.aborted.push(what);
    throw new AbortedError(`${what}: aborted`);
  }
  async createPod(_pod: ResolvedPod, options: CallOptions) {
    await this.step('createPod', options);
  }
  async updatePod(_pod: ResolvedPod, options: CallOptions) {
    await this.step('updatePod', options);
  }
  async deletePod(pod: Pod, options: DeleteOptions) {
    await this.step('deletePod', options);
    this.deletes.push({ uid: pod.metadata?.uid, reason: options.reason });
  }
  async getPod(_ns: string, _name: string, options: CallOptions) {
    await this.step('getPod', options);
    return undefined;
  }
  async getPodStatus() {
    return undefined;
  }
  async listPods() {
    return [];
  }
  async getContainerLogs(_ns: string, pod: string, container: string, _options: LogOptions): Promise<Readable> {
    throw ContainerStateError.waiting(pod, container);
  }
}

/** A Recorder served by the SDK and the remote client talking to it (no retries); both closed after the test. */
async function recorderBehindSdk(t: TestContext): Promise<{ recorder: Recorder; server: ProviderServer; remote: RemoteProvider }> {
  const recorder = new Recorder();
  const server = await serveProvider(recorder, { port: 0, log });
  const remote = await RemoteProvider.connect({ endpoint: server.url, retries: 0 }, { log });
  t.after(async () => {
    await remote.close();
    await server.close();
  });
  return { recorder, server, remote };
}

describe('pod Events over the protocol', () => {
  test('a provider with notifyPodEvents (and no notifyPods) reaches the client through the SDK; a pod listener is not needed', async (t) => {
    class Reporting extends Recorder {
      listeners: PodEventListener[] = [];
      notifyPodEvents(listener: PodEventListener) {
        this.listeners.push(listener);
      }
    }
    const provider = new Reporting();
    const server = await serveProvider(provider, { port: 0, log });
    const remote = await RemoteProvider.connect({ endpoint: server.url, retries: 0 }, { log });
    t.after(async () => {
      await remote.close();
      await server.close();
    });
    assert.deepEqual(remote.declared.capabilities, ['notifyPodEvents', 'getContainerLogs']);
    assert.equal(remote.notifyPods, undefined);
    const seen: PodEvent[] = [];
    remote.notifyPodEvents!((event) => seen.push(event));
    await waitFor('the stream to connect', () => remote.streaming);
    const event: PodEvent = { namespace: 'ns', name: 'p', uid: 'u', type: 'Normal', reason: 'Pulled', message: 'pulled', container: 'c', count: 2 };
    for (const listener of provider.listeners) listener(event);
    await waitFor('the event at the client', () => seen.length === 1);
    assert.deepEqual(seen[0], event);
  });
});

describe('protocol version 2, and version 1 on either side', () => {
  test('DELETE carries the reason to the provider; provider errors arrive as their class with reason and retryAfterMs', async (t) => {
    const { recorder, remote } = await recorderBehindSdk(t);
    assert.equal(remote.protocolVersion, 2);
    await remote.deletePod(podFor('p', 'u1'), { ...call, reason: 'finished' });
    await remote.deletePod(podFor('p', 'u2'), { ...call, reason: 'deleted' });
    assert.deepEqual(recorder.deletes, [
      { uid: 'u1', reason: 'finished' },
      { uid: 'u2', reason: 'deleted' },
    ]);

    recorder.fail = new PodRejectedError('UnsupportedPlatform', 'no arm64 here');
    await assert.rejects(
      remote.createPod(resolved(podFor('p', 'u3')), call),
      (err: Error) => err instanceof PodRejectedError && err.reason === 'UnsupportedPlatform' && err.message === 'no arm64 here',
    );
    recorder.fail = new TryLaterError('quota', 2500);
    await assert.rejects(remote.createPod(resolved(podFor('p', 'u3')), call), (err: Error) => err instanceof TryLaterError && err.retryAfterMs === 2500);
    recorder.fail = new ProviderUnavailableError('backend unreachable');
    await assert.rejects(remote.getPod('ns', 'p', call), (err: Error) => err instanceof ProviderUnavailableError && err.message === 'backend unreachable');
    recorder.fail = undefined;
    await assert.rejects(
      remote.getContainerLogs!('ns', 'p', 'c', { follow: false, previous: false, timestamps: false, signal: call.signal }),
      ContainerStateError,
    );
  });

  test('an abort on either side: the client rejects with VK_ABORTED and the provider call sees its signal fire', async (t) => {
    const { recorder, server, remote } = await recorderBehindSdk(t);
    recorder.hang = true;
    const abort = new AbortController();
    const creating = remote.createPod(resolved(podFor('p', 'u1')), { signal: abort.signal });
    await waitFor('the call to reach the provider', () => true);
    setTimeout(() => abort.abort(), 100);
    await assert.rejects(creating, (err: Error) => err instanceof AbortedError && (err as VkError).code === 'VK_ABORTED');
    await waitFor('the provider call to be aborted', () => recorder.aborted.includes('createPod'), { timeoutMs: 5_000 });
    // Already aborted: nothing is sent.
    await assert.rejects(remote.deletePod(podFor('p', 'u1'), { signal: AbortSignal.abort(), reason: 'deleted' }), AbortedError);
    // The server shutting down aborts the calls in flight too.
    const getting = remote.getPod('ns', 'p', call).catch((err: unknown) => err);
    await waitFor('getPod to reach the provider', () => true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await server.close();
    await waitFor('getPod aborted by the shutdown', () => recorder.aborted.includes('getPod'), { timeoutMs: 5_000 });
    assert.ok((await getting) instanceof VkError);
  });

  test('the SDK server still serves version 1 clients: no reason means deleted, errors in version 1 names; version 2 requires the reason', async (t) => {
    const recorder = new Recorder();
    const server = await serveProvider(recorder, { port: 0, log });
    t.after(() => server.close());
    const send = (headers: Record<string, string>, body: unknown) =>
      new Promise<{ status: number; version: string | undefined; body: { error?: { code: string; message: string } } }>((resolve, reject) => {
        const text = JSON.stringify(body);
        const req = http.request(
          `${server.url}/v1/pods/ns/p`,
          { method: 'DELETE', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, version: res.headers['vk-provider-protocol'] as string | undefined, body: JSON.parse(text) as never }),
            );
          },
        );
        req.on('error', reject);
        req.end(text);
      });
    const v1 = await send({ 'vk-provider-protocol': '1' }, { pod: podFor('p', 'u1') });
    assert.equal(v1.status, 200);
    assert.equal(v1.version, '1');
    assert.equal((await send({}, { pod: podFor('p', 'u2') })).version, '1');
    assert.deepEqual(recorder.deletes, [
      { uid: 'u1', reason: 'deleted' },
      { uid: 'u2', reason: 'deleted' },
    ]);
    assert.equal(
      (await send({ 'vk-provider-protocol': '1' }, { pod: podFor('p', 'u3'), reason: 'finished' })).body.error?.message,
      'invalid request body: reason: unknown field',
    );
    const v2 = await send({ 'vk-provider-protocol': '2' }, { pod: podFor('p', 'u3') });
    assert.deepEqual([v2.status, v2.version, v2.body.error?.code], [400, '2', 'VK_INVALID_REQUEST']);
    assert.equal(v2.body.error?.message, 'invalid request body: reason: expected one of "deleted", "finished"');
    recorder.fail = new NotFoundError('no such pod');
    assert.deepEqual((await send({ 'vk-provider-protocol': '1' }, { pod: podFor('p', 'u4') })).body, { error: { code: 'NotFound', message: 'no such pod' } });
    assert.deepEqual((await send({ 'vk-provider-protocol': '2' }, { pod: podFor('p', 'u4'), reason: 'deleted' })).body, {
      error: { code: 'VK_NOT_FOUND', message: 'no such pod' },
    });
  });

  test('the client talks version 1 to a version 1 server, and says once that the delete reason cannot travel', async (t) => {
    const deletes: unknown[] = [];
    const versions = new Set<string>();
    const server = http.createServer((req, res) => {
      const header = req.headers['vk-provider-protocol'];
      if (header !== undefined && header !== '1') {
        res.writeHead(400, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({
            error: { code: 'UnsupportedVersion', message: `vk-provider-protocol header "${String(header)}" is not supported by this server; it speaks 1` },
          }),
        );
      }
      versions.add(String(header));
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.setHeader('vk-provider-protocol', '1');
        if (req.url === '/v1/capabilities') return res.end(JSON.stringify({ protocol: 'v1', name: 'old', capabilities: [] }));
        if (req.method === 'DELETE') deletes.push(JSON.parse(body));
        res.end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => server.close());
    const lines: string[] = [];
    const recording = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const remote = await RemoteProvider.connect({ endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}` }, { log: recording });
    t.after(() => remote.close());
    assert.equal(remote.protocolVersion, 1);
    await remote.deletePod(podFor('p', 'u1'), { ...call, reason: 'finished' });
    await remote.deletePod(podFor('p', 'u2'), { ...call, reason: 'finished' });
    await remote.deletePod(podFor('p', 'u3'), { ...call, reason: 'deleted' });
    assert.deepEqual(deletes, [{ pod: podFor('p', 'u1') }, { pod: podFor('p', 'u2') }, { pod: podFor('p', 'u3') }]);
    assert.deepEqual([...versions], ['1']);
    assert.equal(lines.filter((l) => l.includes('cannot carry the delete reason')).length, 1);
  });
});

describe('configuration and transport security', () => {
  test('config errors are one line naming the field', () => {
    assert.throws(() => parseRemoteConfig({}), /^ConfigError: provider config: endpoint: /);
    assert.throws(() => parseRemoteConfig({ endpoint: 'ftp://x' }), /provider config: endpoint: expected an http:\/\/ or https:\/\/ URL/);
    assert.throws(() => parseRemoteConfig({ endpoint: 'http://x', timeoutMs: -1 }), /provider config: timeoutMs: must be > 0/);
    assert.throws(
      () => parseRemoteConfig({ endpoint: 'http://x', token: 'a', tokenFile: 'b' }),
      /provider config: tokenFile: give token or tokenFile, not both/,
    );
    assert.throws(() => parseRemoteConfig({ endpoint: 'https://x', certFile: 'c' }), /provider config: keyFile: certFile and keyFile go together/);
    assert.throws(() => parseRemoteConfig({ endpoint: 'http://x', caFile: 'c' }), /provider config: caFile: needs an https:\/\/ endpoint/);
    assert.throws(() => parseRemoteConfig({ endpoint: 'http://x', tokn: 'a' }), /provider config: tokn: unknown field/);
  });

  test('HTTPS with a private CA, a client certificate (mTLS) and a token file', async (t) => {
    const dir = tempDir(t, 'vk-remote-tls-');
    const f = (name: string) => path.join(dir, name);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
      '-subj',
      '/CN=test-ca',
      '-days',
      '1',
    );
    for (const [name, ext] of [
      ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
      ['client', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      writeFileSync(f(`${name}.ext`), `${ext}\n`);
      ssl(
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        f(`${name}.key`),
        '-out',
        f(`${name}.csr`),
        '-subj',
        `/CN=${name}`,
      );
      ssl(
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f('ca.crt'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-out',
        f(`${name}.crt`),
        '-days',
        '1',
        '-extfile',
        f(`${name}.ext`),
      );
    }
    writeFileSync(f('token'), 'rotating-token\n');
    const { readFileSync } = await import('node:fs');
    const mock = new MockProvider(parseMockConfig({}), { nodeName: 'n', log });
    const server = await serveProvider(mock, {
      port: 0,
      log,
      token: 'rotating-token',
      tls: { cert: readFileSync(f('server.crt')), key: readFileSync(f('server.key')), ca: readFileSync(f('ca.crt')) },
    });
    t.after(async () => {
      await server.close();
      await mock.close();
    });
    assert.match(server.url, /^https:/);
    const remote = await RemoteProvider.connect(
      { endpoint: server.url, caFile: f('ca.crt'), certFile: f('client.crt'), keyFile: f('client.key'), tokenFile: f('token') },
      { log },
    );
    t.after(() => remote.close());
    await remote.createPod(resolved(podFor('tls', 'u1')), call);
    assert.equal((await remote.getPod('ns', 'tls', call))?.status?.phase, 'Running');
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    assert.equal(await remote.runInContainer!('ns', 'tls', 'c', ['echo', 'over wss'], { stdout, tty: false, signal: new AbortController().signal }), 0);
    assert.equal(out, 'over wss\n');

    // Without a client certificate the handshake fails; with an unknown CA the server is not trusted.
    await assert.rejects(
      RemoteProvider.connect({ endpoint: server.url, caFile: f('ca.crt'), token: 'rotating-token', connectTimeoutMs: 300, retries: 0 }, { log }),
      /remote provider at https:\/\/127\.0\.0\.1:\d+ is unreachable: .*(certificate|socket hang up|ECONNRESET)/,
    );
    await assert.rejects(
      RemoteProvider.connect(
        { endpoint: server.url, certFile: f('client.crt'), keyFile: f('client.key'), token: 'rotating-token', connectTimeoutMs: 300, retries: 0 },
        { log },
      ),
      /self-signed certificate in certificate chain|unable to verify|unable to get local issuer/,
    );
    await assert.rejects(
      RemoteProvider.connect({ endpoint: server.url, caFile: f('ca.crt'), certFile: f('client.crt'), keyFile: f('client.key'), token: 'wrong' }, { log }),
      /HTTP 401 Unauthorized: missing or invalid bearer token/,
    );
  });
});

describe('the OpenAPI document', () => {
  test('parses, resolves every $ref, and covers every endpoint and error code of the protocol', async () => {
    const { readFileSync } = await import('node:fs');
    const { parse } = await import('yaml');
    const { paths: protocolPaths } = await import('../../protocol/wire.ts');
    const { V1_ERROR_STATUS, V2_ERROR_CODES } = await import('../../protocol/errors.ts');
    const doc = parse(readFileSync(path.resolve(import.meta.dirname, '../../../docs/remote-provider.openapi.yaml'), 'utf8')) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: Record<string, Record<string, unknown>>;
    };
    assert.match(doc.openapi, /^3\./);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/([^/]+)\/([^"]+)"/g)];
    assert.ok(refs.length > 10);
    for (const [, section, name] of refs) assert.ok(doc.components[section!]?.[name!], `unresolved $ref ${section}/${name}`);
    const expected = [
      protocolPaths.capabilities(),
      protocolPaths.ping(),
      protocolPaths.node(),
      protocolPaths.stats(),
      protocolPaths.pods(),
      protocolPaths.watch(),
      protocolPaths.pod('{namespace}', '{pod}'),
      protocolPaths.podStatus('{namespace}', '{pod}'),
      protocolPaths.resolved('{namespace}', '{pod}'),
      protocolPaths.logs('{namespace}', '{pod}', '{container}'),
      protocolPaths.exec('{namespace}', '{pod}', '{container}'),
      protocolPaths.attach('{namespace}', '{pod}', '{container}'),
      protocolPaths.portForward('{namespace}', '{pod}'),
    ].map(decodeURIComponent);
    assert.deepEqual(Object.keys(doc.paths).sort(), expected.sort());
    const schemas = doc.components.schemas as Record<string, { properties: { error: { properties: { code: { enum: string[] } } } } }>;
    assert.deepEqual([...schemas.ErrorV1!.properties.error.properties.code.enum].sort(), Object.keys(V1_ERROR_STATUS).sort());
    assert.deepEqual([...schemas.Error!.properties.error.properties.code.enum].sort(), [...V2_ERROR_CODES].sort());
  });
});
