import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../log.ts';
import { parseRemoteConfig } from './config.ts';
import { RemoteTransport } from './transport.ts';

test('a reset on a kept-alive socket the server dropped is sent again on a new connection, even without retries', async (t) => {
  let connections = 0;
  const server = http.createServer((req, res) => {
    const served = (req.socket as { served?: number } & typeof req.socket).served ?? 0;
    (req.socket as { served?: number } & typeof req.socket).served = served + 1;
    // The second request on a connection meets a server that has gone away from it: a reset.
    if (served >= 1) return req.socket.resetAndDestroy();
    res.writeHead(200, { 'content-type': 'application/json', 'vk-provider-protocol': '2' }).end('{"ok":true}');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const transport = new RemoteTransport(parseRemoteConfig({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }), silentLogger);
  t.after(() => transport.close());
  await transport.call('GET', '/v1/ping', { retries: 0 });
  const second = await transport.call<{ ok: boolean }>('GET', '/v1/ping', { retries: 0 });
  assert.deepEqual(second.body, { ok: true });
  assert.equal(connections, 2, 'the repeat went over a new connection');
});
