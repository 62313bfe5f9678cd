// In-cluster credentials of the target: a real TLS server stands in for the target's API server,
// its certificate the ca.crt in the service-account directory.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { tempDir } from '../../../test/harness/temp.ts';
import { createSelfSignedCertificate, generateKeyPair } from '../../kubelet-api/x509.ts';
import { parseClusterConfig } from './config.ts';
import { targetClient } from './credentials.ts';

function serving(): { cert: string; key: string } {
  const keys = generateKeyPair();
  return { cert: createSelfSignedCertificate(keys, { commonName: 'target-apiserver' }, { ipAddresses: ['127.0.0.1'] }), key: keys.keyPem };
}

/** A TLS server answering every request with a Namespace, recording the Authorization headers. */
async function fakeApiServer(t: TestContext, tls: { cert: string; key: string }): Promise<{ url: string; authorizations: (string | undefined)[] }> {
  const authorizations: (string | undefined)[] = [];
  const server = https.createServer(tls, (req, res) => {
    authorizations.push(req.headers.authorization);
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, authorizations };
}

function serviceAccountDir(t: TestContext, ca: string, token: string): string {
  const dir = tempDir(t, 'vk-target-sa-');
  writeFileSync(path.join(dir, 'ca.crt'), ca);
  writeFileSync(path.join(dir, 'token'), `${token}\n`);
  return dir;
}

test("inCluster: the directory's token is the bearer token and its ca.crt verifies the configured server", async (t) => {
  const tls = serving();
  const api = await fakeApiServer(t, tls);
  const dir = serviceAccountDir(t, tls.cert, 'target-sa-token');
  const client = await targetClient(parseClusterConfig({ inCluster: { server: api.url, serviceAccountDir: dir } }));
  t.after(() => client.close());
  assert.equal(client.server.origin, api.url);
  assert.match(client.config.source, new RegExp(`in-cluster credentials ${dir}`));
  const ns = await client.get<{ metadata: { name: string } }>('/api/v1/namespaces/default');
  assert.equal(ns.metadata.name, 'default');
  assert.deepEqual(api.authorizations, ['Bearer target-sa-token']);
});

test('inCluster: a server whose certificate the ca.crt did not sign is refused', async (t) => {
  const api = await fakeApiServer(t, serving());
  const dir = serviceAccountDir(t, serving().cert, 'target-sa-token');
  const client = await targetClient(parseClusterConfig({ inCluster: { server: api.url, serviceAccountDir: dir } }));
  t.after(() => client.close());
  await assert.rejects(client.get('/api/v1/namespaces/default'), /self-signed certificate|unable to verify|certificate/);
  assert.deepEqual(api.authorizations, [], 'no request reached the server');
});

test('inCluster: a directory without token or ca.crt is a config error naming inCluster', async (t) => {
  const dir = tempDir(t, 'vk-target-sa-');
  await assert.rejects(
    targetClient(parseClusterConfig({ inCluster: { server: 'https://127.0.0.1:6443', serviceAccountDir: dir } })),
    /^ConfigError: cluster provider config: inCluster: in-cluster .*: ca\.crt .* cannot be read/,
  );
});

test('the config takes exactly one of kubeconfig and inCluster, an https server, and no context with inCluster', () => {
  const inCluster = { server: 'https://target:6443' };
  assert.equal(parseClusterConfig({ inCluster }).inCluster?.serviceAccountDir, '/var/run/secrets/kubernetes.io/serviceaccount');
  assert.throws(() => parseClusterConfig({}), /cluster provider config: kubeconfig: give the target either a kubeconfig or inCluster credentials/);
  assert.throws(() => parseClusterConfig({ kubeconfig: '/k', inCluster }), /exactly one/);
  assert.throws(() => parseClusterConfig({ inCluster, context: 'x' }), /context: a context applies to a kubeconfig/);
  assert.throws(() => parseClusterConfig({ inCluster: { server: 'http://target:8080' } }), /inCluster\.server: must be an https:\/\/ URL/);
});
