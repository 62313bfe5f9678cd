import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { grpcProbe, healthCheckRequest, healthCheckStatus } from './grpc-probe.ts';

test('HealthCheckRequest and HealthCheckResponse encode as gRPC length-prefixed protobufs', () => {
  assert.deepEqual([...healthCheckRequest('')], [0, 0, 0, 0, 0]);
  assert.deepEqual([...healthCheckRequest('ab')], [0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62]);
  assert.equal(healthCheckStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
  assert.equal(healthCheckStatus(Buffer.from([0, 0, 0, 0, 0])), 0);
});

/** A gRPC health server on loopback answering `status` (or a gRPC error code) to every Check. */
async function healthServer(t: { after(fn: () => unknown): void }, answer: { status?: number; grpcStatus?: number }) {
  const services: string[] = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    assert.equal(headers[':path'], '/grpc.health.v1.Health/Check');
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks).subarray(5);
      services.push(body.length ? body.subarray(2).toString() : '');
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(answer.grpcStatus ?? 0), 'grpc-message': answer.grpcStatus ? 'nope' : '' }));
      if (answer.grpcStatus) stream.end();
      else stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, answer.status ?? 1]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { port: (server.address() as AddressInfo).port, services };
}

test('a gRPC probe passes on SERVING and names the status otherwise; it asks for the configured service', async (t) => {
  const serving = await healthServer(t, { status: 1 });
  assert.deepEqual(await grpcProbe('127.0.0.1', serving.port, 'liveness', 2000), { ok: true, message: '' });
  assert.deepEqual(serving.services, ['liveness']);
  const notServing = await healthServer(t, { status: 2 });
  assert.deepEqual(await grpcProbe('127.0.0.1', notServing.port, '', 2000), { ok: false, message: 'service unhealthy (responded with "NOT_SERVING")' });
  const failing = await healthServer(t, { grpcStatus: 5 });
  const result = await grpcProbe('127.0.0.1', failing.port, '', 2000);
  assert.equal(result.ok, false);
  assert.match(result.message, /code = 5 desc = nope/);
});

test('a gRPC probe of a closed port fails', async () => {
  const server = http2.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  const result = await grpcProbe('127.0.0.1', port, '', 2000);
  assert.equal(result.ok, false);
});
