import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { createCertificateRequest, createSelfSignedCertificate, generateKeyPair, ipBytes } from './x509.ts';

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('ipBytes encodes IPv4 and IPv6 (compressed, full, with an IPv4 tail)', () => {
  assert.deepEqual([...ipBytes('10.1.2.3')], [10, 1, 2, 3]);
  assert.equal(ipBytes('::1').toString('hex'), '00000000000000000000000000000001');
  assert.equal(ipBytes('fd00:1::2').toString('hex'), 'fd000001000000000000000000000002');
  assert.equal(ipBytes('2001:db8:0:0:1:0:0:1').toString('hex'), '20010db8000000000001000000000001');
  assert.equal(ipBytes('::ffff:192.168.0.1').toString('hex'), '00000000000000000000ffffc0a80001');
  assert.throws(() => ipBytes('not-an-ip'), /not an IP address/);
});

test('a self-signed certificate parses, verifies with its own key and carries the SANs', () => {
  const keys = generateKeyPair();
  const pem = createSelfSignedCertificate(
    keys,
    { commonName: 'system:node:vk-1', organization: ['system:nodes'] },
    { dnsNames: ['vk-1'], ipAddresses: ['127.0.0.1', '::1'] },
  );
  const cert = new X509Certificate(pem);
  assert.equal(cert.subject, 'O=system:nodes\nCN=system:node:vk-1');
  assert.equal(cert.issuer, cert.subject);
  assert.ok(cert.verify(keys.publicKey), 'signature verifies');
  assert.ok(cert.checkPrivateKey(keys.privateKey));
  assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(cert.checkHost('vk-1'), 'vk-1');
  assert.match(cert.subjectAltName ?? '', /IP Address:0:0:0:0:0:0:0:1/);
  assert.equal(cert.ca, false);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const notAfter = new Date(cert.validTo).getTime();
  assert.ok(notAfter > Date.now() + 364 * 86_400_000 && notAfter < Date.now() + 366 * 86_400_000);
});

test('a certificate request is well formed (checked with openssl when present)', (t) => {
  const keys = generateKeyPair();
  const csr = createCertificateRequest(
    keys,
    { commonName: 'system:node:vk-1', organization: ['system:nodes'] },
    { dnsNames: ['vk-1'], ipAddresses: ['10.0.0.7'] },
  );
  assert.match(csr, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
  if (!haveOpenssl()) {
    t.skip('openssl not installed');
    return;
  }
  const text = execFileSync('openssl', ['req', '-noout', '-verify', '-text'], { input: csr, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  assert.match(text, /Subject: O\s*=\s*system:nodes, CN\s*=\s*system:node:vk-1/);
  assert.match(text, /DNS:vk-1, IP Address:10\.0\.0\.7/);
  assert.match(text, /ecdsa-with-SHA256/);
});
