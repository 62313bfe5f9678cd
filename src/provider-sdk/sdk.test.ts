// The SDK server's modules on their own: path matching and versions, and the watch fan-out.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import type { Pod } from '../kube/types.ts';
import { silentLogger } from '../log.ts';
import { WireStatusError } from '../protocol/errors.ts';
import type { PodEventListener, PodListener, Provider } from '../providers/provider.ts';
import { parseMockConfig } from '../providers/mock/config.ts';
import { MockProvider } from '../providers/mock/mock-provider.ts';
import { checkMethod, matchRoute, requestVersion } from './routes.ts';
import { serveProvider } from './server.ts';
import { WatchHub } from './watch-hub.ts';

test('routes: pod paths decode their segments; unknown paths, path versions, header versions and methods are refused with their version 1 code', () => {
  assert.deepEqual(matchRoute('/v1/pods/a%2Fb/c/containers/d/logs'), { kind: 'logs', namespace: 'a/b', name: 'c', container: 'd' });
  assert.deepEqual(matchRoute('/v1/pods/watch'), { kind: 'watch', namespace: '', name: '', container: '' });
  const refused = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof WireStatusError);
      return [err.v1Code, err.status, err.code];
    }
    assert.fail('not refused');
  };
  assert.deepEqual(
    refused(() => matchRoute('/v1/nothing')),
    ['UnknownPath', 404, 'VK_UNSUPPORTED'],
  );
  assert.deepEqual(
    refused(() => matchRoute('/v2/pods')),
    ['UnsupportedVersion', 400, 'VK_PROTOCOL'],
  );
  assert.deepEqual(
    refused(() => matchRoute('/v1/pods/%E0%A4%A/x')),
    ['BadRequest', 400, 'VK_INVALID_REQUEST'],
  );
  assert.deepEqual(
    refused(() => requestVersion('9')),
    ['UnsupportedVersion', 400, 'VK_PROTOCOL'],
  );
  assert.deepEqual(
    refused(() => checkMethod(matchRoute('/v1/pods/a/b'), 'PATCH', '/v1/pods/a/b')),
    ['MethodNotAllowed', 405, 'VK_INVALID_REQUEST'],
  );
  assert.equal(requestVersion(undefined), 1);
  assert.equal(requestVersion('2'), 2);
});

class FakeResponse extends EventEmitter {
  written: string[] = [];
  headers: Record<string, string> = {};
  writableLength = 0;
  destroyed = false;
  socket = null;
  writeHead(_status: number, headers: Record<string, string>) {
    this.headers = headers;
    return this;
  }
  write(text: string) {
    this.written.push(text);
    return true;
  }
  destroy() {
    this.destroyed = true;
    this.emit('close');
  }
}

test('watch hub: READY on subscribe, every pod to every watcher, heartbeats, and a watcher too far behind is dropped', async (t) => {
  let listener: PodListener | undefined;
  const provider = { name: 'p', notifyPods: (l: PodListener) => (listener = l) } as unknown as Provider;
  const hub = new WatchHub(provider, { heartbeatIntervalMs: 20, maxBufferBytes: 100, log: silentLogger });
  t.after(() => hub.close());
  const fast = new FakeResponse();
  const slow = new FakeResponse();
  hub.add(fast as unknown as ServerResponse, 2);
  hub.add(slow as unknown as ServerResponse, 1);
  assert.equal(fast.headers['vk-provider-protocol'], '2');
  assert.equal(slow.headers['vk-provider-protocol'], '1');
  const pod: Pod = { metadata: { namespace: 'ns', name: 'p' } };
  listener!(pod);
  assert.deepEqual(
    fast.written.map((l) => JSON.parse(l) as unknown),
    [{ type: 'READY' }, { type: 'POD', pod }],
  );
  slow.writableLength = 1_000;
  listener!(pod);
  assert.ok(slow.destroyed);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.ok(fast.written.some((l) => l === '{"type":"HEARTBEAT"}\n'));
  hub.close();
  assert.ok(fast.destroyed);
});

test('watch hub: EVENT lines reach only the watchers that asked for them', (t) => {
  let events: PodEventListener | undefined;
  const provider = { name: 'p', notifyPodEvents: (l: PodEventListener) => (events = l) } as unknown as Provider;
  const hub = new WatchHub(provider, { heartbeatIntervalMs: 60_000, maxBufferBytes: 1 << 20, log: silentLogger });
  t.after(() => hub.close());
  const asked = new FakeResponse();
  const older = new FakeResponse();
  hub.add(asked as unknown as ServerResponse, 2, true);
  hub.add(older as unknown as ServerResponse, 2);
  events!({ namespace: 'ns', name: 'p', uid: 'u', type: 'Normal', reason: 'Pulled', message: 'pulled', firstTimestamp: new Date('2026-01-01T00:00:00Z') });
  assert.deepEqual(
    asked.written.map((l) => JSON.parse(l) as unknown),
    [
      { type: 'READY' },
      {
        type: 'EVENT',
        event: { namespace: 'ns', name: 'p', uid: 'u', type: 'Normal', reason: 'Pulled', message: 'pulled', firstTimestamp: '2026-01-01T00:00:00.000Z' },
      },
    ],
  );
  assert.deepEqual(older.written, ['{"type":"READY"}\n']);
  asked.destroy();
  events!({ namespace: 'ns', name: 'p', uid: 'u', type: 'Normal', reason: 'Pulled', message: 'again' });
  assert.equal(asked.written.length, 2, 'a closed watcher gets nothing more');
});

test("a request Node's HTTP parser rejects gets the protocol's JSON error, not a bare 400", async (t) => {
  const server = await serveProvider(new MockProvider(parseMockConfig({}), { nodeName: 'n', log: silentLogger }), { port: 0, token: 't' });
  t.after(() => server.close());
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /Content-Type: application\/json/);
  const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
  assert.match(body.error.message, /malformed HTTP request \(HPE_/);
});
