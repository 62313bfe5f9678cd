// RegistryClient against a real registry (Debian's docker-registry on 127.0.0.1), plus a few
// fake servers for what a real registry will not serve (schema 1, lying digests).
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildBusyboxImage, buildImage, type ImageSpec } from '../../../../test/fixtures/registry/image-builder.ts';
import { startTestRegistry, type TestRegistry } from '../../../../test/fixtures/registry/registry.ts';
import { ImagePullError } from './errors.ts';
import { MediaType, type Platform } from './manifest.ts';
import { formatPlatform, hostPlatform } from './platform.ts';
import { parseImageReference } from './reference.ts';
import { isLoopbackHost, RegistryClient } from './registry-client.ts';

const host = hostPlatform();
const other: Platform = host.architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' };

function small(marker: string, platform?: Platform): ImageSpec {
  return { layers: [{ entries: [{ path: 'marker', content: marker }] }], config: { Cmd: ['/marker'] }, ...(platform ? { platform } : {}) };
}

function isPullError(pattern: RegExp, extra: (err: ImagePullError) => void = () => {}) {
  return (err: unknown) => {
    assert.ok(err instanceof ImagePullError, `not an ImagePullError: ${String(err)}`);
    assert.equal(err.code, 'VK_IMAGE_PULL');
    assert.equal(err.reason, 'ErrImagePull');
    assert.match(err.message, /^failed to pull image "/);
    assert.match(err.message, pattern);
    extra(err);
    return true;
  };
}

test('loopback registries use http; others https unless listed as insecure', () => {
  assert.ok(isLoopbackHost('localhost'));
  assert.ok(isLoopbackHost('127.0.0.1'));
  assert.ok(isLoopbackHost('127.1.2.3'));
  assert.ok(isLoopbackHost('[::1]'));
  assert.ok(!isLoopbackHost('10.0.0.1'));
  const client = new RegistryClient({ insecureRegistries: ['registry.lan', 'other.lan:5000'] });
  assert.equal(client.scheme('127.0.0.1:5000'), 'http');
  assert.equal(client.scheme('localhost:5000'), 'http');
  assert.equal(client.scheme('[::1]:5000'), 'http');
  assert.equal(client.scheme('registry.lan:8443'), 'http');
  assert.equal(client.scheme('other.lan:5000'), 'http');
  assert.equal(client.scheme('other.lan:5001'), 'https');
  assert.equal(client.scheme('ghcr.io'), 'https');
  assert.equal(client.baseUrl(parseImageReference('busybox')), 'https://registry-1.docker.io/v2/library/busybox');
});

describe('anonymous registry', () => {
  let registry: TestRegistry;
  const work: string[] = [];
  before(async () => {
    registry = await startTestRegistry();
  });
  after(async () => {
    await registry.stop();
    for (const dir of work) await rm(dir, { recursive: true, force: true });
  });

  test('OCI and Docker v2 manifests resolve with their digests', async () => {
    const client = new RegistryClient();
    const oci = await registry.pushImage('plain/oci', small('oci'), { tag: 'v1' });
    const resolved = await client.resolve(parseImageReference(oci.reference));
    assert.equal(resolved.digest, oci.digest);
    assert.equal(resolved.mediaType, MediaType.ociManifest);
    assert.equal(resolved.index, undefined);
    assert.equal(resolved.manifest.layers.length, 1);

    const docker = await registry.pushImage('plain/docker', { ...small('docker'), format: 'docker' });
    const d = await client.resolve(parseImageReference(docker.reference));
    assert.equal(d.mediaType, MediaType.dockerManifest);
    assert.equal(d.digest, docker.digest);

    const byDigest = await client.resolve(parseImageReference(`${registry.host}/plain/oci@${oci.digest}`));
    assert.equal(byDigest.digest, oci.digest);
  });

  test('an OCI index with two platforms: the host platform is picked, or the one asked for', async () => {
    const pushed = await registry.pushIndex('multi/arch', 'v1', [small('other', other), small('host', host)]);
    const ref = parseImageReference(pushed.reference);
    const client = new RegistryClient();
    const mine = await client.resolve(ref);
    const [otherImage, hostImage] = pushed.index.images;
    assert.equal(mine.digest, hostImage!.manifestDigest);
    assert.equal(mine.index?.digest, pushed.digest);
    assert.equal(mine.index?.mediaType, MediaType.ociIndex);
    assert.equal(mine.platform?.architecture, host.architecture);
    const theirs = await client.resolve(ref, { platform: other });
    assert.equal(theirs.digest, otherImage!.manifestDigest);
    await assert.rejects(
      client.resolve(ref, { platform: { os: 'linux', architecture: 's390x' } }),
      isPullError(
        new RegExp(`no matching manifest for linux/s390x in the manifest list entries \\(available: ${formatPlatform(other)}, ${formatPlatform(host)}\\)`),
      ),
    );
  });

  test('a Docker manifest list works the same', async () => {
    const pushed = await registry.pushIndex(
      'multi/docker',
      'v1',
      [
        { ...small('o', other), format: 'docker' },
        { ...small('h', host), format: 'docker' },
      ],
      { format: 'docker' },
    );
    const resolved = await new RegistryClient().resolve(parseImageReference(pushed.reference));
    assert.equal(resolved.index?.mediaType, MediaType.dockerManifestList);
    assert.equal(resolved.digest, pushed.index.images[1]!.manifestDigest);
  });

  test('a missing image surfaces the registry message: MANIFEST_UNKNOWN: manifest unknown', async () => {
    const image = `${registry.host}/does/not-exist:1.0`;
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(image)),
      isPullError(/manifest 127\.0\.0\.1:\d+\/does\/not-exist:1\.0: MANIFEST_UNKNOWN: manifest unknown$/, (err) => {
        assert.equal(err.image, image);
        assert.equal(err.status, 404);
        assert.deepEqual(err.registryCodes, ['MANIFEST_UNKNOWN']);
        assert.ok(err.message.startsWith(`failed to pull image "${image}": `));
      }),
    );
    const pushed = await registry.pushImage('plain/tagged', small('t'), { tag: 'exists' });
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(pushed.reference.replace(':exists', ':nope'))),
      isPullError(/MANIFEST_UNKNOWN: manifest unknown/),
    );
  });

  test('blobs are verified while streaming; a corrupt blob is an error and leaves nothing behind', async () => {
    const image = await buildImage(small('to-corrupt'));
    const pushed = await registry.pushImage('corrupt/blob', image);
    const ref = parseImageReference(pushed.reference);
    const client = new RegistryClient();
    const resolved = await client.resolve(ref);
    const dir = await mkdtemp(path.join(tmpdir(), 'vk-blob-'));
    work.push(dir);
    const layer = resolved.manifest.layers[0]!;
    await client.fetchBlob(ref, layer, path.join(dir, 'good'), { tmpDir: dir });
    assert.deepEqual(await readdir(dir), ['good']);

    await registry.corruptBlob(layer.digest);
    await assert.rejects(
      client.fetchBlob(ref, layer, path.join(dir, 'bad'), { tmpDir: dir }),
      isPullError(new RegExp(`blob ${layer.digest}: digest mismatch: expected ${layer.digest}, got sha256:[0-9a-f]{64}`)),
    );
    assert.deepEqual(await readdir(dir), ['good'], 'no partial or final file');

    const configBytes = await client.fetchBlobBytes(ref, resolved.manifest.config);
    assert.equal(JSON.parse(Buffer.from(configBytes).toString()).config.Cmd[0], '/marker');
    await registry.corruptBlob(resolved.manifest.config.digest);
    await assert.rejects(client.fetchBlobBytes(ref, resolved.manifest.config), isPullError(/digest mismatch/));
  });

  test('an unknown blob: BLOB_UNKNOWN', async () => {
    const pushed = await registry.pushImage('blob/unknown', small('b'));
    const ref = parseImageReference(pushed.reference);
    const missing = { mediaType: MediaType.ociLayerGzip, digest: `sha256:${'9'.repeat(64)}`, size: 10 };
    await assert.rejects(
      new RegistryClient().fetchBlobBytes(ref, missing),
      isPullError(/BLOB_UNKNOWN: blob unknown to registry/, (err) => assert.equal(err.status, 404)),
    );
  });

  test('an image pushed by skopeo (OCI layout → registry) resolves and verifies', async () => {
    const spec = await buildBusyboxImage({ applets: ['sh', 'echo'] });
    const pushed = await registry.pushImage('skopeo/busybox', spec, { via: 'skopeo', tag: '1' });
    const resolved = await new RegistryClient().resolve(parseImageReference(pushed.reference));
    assert.equal(resolved.digest, pushed.digest);
  });
});

describe('registry with Basic (htpasswd) auth', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startTestRegistry({ auth: { type: 'basic', users: { alice: 'wonderland' } } });
  });
  after(() => registry.stop());

  test('anonymous: UNAUTHORIZED: authentication required; wrong password too; the right one works', async () => {
    const pushed = await registry.pushImage('private/app', small('secret'));
    const ref = parseImageReference(pushed.reference);
    const client = new RegistryClient();
    await assert.rejects(
      client.resolve(ref),
      isPullError(/UNAUTHORIZED: authentication required \(pulled anonymously: no credentials matched this registry\)/, (err) => {
        assert.equal(err.status, 401);
        assert.ok(err.isAuthError);
      }),
    );
    await assert.rejects(client.resolve(ref, { credential: { username: 'alice', password: 'wrong' } }), isPullError(/UNAUTHORIZED: authentication required$/));
    const resolved = await client.resolve(ref, { credential: { username: 'alice', password: 'wonderland' } });
    assert.equal(resolved.digest, pushed.digest);
    const blob = await client.fetchBlobBytes(ref, resolved.manifest.config, { credential: { username: 'alice', password: 'wonderland' } });
    assert.ok(blob.length > 0);
  });
});

describe('registry with token auth', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startTestRegistry({ auth: { type: 'token', users: { bob: 'builder' }, publicRepositories: ['public/app'] } });
  });
  after(() => registry.stop());

  test('a public repository: anonymous token, then cached', async () => {
    const pushed = await registry.pushImage('public/app', small('public'));
    const ref = parseImageReference(pushed.reference);
    const client = new RegistryClient();
    const before = registry.tokenServer!.requests.length;
    const resolved = await client.resolve(ref);
    assert.equal(resolved.digest, pushed.digest);
    await client.fetchBlobBytes(ref, resolved.manifest.config);
    const asked = registry.tokenServer!.requests.slice(before);
    assert.deepEqual(asked, [{ user: 'anonymous', scope: ['repository:public/app:pull'] }], 'one token request, reused for later requests');
  });

  test('a private repository: anonymous is refused, credentials get a token, wrong ones are refused by the token server', async () => {
    const pushed = await registry.pushImage('private/app', small('private'));
    const ref = parseImageReference(pushed.reference);
    const client = new RegistryClient();
    await assert.rejects(
      client.resolve(ref),
      isPullError(/UNAUTHORIZED: authentication required/, (err) => assert.ok(err.isAuthError)),
    );
    await assert.rejects(
      client.resolve(ref, { credential: { username: 'bob', password: 'nope' } }),
      isPullError(/failed to fetch a token as bob from http:\/\/127\.0\.0\.1:\d+\/token: UNAUTHORIZED: incorrect username or password/, (err) =>
        assert.equal(err.status, 401),
      ),
    );
    const resolved = await client.resolve(ref, { credential: { username: 'bob', password: 'builder' } });
    assert.equal(resolved.digest, pushed.digest);
    assert.ok(registry.tokenServer!.requests.some((r) => r.user === 'bob' && r.scope.includes('repository:private/app:pull')));
  });
});

describe('fake registries', () => {
  let server: http.Server;
  let base: string;
  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void = () => {};
  before(async () => {
    server = http.createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('schema 1 manifests are refused clearly', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.dockerSchema1Signed });
      res.end(JSON.stringify({ schemaVersion: 1, name: 'old', tag: 'latest', fsLayers: [] }));
    };
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(`${base}/old:latest`)),
      isPullError(
        /unsupported manifest media type application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws \(Docker image manifest schema 1 is deprecated/,
      ),
    );
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ schemaVersion: 1, name: 'old', tag: 'latest', fsLayers: [] }));
    };
    await assert.rejects(new RegistryClient().resolve(parseImageReference(`${base}/old:latest`)), isPullError(/unsupported manifest schema version 1/));
  });

  test('content that does not match the digest asked for is refused', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest });
      res.end(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 },
          layers: [],
        }),
      );
    };
    const wanted = `sha256:${'2'.repeat(64)}`;
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(`${base}/liar@${wanted}`)),
      isPullError(/digest mismatch: the registry served content with digest sha256:/),
    );
  });

  test('non-JSON errors, unreachable registries and timeouts are described', async () => {
    handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    };
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(`${base}/x:1`)),
      isPullError(/502 Bad Gateway: <html><body>Bad Gateway<\/body><\/html>/),
    );
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      new RegistryClient().resolve(parseImageReference(`127.0.0.1:${closedPort}/x:1`)),
      isPullError(new RegExp(`GET http://127\\.0\\.0\\.1:${closedPort}/v2/x/manifests/1: connect ECONNREFUSED`)),
    );
    handler = () => {}; // never answers
    await assert.rejects(
      new RegistryClient({ requestTimeoutMs: 200 }).resolve(parseImageReference(`${base}/slow:1`)),
      isPullError(/no response within 200 ms/),
    );
    server.closeAllConnections();
  });
});
