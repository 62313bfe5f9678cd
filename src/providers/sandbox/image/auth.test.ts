import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basicAuthorization, parseTokenResponse, parseWwwAuthenticate, pullScope, tokenUrl } from './auth.ts';

test('parseWwwAuthenticate: Docker Hub style Bearer challenge', () => {
  const [c, ...rest] = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"');
  assert.equal(rest.length, 0);
  assert.deepEqual(c, {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
});

test('parseWwwAuthenticate: Basic, unquoted values, escapes, commas in quotes, several challenges', () => {
  assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm=http://127.0.0.1:1/token, Service = reg'), [
    { scheme: 'bearer', params: { realm: 'http://127.0.0.1:1/token', service: 'reg' } },
  ]);
  assert.deepEqual(parseWwwAuthenticate('Bearer realm="a\\"b",scope="repository:x:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'a"b', scope: 'repository:x:pull,push' } },
  ]);
  const two = parseWwwAuthenticate('Basic realm="r1", Bearer realm="https://t/token",service="s"');
  assert.deepEqual(
    two.map((c) => c.scheme),
    ['basic', 'bearer'],
  );
  assert.equal(two[1]!.params.service, 's');
  assert.deepEqual(parseWwwAuthenticate(''), []);
});

test('tokenUrl carries service and scope; the fallback scope is used when the challenge has none', () => {
  const url = tokenUrl({ scheme: 'bearer', params: { realm: 'https://auth.example/token?x=1', service: 'reg' } }, pullScope('team/app'));
  assert.equal(url.toString(), 'https://auth.example/token?x=1&service=reg&scope=repository%3Ateam%2Fapp%3Apull');
  const own = tokenUrl({ scheme: 'bearer', params: { realm: 'https://a/t', scope: 'repository:a:pull repository:b:pull' } }, 'ignored');
  assert.deepEqual(own.searchParams.getAll('scope'), ['repository:a:pull', 'repository:b:pull']);
  assert.throws(() => tokenUrl({ scheme: 'bearer', params: {} }, 'x'), /without a realm/);
});

test('parseTokenResponse: token or access_token, expires_in defaulting to 60s', () => {
  assert.deepEqual(parseTokenResponse('{"token":"t1","expires_in":300}', 1000), { token: 't1', expiresAt: 301_000 });
  assert.deepEqual(parseTokenResponse('{"access_token":"t2"}', 0), { token: 't2', expiresAt: 60_000 });
  assert.throws(() => parseTokenResponse('{}'), /without a token/);
  assert.throws(() => parseTokenResponse('<html>'), /not JSON/);
});

test('basicAuthorization encodes user:password', () => {
  assert.equal(basicAuthorization({ username: 'alice', password: 'p:w' }), `Basic ${Buffer.from('alice:p:w').toString('base64')}`);
});
