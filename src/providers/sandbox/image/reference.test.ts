import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ImagePullError, InvalidImageNameError } from './errors.ts';
import { familiarName, parseImageReference, withDigest } from './reference.ts';

const D = `sha256:${'a'.repeat(64)}`;

test('Docker normalization: library/, docker.io, default tag', () => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/user/app:v1', 'docker.io/user/app:v1'],
    ['ghcr.io/org/team/app:v1.2-rc_3', 'ghcr.io/org/team/app:v1.2-rc_3'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:dev', 'localhost:5000/app:dev'],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000/a/b:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['Registry.Example.COM/app', 'Registry.Example.COM/app:latest'],
    ['my-registry:443/x__y/z.q-r', 'my-registry:443/x__y/z.q-r:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`],
    [`127.0.0.1:5000/app@${D}`, `127.0.0.1:5000/app@${D}`],
  ];
  for (const [input, canonical] of cases) {
    assert.equal(parseImageReference(input).canonical, canonical, input);
  }
});

test('fields: domain, path, tag, digest, manifestRef, apiHost', () => {
  const hub = parseImageReference('busybox');
  assert.equal(hub.domain, 'docker.io');
  assert.equal(hub.path, 'library/busybox');
  assert.equal(hub.name, 'docker.io/library/busybox');
  assert.equal(hub.tag, 'latest');
  assert.equal(hub.digest, undefined);
  assert.equal(hub.manifestRef, 'latest');
  assert.equal(hub.apiHost, 'registry-1.docker.io');
  assert.equal(hub.original, 'busybox');

  const local = parseImageReference(`127.0.0.1:5000/team/app:v2@${D}`);
  assert.equal(local.domain, '127.0.0.1:5000');
  assert.equal(local.path, 'team/app');
  assert.equal(local.tag, 'v2');
  assert.equal(local.digest, D);
  assert.equal(local.manifestRef, D, 'the digest wins over the tag');
  assert.equal(local.apiHost, '127.0.0.1:5000');

  const digestOnly = parseImageReference(`app@${D}`);
  assert.equal(digestOnly.tag, undefined, 'no default tag with a digest');

  assert.equal(withDigest(local, `sha256:${'b'.repeat(64)}`).canonical, `127.0.0.1:5000/team/app@sha256:${'b'.repeat(64)}`);
  assert.equal(familiarName(hub), 'busybox:latest');
  assert.equal(familiarName(parseImageReference('user/app:1')), 'user/app:1');
  assert.equal(familiarName(local), `127.0.0.1:5000/team/app:v2@${D}`);
});

test('invalid references throw InvalidImageNameError with the reason', () => {
  const invalid: [string, RegExp][] = [
    ['', /invalid reference format/],
    [' busybox', /invalid reference format/],
    ['Busybox', /repository name \(library\/Busybox\) must be lowercase/],
    ['example.com/Team/app', /must be lowercase/],
    ['busybox:', /invalid reference format/],
    ['busybox:-tag', /invalid reference format/],
    [`busybox:${'t'.repeat(129)}`, /invalid reference format/],
    ['a//b', /invalid reference format/],
    ['app/', /invalid reference format/],
    ['-app', /invalid reference format/],
    ['app@sha256:abc', /invalid reference format/],
    [`app@sha256:${'A'.repeat(64)}`, /invalid sha256 digest/],
    [`app@sha256:${'a'.repeat(63)}`, /invalid sha256 digest/],
    [`app@md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    ['a'.repeat(64), /cannot specify 64-byte hexadecimal strings/],
    ['foo:bar:baz', /invalid reference format/],
    ['exa_mple.com:5000/app', /invalid reference format/],
    [`x.io/${'a'.repeat(260)}`, /must not be more than 255 characters/],
  ];
  for (const [input, message] of invalid) {
    assert.throws(
      () => parseImageReference(input),
      (err: unknown) => {
        assert.ok(err instanceof InvalidImageNameError, input);
        assert.ok(err instanceof ImagePullError);
        assert.equal(err.reason, 'InvalidImageName');
        assert.equal(err.code, 'VK_IMAGE_PULL');
        assert.match(err.message, message, input);
        assert.ok(err.message.startsWith(`couldn't parse image name "${input}"`), err.message);
        return true;
      },
      input,
    );
  }
});
