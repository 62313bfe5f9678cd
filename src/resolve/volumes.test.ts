import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Volume } from '../kube/types.ts';
import type { ResolvedVolume, VolumeFile } from '../providers/provider.ts';
import { MissingReferenceError, UnsupportedPodSpecError } from './errors.ts';
import { configMap, context, fakeSource, pod, secret } from '../../test/fixtures/fake-source.ts';
import type { FakeSource } from '../../test/fixtures/fake-source.ts';
import { ObjectCache } from './objects.ts';
import type { ResolveContext } from './types.ts';
import { resolveVolumes } from './volumes.ts';

function standardSource(): FakeSource {
  return fakeSource({
    configMaps: [
      configMap('cfg', { 'app.conf': 'port=80', 'b.txt': 'bee' }, { 'logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64') }),
      configMap('kube-root-ca.crt', { 'ca.crt': '-----BEGIN CERTIFICATE-----' }),
    ],
    secrets: [secret('tls', { 'tls.crt': 'CERT', 'tls.key': 'KEY' })],
  });
}

async function volumes(list: Volume[], source: FakeSource = standardSource(), ctx: ResolveContext = context) {
  const p = pod({ volumes: list, containers: [{ name: 'main', resources: { limits: { memory: '256Mi' } } }] });
  return resolveVolumes(p, new ObjectCache(source, 'ns'), source, ctx);
}

async function filesOf(volume: Volume, source?: FakeSource): Promise<{ path: string; text: string; mode: string }[]> {
  const result = (await volumes([volume], source)).volumes.get(volume.name);
  assert.ok(result?.type === 'files');
  return result.files.map(show);
}

function show(file: VolumeFile) {
  return { path: file.path, text: Buffer.from(file.content).toString('latin1'), mode: file.mode.toString(8) };
}

test('configMap volume: every data and binaryData key, default mode 0644', async () => {
  assert.deepEqual(await filesOf({ name: 'v', configMap: { name: 'cfg' } }), [
    { path: 'app.conf', text: 'port=80', mode: '644' },
    { path: 'b.txt', text: 'bee', mode: '644' },
    { path: 'logo.png', text: '\x89PNG', mode: '644' },
  ]);
});

test('items map keys to paths with per-item modes over defaultMode', async () => {
  const files = await filesOf({
    name: 'v',
    configMap: {
      name: 'cfg',
      defaultMode: 0o400,
      items: [
        { key: 'app.conf', path: 'etc/app/app.conf' },
        { key: 'logo.png', path: 'img/logo.png', mode: 0o600 },
      ],
    },
  });
  assert.deepEqual(files, [
    { path: 'etc/app/app.conf', text: 'port=80', mode: '400' },
    { path: 'img/logo.png', text: '\x89PNG', mode: '600' },
  ]);
});

test('secret volume decodes base64 data', async () => {
  assert.deepEqual(await filesOf({ name: 'v', secret: { secretName: 'tls', defaultMode: 0o440 } }), [
    { path: 'tls.crt', text: 'CERT', mode: '440' },
    { path: 'tls.key', text: 'KEY', mode: '440' },
  ]);
  assert.deepEqual(await filesOf({ name: 'v', secret: { secretName: 'tls', items: [{ key: 'tls.key', path: 'key.pem', mode: 0o400 }] } }), [
    { path: 'key.pem', text: 'KEY', mode: '400' },
  ]);
  const file = (await volumes([{ name: 'v', secret: { secretName: 'tls' } }])).volumes.get('v');
  assert.ok(file?.type === 'files' && file.files[0]?.content.constructor === Uint8Array, 'plain Uint8Array content');
});

test('a missing optional object gives an empty volume; missing optional keys are skipped', async () => {
  assert.deepEqual(await filesOf({ name: 'v', configMap: { name: 'nope', optional: true } }), []);
  assert.deepEqual(await filesOf({ name: 'v', secret: { secretName: 'nope', optional: true, items: [{ key: 'a', path: 'a' }] } }), []);
  assert.deepEqual(
    await filesOf({
      name: 'v',
      configMap: {
        name: 'cfg',
        optional: true,
        items: [
          { key: 'absent', path: 'x' },
          { key: 'b.txt', path: 'b' },
        ],
      },
    }),
    [{ path: 'b', text: 'bee', mode: '644' }],
  );
});

async function mountFailure(volume: Volume): Promise<MissingReferenceError> {
  try {
    await volumes([volume]);
  } catch (err) {
    assert.ok(err instanceof MissingReferenceError, String(err));
    return err;
  }
  assert.fail('expected a MissingReferenceError');
}

test('missing required objects and keys fail the mount like the kubelet', async () => {
  let err = await mountFailure({ name: 'cfg-vol', configMap: { name: 'nope' } });
  assert.equal(err.message, 'MountVolume.SetUp failed for volume "cfg-vol" : configmap "nope" not found');
  assert.equal(err.reason, 'ContainerCreating');
  assert.equal(err.eventReason, 'FailedMount');
  assert.equal(err.volumeName, 'cfg-vol');
  assert.equal(err.containerName, undefined);
  assert.equal(err.objectName, 'nope');
  err = await mountFailure({ name: 's', secret: { secretName: 'nope' } });
  assert.equal(err.message, 'MountVolume.SetUp failed for volume "s" : secret "nope" not found');
  err = await mountFailure({ name: 'v', configMap: { name: 'cfg', items: [{ key: 'absent', path: 'x' }] } });
  assert.equal(err.message, 'MountVolume.SetUp failed for volume "v" : configmap references non-existent config key: absent');
  assert.equal(err.key, 'absent');
  err = await mountFailure({ name: 'v', secret: { secretName: 'tls', items: [{ key: 'absent', path: 'x' }] } });
  assert.equal(err.message, 'MountVolume.SetUp failed for volume "v" : references non-existent secret key: absent');
  err = await mountFailure({ name: 'p', projected: { sources: [{ configMap: { name: 'nope' } }] } });
  assert.equal(err.message, 'MountVolume.SetUp failed for volume "p" : configmap "nope" not found');
});

test('downwardAPI volume: fieldRef and resourceFieldRef items', async () => {
  const files = await filesOf({
    name: 'info',
    downwardAPI: {
      items: [
        { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
        { path: 'name', fieldRef: { fieldPath: 'metadata.name' }, mode: 0o600 },
        { path: 'mem_limit', resourceFieldRef: { containerName: 'main', resource: 'limits.memory', divisor: '1Mi' } },
        { path: 'cpu_limit', resourceFieldRef: { containerName: 'main', resource: 'limits.cpu', divisor: '1m' } },
      ],
    },
  });
  assert.deepEqual(files, [
    { path: 'cpu_limit', text: '8000', mode: '644' },
    { path: 'labels', text: 'app="web"', mode: '644' },
    { path: 'mem_limit', text: '256', mode: '644' },
    { path: 'name', text: 'web', mode: '600' },
  ]);
  await assert.rejects(
    volumes([{ name: 'info', downwardAPI: { items: [{ path: 'ip', fieldRef: { fieldPath: 'status.podIP' } }] } }]),
    (err: unknown) => err instanceof UnsupportedPodSpecError && err.reason === 'UnsupportedField' && err.volumeName === 'info',
  );
});

const kubeApiAccess: Volume = {
  name: 'kube-api-access-abcde',
  projected: {
    defaultMode: 0o644,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
    ],
  },
};

test('the kube-api-access projected volume: token, CA and namespace', async () => {
  const source = standardSource();
  const result = await volumes([kubeApiAccess], source);
  const volume = result.volumes.get('kube-api-access-abcde');
  assert.ok(volume?.type === 'files');
  assert.equal(volume.source, 'projected');
  assert.deepEqual(volume.files.map(show), [
    { path: 'ca.crt', text: '-----BEGIN CERTIFICATE-----', mode: '644' },
    { path: 'namespace', text: 'ns', mode: '644' },
    { path: 'token', text: 'token-for-sa', mode: '644' },
  ]);
  assert.deepEqual(source.tokenRequests, [{ namespace: 'ns', serviceAccount: 'sa', request: { expirationSeconds: 3607, podName: 'web', podUid: 'uid-1' } }]);
  // Expires 2030-01-01T01:00:00Z; refresh at 80% of the 3607 s lifetime.
  assert.equal(result.refreshAt?.toISOString(), new Date(Date.parse('2030-01-01T01:00:00Z') - 3607 * 200).toISOString());
});

test('serviceAccountToken defaults: 3600 s, audience passed through, projected defaultMode', async () => {
  const source = standardSource();
  const result = await volumes(
    [
      {
        name: 'tok',
        projected: {
          defaultMode: 0o440,
          sources: [
            { serviceAccountToken: { audience: 'vault', path: 'vault/token' } },
            { secret: { name: 'tls', items: [{ key: 'tls.crt', path: 'tls.crt', mode: 0o400 }] } },
          ],
        },
      },
    ],
    source,
  );
  assert.deepEqual(source.tokenRequests[0]?.request, { audience: 'vault', expirationSeconds: 3600, podName: 'web', podUid: 'uid-1' });
  const volume = result.volumes.get('tok');
  assert.ok(volume?.type === 'files');
  assert.deepEqual(volume.files.map(show), [
    { path: 'tls.crt', text: 'CERT', mode: '400' },
    { path: 'vault/token', text: 'token-for-sa', mode: '440' },
  ]);
});

test('projected sources later in the list win for the same path', async () => {
  const files = await filesOf({
    name: 'p',
    projected: {
      sources: [{ configMap: { name: 'cfg', items: [{ key: 'b.txt', path: 'x' }] } }, { secret: { name: 'tls', items: [{ key: 'tls.key', path: 'x' }] } }],
    },
  });
  assert.deepEqual(files, [{ path: 'x', text: 'KEY', mode: '644' }]);
});

test('emptyDir volumes are declared with medium and size limit', async () => {
  const result = await volumes([
    { name: 'scratch', emptyDir: {} },
    { name: 'shm', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
  ]);
  assert.deepEqual<ResolvedVolume | undefined>(result.volumes.get('scratch'), { name: 'scratch', type: 'emptyDir', medium: '' });
  assert.deepEqual<ResolvedVolume | undefined>(result.volumes.get('shm'), { name: 'shm', type: 'emptyDir', medium: 'Memory', sizeLimit: '64Mi' });
  assert.equal(result.refreshAt, undefined);
});

test('unsupported volume types and projections are rejected, naming the volume', async () => {
  const cases: [Volume, RegExp][] = [
    [{ name: 'host', hostPath: { path: '/var/log' } }, /volume "host": hostPath volumes are not supported/],
    [{ name: 'claim', persistentVolumeClaim: { claimName: 'data' } }, /volume "claim": persistentVolumeClaim/],
    [{ name: 'csi', csi: { driver: 'x' } }, /volume "csi": csi/],
    [{ name: 'ctb', projected: { sources: [{ clusterTrustBundle: { name: 'b', path: 'b.pem' } }] } }, /volume "ctb": projected clusterTrustBundle/],
  ];
  for (const [volume, pattern] of cases) {
    await assert.rejects(
      volumes([volume]),
      (err: unknown) =>
        err instanceof UnsupportedPodSpecError && err.reason === 'UnsupportedVolume' && err.volumeName === volume.name && pattern.test(err.message),
    );
  }
});

test('providerVolumeTypes are left to the provider', async () => {
  const result = await volumes(
    [
      { name: 'host', hostPath: { path: '/var/log' } },
      { name: 'e', emptyDir: {} },
    ],
    standardSource(),
    { ...context, providerVolumeTypes: ['hostPath'] },
  );
  assert.deepEqual([...result.volumes.keys()], ['e']);
});

test('item paths that escape the volume are rejected; others are cleaned', async () => {
  for (const path of ['../etc/passwd', '/abs', 'a/../../b', '..hidden/x']) {
    await assert.rejects(
      volumes([{ name: 'v', configMap: { name: 'cfg', items: [{ key: 'b.txt', path }] } }]),
      (err: unknown) => err instanceof UnsupportedPodSpecError && err.reason === 'InvalidVolumePath' && err.message.includes(path),
      path,
    );
  }
  assert.deepEqual(await filesOf({ name: 'v', configMap: { name: 'cfg', items: [{ key: 'b.txt', path: 'a//./b/' }] } }), [
    { path: 'a/b', text: 'bee', mode: '644' },
  ]);
});

test('long-lived tokens are refreshed at least daily; the earliest token sets refreshAt', async () => {
  const source = standardSource();
  const result = await volumes(
    [
      { name: 'long', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 7 * 24 * 3600, path: 't' } }] } },
      { name: 'short', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 48 * 3600, path: 't' } }] } },
    ],
    source,
  );
  const expires = Date.parse('2030-01-01T01:00:00Z');
  // Both tokens "expire" at the same instant in the fake; the week-long one was issued earliest.
  assert.equal(result.refreshAt?.getTime(), expires - 7 * 24 * 3600 * 1000 + 24 * 3600 * 1000);
});
