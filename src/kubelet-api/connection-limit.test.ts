import assert from 'node:assert/strict';
import https from 'node:https';
import { test } from 'node:test';
import tls from 'node:tls';
import { silentLogger } from '../log.ts';
import { parseMockConfig } from '../providers/mock/config.ts';
import { MockProvider } from '../providers/mock/mock-provider.ts';
import { selfSignedServingCert } from './certificates.ts';
import { KubeletServer } from './server.ts';
import { waitFor } from '../../test/harness/wait.ts';

async function startServer(maxConnections: number): Promise<KubeletServer> {
  const cert = selfSignedServingCert({ nodeName: 'cap', nodeIP: '127.0.0.1' });
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'cap', log: silentLogger });
  const pod = { metadata: { namespace: 'ns', name: 'p', uid: 'u' }, spec: { nodeName: 'cap', containers: [{ name: 'c', image: 'i' }] } };
  await provider.createPod({ pod, volumes: new Map() }, { signal: new AbortController().signal });
  return KubeletServer.start({ nodeName: 'cap', provider, log: silentLogger, address: '127.0.0.1', port: 0, cert: cert.cert, key: cert.key, maxConnections });
}

function connect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
  });
}

function healthz(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

test('at the cap the oldest idle connection is closed so a new client is served', async (t) => {
  const server = await startServer(5);
  t.after(() => server.close());
  const idle: tls.TLSSocket[] = [];
  for (let i = 0; i < 5; i++) idle.push(await connect(server.port));
  const closed = new Promise((resolve) => idle[0]!.once('close', resolve));
  for (const s of idle) s.on('error', () => {});
  assert.equal(await healthz(server.port), 200);
  await closed; // the oldest went first
  assert.ok(server.connections.counts.evicted >= 1);
  await waitFor('connections within the cap', () => server.connections.size <= 5);
  for (const s of idle) s.destroy();
});

test('when every connection is busy a new one is refused, not an old one cut', async (t) => {
  const server = await startServer(1);
  t.after(() => server.close());
  // A followed log stays in flight: the one slot is busy.
  const busy = await connect(server.port);
  busy.on('error', () => {});
  busy.write('GET /containerLogs/ns/p/c?follow=true HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the follow request in flight', () => server.connections.size === 1);
  await assert.rejects(healthz(server.port));
  assert.equal(server.connections.counts.refused, 1);
  assert.equal(busy.destroyed, false);
  busy.destroy();
});
