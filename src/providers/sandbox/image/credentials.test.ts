import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Secret } from '../../../kube/types.ts';
import {
  CredentialConfigError,
  credentialsForImage,
  DockerKeyring,
  isDefaultRegistryMatch,
  keyringKey,
  keyringsFromPullSecrets,
  urlsMatch,
} from './credentials.ts';
import { parseImageReference } from './reference.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function dockerConfigJson(name: string, auths: Record<string, unknown>): Secret {
  return { metadata: { name, namespace: 'ns' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) } };
}

function dockercfg(name: string, entries: Record<string, unknown>): Secret {
  return { metadata: { name, namespace: 'ns' }, type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify(entries)) } };
}

test('keyringKey drops scheme and /v1/ /v2/, keeps host, port and path', () => {
  assert.equal(keyringKey('https://index.docker.io/v1/'), 'index.docker.io');
  assert.equal(keyringKey('http://127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(keyringKey('registry.example.com/team'), 'registry.example.com/team');
  assert.equal(keyringKey('https://registry.example.com/v2/team/app'), 'registry.example.com/team/app');
  assert.equal(keyringKey('*.gcr.io'), '*.gcr.io');
});

test('urlsMatch: glob per host part, same part count, exact port, path prefix', () => {
  assert.ok(urlsMatch('registry.example.com', 'registry.example.com/team/app'));
  assert.ok(urlsMatch('*.example.com', 'registry.example.com/app'));
  assert.ok(!urlsMatch('*.example.com', 'example.com/app'), 'a glob part needs a part');
  assert.ok(!urlsMatch('*.example.com', 'a.b.example.com/app'), 'part counts must be equal');
  assert.ok(urlsMatch('reg.example.com/team', 'reg.example.com/team/app'));
  assert.ok(!urlsMatch('reg.example.com/team', 'reg.example.com/other/app'));
  assert.ok(urlsMatch('127.0.0.1:5000', '127.0.0.1:5000/app'));
  assert.ok(!urlsMatch('127.0.0.1:5000', '127.0.0.1:5001/app'));
  assert.ok(!urlsMatch('127.0.0.1', '127.0.0.1:5000/app'), 'no port matches only no port');
  assert.ok(!urlsMatch('reg.example.com:443', 'reg.example.com/app'));
  assert.ok(urlsMatch('reg-?.example.com', 'reg-1.example.com/app'));
});

test('auth wins over username/password; dockercfg has no auths wrapper', () => {
  const [json] = keyringsFromPullSecrets([
    dockerConfigJson('a', { 'reg.example.com': { auth: b64('alice:s3:cret'), username: 'ignored', password: 'ignored' } }),
  ]);
  assert.deepEqual(json!.lookup('reg.example.com/app'), [{ username: 'alice', password: 's3:cret' }]);
  const [cfg] = keyringsFromPullSecrets([dockercfg('b', { 'https://reg.example.com': { username: 'bob', password: 'pw', email: 'b@x' } })]);
  assert.deepEqual(cfg!.lookup('reg.example.com/app'), [{ username: 'bob', password: 'pw' }]);
});

test('more specific keys first, secrets in pod order, duplicates dropped', () => {
  const ref = parseImageReference('reg.example.com/team/app:1');
  const creds = credentialsForImage(
    [
      dockerConfigJson('first', { 'reg.example.com': { username: 'host', password: '1' }, 'reg.example.com/team': { username: 'team', password: '2' } }),
      { metadata: { name: 'opaque' }, type: 'Opaque', data: { '.dockerconfigjson': b64('{"auths":{"reg.example.com":{"username":"no","password":"no"}}}') } },
      dockercfg('second', { '*.example.com': { username: 'glob', password: '3' }, 'reg.example.com': { username: 'host', password: '1' } }),
    ],
    ref,
  );
  assert.deepEqual(
    creds.map((c) => c.username),
    ['team', 'host', 'glob'],
  );
  assert.deepEqual(credentialsForImage([], ref), []);
});

test('Docker Hub: index.docker.io/v1/ entries serve docker.io images; other hosts do not get them', () => {
  const secrets = [dockerConfigJson('hub', { 'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') } })];
  assert.deepEqual(credentialsForImage(secrets, parseImageReference('busybox')), [{ username: 'hubuser', password: 'hubpw' }]);
  assert.deepEqual(credentialsForImage(secrets, parseImageReference('user/app')), [{ username: 'hubuser', password: 'hubpw' }]);
  assert.deepEqual(credentialsForImage(secrets, parseImageReference('ghcr.io/user/app')), []);
  const direct = new DockerKeyring().add({ 'docker.io': { username: 'd', password: 'p' } });
  assert.deepEqual(direct.lookup('docker.io/library/busybox'), [{ username: 'd', password: 'p' }]);
  assert.ok(isDefaultRegistryMatch('library/ubuntu'));
  assert.ok(isDefaultRegistryMatch('docker.io/library/ubuntu'));
  assert.ok(!isDefaultRegistryMatch('localhost:5000/app'));
});

test('malformed secrets throw CredentialConfigError naming the secret', () => {
  const bad: Secret = { metadata: { name: 'bad', namespace: 'ns' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{not json') } };
  assert.throws(
    () => keyringsFromPullSecrets([bad]),
    (err: unknown) => err instanceof CredentialConfigError && /imagePullSecret "ns\/bad": \.dockerconfigjson is not valid JSON/.test(err.message),
  );
  const noAuths = dockerConfigJson('x', {});
  noAuths.data!['.dockerconfigjson'] = b64('{"reg.example.com":{}}');
  assert.throws(() => keyringsFromPullSecrets([noAuths]), /has no "auths" object/);
  const badAuth = dockerConfigJson('y', { 'reg.example.com': { auth: b64('no-colon') } });
  assert.throws(() => keyringsFromPullSecrets([badAuth]), /imagePullSecret "ns\/y": entry "reg.example.com": auth is not base64/);
});
