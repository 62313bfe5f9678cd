// ImageStore end to end against a real registry (Debian's docker-registry on 127.0.0.1) with
// images built from Debian's static busybox.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildBusyboxImage, buildImage, type ImageSpec } from '../../../../test/fixtures/registry/image-builder.ts';
import { startTestRegistry, type TestRegistry } from '../../../../test/fixtures/registry/registry.ts';
import type { Secret } from '../../../kube/types.ts';
import { containerProcess } from './container-config.ts';
import { ImagePullError } from './errors.ts';
import type { Platform } from './manifest.ts';
import { hostPlatform } from './platform.ts';
import { RegistryClient } from './registry-client.ts';
import { ImageStore } from './store.ts';
import { resolveUser } from './user.ts';
import { zstdAvailable } from './layer.ts';

const host = hostPlatform();
const other: Platform = host.architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64', variant: 'v8' };
const isRoot = process.getuid?.() === 0;
const cleanup: string[] = [];
after(async () => {
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  cleanup.push(dir);
  return dir;
}

/** A store whose registry requests are recorded. */
async function newStore(options: { dataDir?: string; platform?: Platform } = {}) {
  const requests: string[] = [];
  const counting: typeof fetch = (input, init) => {
    requests.push(new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url).pathname);
    return fetch(input, init);
  };
  const dataDir = options.dataDir ?? (await tempDir('vk-store-'));
  const store = await ImageStore.open({
    dataDir,
    registry: new RegistryClient({ fetch: counting }),
    ...(options.platform ? { platform: options.platform } : {}),
  });
  return { store, requests, dataDir };
}

function dockerConfigSecret(name: string, auths: Record<string, { username: string; password: string }>): Secret {
  return {
    metadata: { name, namespace: 'ns' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
  };
}

describe('pulling from an anonymous registry', () => {
  let registry: TestRegistry;
  let busybox: ImageSpec;
  before(async () => {
    registry = await startTestRegistry();
    busybox = await buildBusyboxImage({
      config: {
        Entrypoint: ['/bin/sh', '-c'],
        Cmd: ['echo hello'],
        Env: ['PATH=/bin', 'GREETING=hi'],
        WorkingDir: '/home/app',
        User: 'app',
        ExposedPorts: { '8080/tcp': {} },
      },
    });
  });
  after(() => registry.stop());

  test('a busybox image: rootfs, config, lookup, a pod copy that runs', async () => {
    const pushed = await registry.pushImage('library/busybox', busybox, { tag: '1.36' });
    const { store, dataDir } = await newStore();
    const image = await store.pull(pushed.reference);
    assert.equal(image.digest, pushed.digest);
    assert.equal(image.reference, pushed.reference);
    assert.equal(image.imageId, `${registry.host}/library/busybox@${pushed.digest}`);
    assert.deepEqual(image.config.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(image.config.Cmd, ['echo hello']);
    assert.deepEqual(image.config.Env, ['PATH=/bin', 'GREETING=hi']);
    assert.equal(image.config.WorkingDir, '/home/app');
    assert.equal(image.config.User, 'app');
    assert.deepEqual(Object.keys(image.config.ExposedPorts ?? {}), ['8080/tcp']);
    assert.deepEqual(image.platform, { os: host.os, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
    assert.equal(image.layers.length, 1);
    assert.equal(image.size, pushed.image.layers[0]!.size);

    const bb = await lstat(path.join(image.rootfs, 'bin/busybox'));
    assert.equal(bb.mode & 0o777, 0o755);
    assert.equal(await readlink(path.join(image.rootfs, 'bin/sh')), 'busybox');
    for (const applet of ['sh', 'echo', 'cat', 'sleep', 'httpd', 'hostname'])
      assert.ok((await lstat(path.join(image.rootfs, 'bin', applet))).isSymbolicLink(), applet);
    assert.equal((await lstat(path.join(image.rootfs, 'tmp'))).mode & 0o7777, 0o1777);
    if (isRoot) assert.equal((await lstat(path.join(image.rootfs, 'home/app'))).uid, 1000);

    // Content-addressed layout.
    assert.ok((await lstat(path.join(dataDir, 'blobs/sha256', pushed.digest.slice(7)))).isFile(), 'manifest kept');
    assert.ok((await lstat(path.join(dataDir, 'blobs/sha256', pushed.image.configDigest.slice(7)))).isFile(), 'config kept');
    assert.ok((await lstat(path.join(dataDir, 'layers/sha256', pushed.image.layers[0]!.diffId.slice(7), 'fs/bin/busybox'))).isFile());
    assert.deepEqual(await readdir(path.join(dataDir, 'tmp')), []);

    const found = await store.lookup(pushed.reference);
    assert.equal(found?.digest, pushed.digest);
    assert.equal((await store.lookup(`${registry.host}/library/busybox@${pushed.digest}`))?.digest, pushed.digest, 'by digest too');
    assert.equal(await store.lookup(`${registry.host}/library/busybox:other`), undefined);
    assert.equal((await store.list()).length, 1);

    // The merged process and user, and a private copy that actually runs.
    const proc = containerProcess(image.config, { name: 'c', image: pushed.reference, args: ['echo $GREETING'] });
    assert.deepEqual(proc.argv, ['/bin/sh', '-c', 'echo $GREETING']);
    const user = await resolveUser(image.rootfs, proc.user);
    assert.deepEqual([user.uid, user.gid, user.additionalGids], [1000, 1000, [10]]);
    const podRoot = path.join(await tempDir('vk-pod-'), 'rootfs');
    await store.createRootfs(image, podRoot);
    assert.notEqual((await lstat(path.join(podRoot, 'bin/busybox'))).ino, bb.ino);
    assert.equal(execFileSync(path.join(podRoot, 'bin/busybox'), ['echo', 'from the pod rootfs'], { encoding: 'utf8' }), 'from the pod rootfs\n');
  });

  test('a multi-layer image with whiteouts and an opaque directory', async () => {
    const spec: ImageSpec = {
      ...busybox,
      layers: [
        ...busybox.layers,
        {
          entries: [
            { path: 'etc/', type: 'directory' },
            { path: 'etc/app.conf', content: 'v1' },
            { path: 'etc/obsolete.conf', content: 'x' },
            { path: 'srv/', type: 'directory' },
            { path: 'srv/www/', type: 'directory' },
            { path: 'srv/www/old.html', content: 'old' },
            { path: 'srv/www/assets/', type: 'directory' },
            { path: 'srv/www/assets/a.css', content: 'a' },
          ],
        },
        {
          compression: 'none',
          entries: [
            { path: 'etc/', type: 'directory' },
            { path: 'etc/.wh.obsolete.conf', content: '' },
            { path: 'etc/app.conf', content: 'v2' },
            { path: 'srv/www/', type: 'directory' },
            { path: 'srv/www/.wh..wh..opq', content: '' },
            { path: 'srv/www/index.html', content: 'new' },
            { path: 'bin/.wh.httpd', content: '' },
          ],
        },
      ],
    };
    const pushed = await registry.pushImage('layers/whiteouts', spec);
    const { store } = await newStore();
    const image = await store.pull(pushed.reference);
    assert.equal(image.layers.length, 3);
    const r = image.rootfs;
    assert.equal(await readFile(path.join(r, 'etc/app.conf'), 'utf8'), 'v2');
    await assert.rejects(lstat(path.join(r, 'etc/obsolete.conf')), /ENOENT/);
    assert.ok((await lstat(path.join(r, 'etc/passwd'))).isFile(), 'the base layer etc/ is merged, not replaced');
    assert.deepEqual((await readdir(path.join(r, 'srv/www'))).sort(), ['index.html']);
    await assert.rejects(lstat(path.join(r, 'bin/httpd')), /ENOENT/);
    assert.ok((await lstat(path.join(r, 'bin/sh'))).isSymbolicLink());
    const whiteouts = execFileSync('find', [r, '-name', '.wh.*'], { encoding: 'utf8' });
    assert.equal(whiteouts, '', 'no whiteout file reaches the rootfs');
  });

  test('layers are unpacked once and shared; concurrent pulls are deduplicated', async () => {
    const base = await buildImage(busybox);
    const withExtra = await buildImage({ ...busybox, layers: [...busybox.layers, { entries: [{ path: 'extra', content: 'e' }] }] });
    const a = await registry.pushImage('shared/a', base);
    const b = await registry.pushImage('shared/b', withExtra);
    const { store, requests, dataDir } = await newStore();

    const pulls = await Promise.all([
      store.pull(a.reference),
      store.pull(a.reference),
      store.pull(a.reference),
      store.pull(b.reference),
      store.pull(b.reference),
    ]);
    assert.ok(pulls.slice(0, 3).every((p) => p.digest === a.digest));
    assert.ok(pulls.slice(3).every((p) => p.digest === b.digest));
    const baseLayer = base.layers[0]!.digest;
    assert.equal(requests.filter((p) => p.endsWith(`/blobs/${baseLayer}`)).length, 1, 'the shared base layer is downloaded once');
    assert.equal(requests.filter((p) => p.includes('/manifests/')).length, 2, 'one manifest request per reference');
    assert.deepEqual(
      (await readdir(path.join(dataDir, 'layers/sha256'))).sort(),
      [base.layers[0]!.diffId.slice(7), withExtra.layers[1]!.diffId.slice(7)].sort(),
    );
    const [ia, ib] = [pulls[0]!, pulls[3]!];
    assert.equal(
      (await lstat(path.join(ia.rootfs, 'bin/busybox'))).ino,
      (await lstat(path.join(ib.rootfs, 'bin/busybox'))).ino,
      'both rootfs hardlink the one unpacked layer',
    );

    // Pulling again: only the manifest is asked for.
    requests.length = 0;
    await store.pull(a.reference);
    assert.deepEqual(requests, [`/v2/shared/a/manifests/latest`]);
  });

  test('an OCI index: the store pulls its platform', async () => {
    const hostImage = await buildImage({ layers: [{ entries: [{ path: 'arch', content: host.architecture }] }], config: { Cmd: ['/arch'] }, platform: host });
    const otherImage = await buildImage({
      layers: [{ entries: [{ path: 'arch', content: other.architecture }] }],
      config: { Cmd: ['/arch'] },
      platform: other,
    });
    const pushed = await registry.pushIndex('multi/platform', 'v1', [otherImage, hostImage]);

    const mine = await (await newStore()).store.pull(pushed.reference);
    assert.equal(mine.digest, hostImage.manifestDigest);
    assert.equal(mine.indexDigest, pushed.digest);
    assert.equal(mine.imageId, `${registry.host}/multi/platform@${pushed.digest}`);
    assert.equal(await readFile(path.join(mine.rootfs, 'arch'), 'utf8'), host.architecture);

    const theirs = await (await newStore({ platform: other })).store.pull(pushed.reference);
    assert.equal(theirs.digest, otherImage.manifestDigest);
    assert.equal(await readFile(path.join(theirs.rootfs, 'arch'), 'utf8'), other.architecture);
    assert.equal(theirs.platform.architecture, other.architecture);

    const single = await registry.pushImage('single/other', otherImage);
    await assert.rejects(
      (await newStore()).store.pull(single.reference),
      (err: unknown) => err instanceof ImagePullError && /image is for linux\/(arm64\/v8|amd64), not linux\//.test(err.message),
    );
  });

  test('zstd, uncompressed and Docker-format images; an image pushed with skopeo', async () => {
    const { store } = await newStore();
    if (zstdAvailable()) {
      const z = await registry.pushImage('formats/zstd', {
        layers: [{ compression: 'zstd', entries: [{ path: 'z', content: 'zstd' }] }],
        config: { Cmd: ['/z'] },
      });
      assert.equal(await readFile(path.join((await store.pull(z.reference)).rootfs, 'z'), 'utf8'), 'zstd');
    }
    const plain = await registry.pushImage('formats/plain', {
      layers: [{ compression: 'none', entries: [{ path: 'p', content: 'plain' }] }],
      config: { Cmd: ['/p'] },
    });
    assert.equal(await readFile(path.join((await store.pull(plain.reference)).rootfs, 'p'), 'utf8'), 'plain');
    const docker = await registry.pushImage('formats/docker', { ...busybox, format: 'docker' });
    assert.ok((await lstat(path.join((await store.pull(docker.reference)).rootfs, 'bin/busybox'))).isFile());
    const skopeo = await registry.pushImage('formats/skopeo', busybox, { via: 'skopeo', tag: 'v1' });
    assert.ok((await lstat(path.join((await store.pull(skopeo.reference)).rootfs, 'bin/busybox'))).isFile());
  });

  test('pushImage(name, rootfsDir): a directory becomes a one-layer image, links and modes kept', async () => {
    const dir = await tempDir('vk-rootfs-src-');
    await mkdir(path.join(dir, 'app/bin'), { recursive: true });
    await writeFile(path.join(dir, 'app/bin/run'), '#!/bin/sh\necho run\n', { mode: 0o750 });
    await link(path.join(dir, 'app/bin/run'), path.join(dir, 'app/bin/run-too'));
    await symlink('bin/run', path.join(dir, 'app/start'));
    const pushed = await registry.pushImage('from/dir', dir, { tag: 'v1' });
    const image = await (await newStore()).store.pull(pushed.reference);
    const run = await lstat(path.join(image.rootfs, 'app/bin/run'));
    assert.equal(run.mode & 0o777, 0o750);
    assert.equal((await lstat(path.join(image.rootfs, 'app/bin/run-too'))).ino, run.ino);
    assert.equal(await readlink(path.join(image.rootfs, 'app/start')), 'bin/run');
  });

  test('a caller that gives up does not fail the others sharing its pull; close() aborts pulls', async () => {
    const pushed = await registry.pushImage('abort/app', busybox);
    const { store } = await newStore();
    const controller = new AbortController();
    const impatient = store.pull(pushed.reference, { signal: controller.signal });
    const patient = store.pull(pushed.reference);
    controller.abort(new Error('pod deleted'));
    await assert.rejects(impatient, /pod deleted/);
    assert.equal((await patient).digest, pushed.digest);

    const other = await registry.pushImage('abort/other', { layers: [{ entries: [{ path: 'x', content: 'x' }] }], config: { Cmd: ['/x'] } });
    const { store: closing, dataDir } = await newStore();
    const pending = closing.pull(other.reference);
    closing.close();
    await assert.rejects(pending, /image store closed/);
    assert.deepEqual(await readdir(path.join(dataDir, 'tmp')), []);
  });

  test('a nonexistent image: ErrImagePull with the registry message', async () => {
    const { store } = await newStore();
    const image = `${registry.host}/no/such-image:1`;
    await assert.rejects(store.pull(image), (err: unknown) => {
      assert.ok(err instanceof ImagePullError);
      assert.equal(err.reason, 'ErrImagePull');
      assert.equal(err.message, `failed to pull image "${image}": manifest ${image}: MANIFEST_UNKNOWN: manifest unknown`);
      return true;
    });
    await assert.rejects(store.pull('Bad Reference'), (err: unknown) => err instanceof ImagePullError && err.reason === 'InvalidImageName');
  });

  test('a corrupt layer blob: digest mismatch, nothing half-made is left', async () => {
    const spec: ImageSpec = { layers: [{ entries: [{ path: 'data', content: 'x'.repeat(5000) }] }], config: { Cmd: ['/data'] } };
    const pushed = await registry.pushImage('corrupt/layer', spec);
    await registry.corruptBlob(pushed.image.layers[0]!.digest);
    const { store, dataDir } = await newStore();
    await assert.rejects(store.pull(pushed.reference), (err: unknown) => {
      assert.ok(err instanceof ImagePullError);
      assert.match(
        err.message,
        new RegExp(
          `^failed to pull image "${pushed.reference}": blob ${pushed.image.layers[0]!.digest}: digest mismatch: expected ${pushed.image.layers[0]!.digest}, got sha256:`,
        ),
      );
      return true;
    });
    assert.deepEqual(await readdir(path.join(dataDir, 'tmp')), []);
    assert.deepEqual(await readdir(path.join(dataDir, 'layers/sha256')), []);
    assert.deepEqual(await readdir(path.join(dataDir, 'images/sha256')), []);
    const blobs = await readdir(path.join(dataDir, 'blobs/sha256'));
    assert.ok(!blobs.includes(pushed.image.layers[0]!.digest.slice(7)), 'the corrupt blob is not stored');
    assert.equal(await store.lookup(pushed.reference), undefined);
  });

  test('imagePullPolicy: IfNotPresent uses the store, Never fails when absent, Always asks the registry', async () => {
    const pushed = await registry.pushImage('policy/app', { layers: [{ entries: [{ path: 'v', content: '1' }] }], config: { Cmd: ['/v'] } }, { tag: '1.0' });
    const { store, requests, dataDir } = await newStore();
    await assert.rejects(
      store.ensure(pushed.reference, 'Never'),
      (err: unknown) =>
        err instanceof ImagePullError &&
        err.reason === 'ErrImageNeverPull' &&
        err.message === `Container image "${pushed.reference}" is not present with pull policy of Never`,
    );
    assert.deepEqual(requests, []);

    const first = await store.ensure(pushed.reference, undefined); // default for a tag: IfNotPresent
    assert.equal(first.action, 'pulled');
    requests.length = 0;
    const second = await store.ensure(pushed.reference, 'IfNotPresent');
    assert.equal(second.action, 'present');
    assert.equal((await store.ensure(pushed.reference, 'Never')).action, 'present');
    assert.deepEqual(requests, [], 'no registry access for a present image');

    // The tag moves: Always sees it, IfNotPresent keeps the old one.
    const v2 = await registry.pushImage('policy/app', { layers: [{ entries: [{ path: 'v', content: '2' }] }], config: { Cmd: ['/v'] } }, { tag: '1.0' });
    assert.equal((await store.ensure(pushed.reference, 'IfNotPresent')).image.digest, pushed.digest);
    const always = await store.ensure(pushed.reference, 'Always');
    assert.equal(always.action, 'pulled');
    assert.equal(always.image.digest, v2.digest);
    assert.equal(await readFile(path.join(always.image.rootfs, 'v'), 'utf8'), '2');

    // A second store on the same directory (a restarted process) finds it without the registry.
    const reopened = await newStore({ dataDir });
    assert.equal((await reopened.store.ensure(pushed.reference, 'IfNotPresent')).image.digest, v2.digest);
    assert.deepEqual(reopened.requests, []);
  });
});

describe('private images', () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  before(async () => {
    [basic, token] = await Promise.all([
      startTestRegistry({ auth: { type: 'basic', users: { alice: 'wonderland' } } }),
      startTestRegistry({ auth: { type: 'token', users: { bob: 'builder' } } }),
    ]);
  });
  after(async () => {
    await basic.stop();
    await token.stop();
  });

  const spec: ImageSpec = { layers: [{ entries: [{ path: 'secret', content: 'private' }] }], config: { Cmd: ['/secret'] } };

  test('Basic auth: imagePullSecrets are matched by host; without them UNAUTHORIZED', async () => {
    const pushed = await basic.pushImage('team/private', spec);
    const { store } = await newStore();
    await assert.rejects(
      store.pull(pushed.reference),
      (err: unknown) => err instanceof ImagePullError && /UNAUTHORIZED: authentication required/.test(err.message),
    );
    await assert.rejects(
      store.pull(pushed.reference, {
        pullSecrets: [dockerConfigSecret('other-host', { 'registry.example.com': { username: 'alice', password: 'wonderland' } })],
      }),
      /UNAUTHORIZED: authentication required \(pulled anonymously/,
    );
    const image = await store.pull(pushed.reference, {
      pullSecrets: [dockerConfigSecret('regcred', { [`http://${basic.host}`]: { username: 'alice', password: 'wonderland' } })],
    });
    assert.equal(await readFile(path.join(image.rootfs, 'secret'), 'utf8'), 'private');
  });

  test('token auth: a refused credential is followed by the next one, as the kubelet does', async () => {
    const pushed = await token.pushImage('team/private', spec);
    const { store } = await newStore();
    await assert.rejects(
      store.pull(pushed.reference),
      (err: unknown) => err instanceof ImagePullError && err.isAuthError && /UNAUTHORIZED: authentication required/.test(err.message),
    );
    const secrets = [
      dockerConfigSecret('stale', { [token.host]: { username: 'bob', password: 'old-password' } }),
      dockerConfigSecret('current', { [token.host]: { username: 'bob', password: 'builder' } }),
    ];
    const image = await store.pull(pushed.reference, { pullSecrets: secrets });
    assert.equal(await readFile(path.join(image.rootfs, 'secret'), 'utf8'), 'private');
    const users = token.tokenServer!.requests.map((r) => r.user);
    assert.ok(users.includes('rejected:bob') && users.includes('bob'));
    await assert.rejects(
      (await newStore()).store.pull(pushed.reference, { pullSecrets: [secrets[0]!] }),
      (err: unknown) => err instanceof ImagePullError && /failed to fetch a token as bob .*UNAUTHORIZED: incorrect username or password/.test(err.message),
    );
  });

  test('a malformed pull secret is an ErrImagePull naming the secret', async () => {
    const { store } = await newStore();
    const bad: Secret = {
      metadata: { name: 'broken', namespace: 'ns' },
      type: 'kubernetes.io/dockerconfigjson',
      data: { '.dockerconfigjson': Buffer.from('{').toString('base64') },
    };
    await assert.rejects(
      store.pull(`${token.host}/x:1`, { pullSecrets: [bad] }),
      (err: unknown) => err instanceof ImagePullError && /imagePullSecret "ns\/broken"/.test(err.message),
    );
  });
});
