// The kubelet API's HTTPS server is created on the first connection: the certificate served is
// always the latest one set, rotation keeps working afterwards, and close() works either way.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { ConfigError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { parseMockConfig } from '../providers/mock/config.ts';
import { MockProvider } from '../providers/mock/mock-provider.ts';
import { selfSignedServingCert, type ServingCert } from './certificates.ts';
import { KubeletServer } from './server.ts';

function certFor(nodeName: string): ServingCert {
  return selfSignedServingCert({ nodeName, nodeIP: '127.0.0.1' });
}

function start(cert: Pick<ServingCert, 'cert' | 'key'>, clientCA?: string): Promise<KubeletServer> {
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'lazy', log: silentLogger });
  return KubeletServer.start({
    nodeName: 'lazy',
    provider,
    log: silentLogger,
    address: '127.0.0.1',
    port: 0,
    cert: cert.cert,
    key: cert.key,
    ...(clientCA !== undefined && { clientCA }),
  });
}

/** The fingerprint of the certificate the server presents, and the status of GET /healthz on the same connection. */
function handshake(port: number): Promise<{ fingerprint: string; status: string; socket: tls.TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      socket.once('data', (chunk: Buffer) => resolve({ fingerprint, status: chunk.toString('latin1').split('\r\n')[0] ?? '', socket }));
    });
    socket.once('error', reject);
  });
}

const fingerprint = (cert: ServingCert) => new X509Certificate(cert.cert).fingerprint256;

test('the TLS server comes with the first connection and serves the latest certificate; rotation reaches later connections', async (t) => {
  const first = certFor('first');
  const server = await start(first);
  t.after(() => server.close());
  assert.equal(server.tlsReady, false);

  const second = certFor('second');
  server.setCertificate(second.cert, second.key);
  assert.equal(server.tlsReady, false, 'a rotation before any connection creates nothing');
  const a = await handshake(server.port);
  a.socket.destroy();
  assert.equal(server.tlsReady, true);
  assert.equal(a.fingerprint, fingerprint(second));
  assert.equal(a.status, 'HTTP/1.1 200 OK');

  const third = certFor('third');
  server.setCertificate(third.cert, third.key);
  const b = await handshake(server.port);
  b.socket.destroy();
  assert.equal(b.fingerprint, fingerprint(third));
  assert.equal(b.status, 'HTTP/1.1 200 OK');
});

test('a certificate and key that do not match are refused at start and on rotation', async (t) => {
  const one = certFor('one');
  const other = certFor('other');
  await assert.rejects(start({ cert: one.cert, key: other.key }), (err) => err instanceof ConfigError && /does not belong/.test(err.message));
  await assert.rejects(start({ cert: 'not a certificate', key: one.key }), ConfigError);
  const server = await start(one);
  t.after(() => server.close());
  assert.throws(() => server.setCertificate(one.cert, other.key), ConfigError);
  const served = await handshake(server.port);
  served.socket.destroy();
  assert.equal(served.fingerprint, fingerprint(one), 'the refused pair did not replace the good one');
});

test('a client CA bundle that cannot be used is refused at start and on reload, though no TLS context exists yet', async (t) => {
  const one = certFor('one');
  await assert.rejects(start(one, 'not a bundle'), (err) => err instanceof ConfigError && /client CA: no PEM certificate/.test(err.message));
  const broken = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
  await assert.rejects(start(one, `${one.cert}${broken}`), (err) => err instanceof ConfigError && /client CA: certificate 2 of 2/.test(err.message));
  const server = await start(one, one.cert);
  t.after(() => server.close());
  assert.throws(() => server.setClientCA(broken), ConfigError);
  const served = await handshake(server.port);
  served.socket.destroy();
  assert.match(served.status, /^HTTP\/1\.1 /, 'still serving with the previous client CA');
});

test('close() frees the port whether or not a connection came, and closes idle keep-alive connections', async () => {
  const idle = await start(certFor('idle'));
  const port = idle.port;
  await idle.close();
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer().once('error', reject);
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
  });

  const busy = await start(certFor('busy'));
  const { socket, status } = await handshake(busy.port);
  assert.equal(status, 'HTTP/1.1 200 OK');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await busy.close();
  await closed;
});
