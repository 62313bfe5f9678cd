import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pod } from '../kube/types.ts';
import { configMap, context, fakeSource, pod, secret, service } from '../../test/fixtures/fake-source.ts';
import { MissingReferenceError, PodConfigError, UnsupportedPodSpecError, resolvePod } from './resolve-pod.ts';

function source() {
  return fakeSource({
    configMaps: [configMap('app', { MODE: 'prod', 'x=y': '1' }), configMap('kube-root-ca.crt', { 'ca.crt': 'CA' })],
    secrets: [secret('db', { password: 'pw' })],
    services: [service('kubernetes', '10.96.0.1', [{ name: 'https', port: 443 }], 'default'), service('api', '10.96.1.1', [{ port: 8080 }])],
  });
}

function fullPod(): Pod {
  return pod({
    initContainers: [{ name: 'init', image: 'busybox', env: [{ name: 'MODE', valueFrom: { configMapKeyRef: { name: 'app', key: 'MODE' } } }] }],
    containers: [
      {
        name: 'main',
        image: 'app',
        envFrom: [{ configMapRef: { name: 'app' } }],
        env: [
          { name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          { name: 'URL', value: 'http://$(API_SERVICE_HOST):$(API_SERVICE_PORT)/$(MODE)' },
        ],
        args: ['--mode=$(MODE)'],
        volumeMounts: [{ name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
      },
    ],
    ephemeralContainers: [{ name: 'debug', image: 'busybox', env: [{ name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }] }],
    volumes: [
      {
        name: 'kube-api-access-x',
        projected: {
          sources: [
            { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
            { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
          ],
        },
      },
      { name: 'scratch', emptyDir: {} },
    ],
  });
}

test('resolves every container and volume into a deep copy', async () => {
  const original = fullPod();
  const before = structuredClone(original);
  const resolved = await resolvePod(original, source(), context);
  assert.deepEqual(original, before, 'the input pod is untouched');

  const spec = resolved.pod.spec!;
  const main = spec.containers[0]!;
  assert.ok(!('envFrom' in main));
  const env = Object.fromEntries(main.env!.map((e) => [e.name, e.value]));
  assert.equal(env.MODE, 'prod');
  assert.equal(env.DB_PASSWORD, 'pw');
  assert.equal(env.URL, 'http://10.96.1.1:8080/prod');
  assert.equal(env.KUBERNETES_SERVICE_HOST, '10.96.0.1');
  assert.equal(env.API_PORT, 'tcp://10.96.1.1:8080');
  assert.ok(main.env!.every((e) => e.valueFrom === undefined && typeof e.value === 'string'));
  assert.deepEqual(main.args, ['--mode=prod']);

  assert.equal(spec.initContainers![0]!.env![0]!.value, 'prod');
  assert.deepEqual(
    spec.ephemeralContainers![0]!.env!.find((e) => e.name === 'POD'),
    { name: 'POD', value: 'web' },
  );

  const token = resolved.volumes.get('kube-api-access-x');
  assert.ok(token?.type === 'files');
  assert.deepEqual(
    token.files.map((f) => f.path),
    ['ca.crt', 'namespace', 'token'],
  );
  assert.deepEqual(resolved.volumes.get('scratch'), { name: 'scratch', type: 'emptyDir', medium: '' });
  assert.ok(resolved.refreshAt instanceof Date);

  assert.deepEqual(resolved.warnings, [
    {
      reason: 'InvalidEnvironmentVariableNames',
      message: 'Keys [x=y] from the EnvFrom configMap ns/app were skipped since they are considered invalid environment variable names.',
    },
  ]);
});

test('enableServiceLinks=false still injects the kubernetes service', async () => {
  const p = fullPod();
  p.spec!.enableServiceLinks = false;
  const resolved = await resolvePod(p, source(), context);
  const names = resolved.pod.spec!.containers[0]!.env!.map((e) => e.name);
  assert.ok(names.includes('KUBERNETES_SERVICE_HOST'));
  assert.ok(!names.includes('API_SERVICE_HOST'));
  // Unknown references stay as written.
  assert.equal(resolved.pod.spec!.containers[0]!.env!.find((e) => e.name === 'URL')!.value, 'http://$(API_SERVICE_HOST):$(API_SERVICE_PORT)/prod');
});

test('a missing required Secret stops resolution with CreateContainerConfigError', async () => {
  const s = source();
  s.secrets.clear();
  await assert.rejects(
    resolvePod(fullPod(), s, context),
    (err: unknown) =>
      err instanceof MissingReferenceError &&
      err instanceof PodConfigError &&
      err.reason === 'CreateContainerConfigError' &&
      err.containerName === 'main' &&
      err.message === 'secret "db" not found' &&
      err.code === 'VK_POD_CONFIG',
  );
});

test('volumes are resolved before env, as the kubelet mounts before starting containers', async () => {
  const s = source();
  s.secrets.clear();
  s.configMaps.delete('ns/kube-root-ca.crt');
  await assert.rejects(
    resolvePod(fullPod(), s, context),
    (err: unknown) => err instanceof MissingReferenceError && err.reason === 'ContainerCreating' && err.volumeName === 'kube-api-access-x',
  );
});

test('an unsupported volume rejects the pod', async () => {
  const p = fullPod();
  p.spec!.volumes!.push({ name: 'logs', hostPath: { path: '/var/log' } });
  await assert.rejects(
    resolvePod(p, source(), context),
    (err: unknown) => err instanceof UnsupportedPodSpecError && err.code === 'VK_POD_REJECTED' && err.reason === 'UnsupportedVolume',
  );
});

test('ObjectSource failures propagate unchanged', async () => {
  const s = source();
  const boom = new Error('apiserver down');
  s.getSecret = async () => {
    throw boom;
  };
  await assert.rejects(resolvePod(fullPod(), s, context), (err: unknown) => err === boom);
});

test('imagePullSecrets that exist are handed over; a missing one is a warning, not an error', async () => {
  const source = fakeSource({ secrets: [secret('regcred', { '.dockerconfigjson': '{}' })] });
  const withSecrets: Pod = pod({ imagePullSecrets: [{ name: 'regcred' }, { name: 'gone' }] });
  const result = await resolvePod(withSecrets, source, context);
  assert.deepEqual(
    result.pullSecrets?.map((s) => s.metadata?.name),
    ['regcred'],
  );
  assert.deepEqual(
    result.warnings.map((w) => w.reason),
    ['FailedToRetrieveImagePullSecret'],
  );
  assert.match(result.warnings[0]!.message, /gone/);
});
