import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { KubeClient, heartbeatSockets } from './client.ts';

/** A loopback server that holds /held/* requests until release(), and answers anything else at once. */
async function server(): Promise<{ client: KubeClient; held: () => number; release: () => void; close: () => Promise<void> }> {
  const waiting: http.ServerResponse[] = [];
  let released = false;
  const answer = (res: http.ServerResponse) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  const srv = http.createServer((req, res) => {
    if (req.url?.startsWith('/held/') && !released) waiting.push(res);
    else answer(res);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const client = KubeClient.fromConfig({
    server: new URL(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`),
    tls: { rejectUnauthorized: true },
    authorization: async () => undefined,
    source: 'test',
  });
  return {
    client,
    held: () => waiting.length,
    release: () => {
      released = true;
      for (const res of waiting.splice(0)) answer(res);
    },
    close: async () => {
      client.close();
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

const settled = (p: Promise<unknown>, ms: number) =>
  Promise.race([p.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);

test('heartbeat requests get through while the main pool is full; other requests queue behind it', async () => {
  const s = await server();
  try {
    const pending = Array.from({ length: 70 }, (_, i) => s.client.get(`/held/${i}`));
    // The main pool has 64 sockets: 64 requests reach the server, the rest queue in the client.
    for (let i = 0; i < 200 && s.held() < 64; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.held(), 64);
    const queued = s.client.get('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n');
    const heartbeat = s.client.update('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n', {}, { lane: 'heartbeat' });
    assert.equal(await settled(heartbeat, 5000), true, 'the heartbeat was answered while 64 requests held the pool');
    assert.equal(await settled(queued, 200), false, 'a request of the main lane waits for a socket of the pool');
    s.release();
    await Promise.all([...pending, queued]);
  } finally {
    await s.close();
  }
});

test('the heartbeat pool grows with the nodes a client serves: one socket per 25 nodes, at least 4', () => {
  assert.equal(heartbeatSockets(1), 4);
  assert.equal(heartbeatSockets(100), 4);
  assert.equal(heartbeatSockets(101), 5);
  assert.equal(heartbeatSockets(1000), 40);
});
