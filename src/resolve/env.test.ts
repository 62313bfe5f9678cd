import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Container } from '../kube/types.ts';
import { applyEnv, isValidEnvName, resolveContainerEnv } from './env.ts';
import { MissingReferenceError, PodConfigError, UnsupportedPodSpecError } from './errors.ts';
import { configMap, context, fakeSource, pod, secret } from '../../test/fixtures/fake-source.ts';
import type { FakeSource } from '../../test/fixtures/fake-source.ts';
import { ObjectCache } from './objects.ts';

const services = new Map([
  ['KUBERNETES_SERVICE_HOST', '10.96.0.1'],
  ['API_SERVICE_HOST', '10.96.1.1'],
]);

function standardSource(): FakeSource {
  return fakeSource({
    configMaps: [
      configMap('app', { LOG_LEVEL: 'debug', MODE: 'prod', 'bad=key': 'x' }, { blob: Buffer.from('bin').toString('base64') }),
      configMap('more', { MODE: 'staging', EXTRA: '1' }),
    ],
    secrets: [secret('creds', { PASSWORD: 'hunter2', 'user.name': 'admin' })],
  });
}

async function resolve(container: Container, source: FakeSource = standardSource(), serviceEnv = services) {
  const p = pod({ containers: [container] });
  return resolveContainerEnv(p, container, new ObjectCache(source, 'ns'), serviceEnv, context);
}

function asObject(env: { name: string; value: string }[]): Record<string, string> {
  return Object.fromEntries(env.map(({ name, value }) => [name, value]));
}

test('envFrom first (keys sorted, prefixed), then env, then remaining service vars', async () => {
  const { env } = await resolve({
    name: 'main',
    envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'creds' }, prefix: 'DB_' }],
    env: [{ name: 'PLAIN', value: 'v' }, { name: 'EMPTY' }],
  });
  assert.deepEqual(
    env.map((e) => e.name),
    ['LOG_LEVEL', 'MODE', 'DB_PASSWORD', 'DB_user.name', 'PLAIN', 'EMPTY', 'KUBERNETES_SERVICE_HOST', 'API_SERVICE_HOST'],
  );
  const values = asObject(env);
  assert.equal(values.DB_PASSWORD, 'hunter2', 'secret data is base64-decoded');
  assert.equal(values.EMPTY, '');
  assert.ok(!('blob' in values), 'binaryData is not exposed through envFrom');
});

test('later definitions override earlier ones but keep the first position', async () => {
  const { env } = await resolve({
    name: 'main',
    envFrom: [{ configMapRef: { name: 'app' } }, { configMapRef: { name: 'more' } }],
    env: [
      { name: 'LOG_LEVEL', value: 'info' },
      { name: 'API_SERVICE_HOST', value: 'override' },
      { name: 'X', value: '1' },
      { name: 'X', value: '2' },
    ],
  });
  assert.deepEqual(env, [
    { name: 'LOG_LEVEL', value: 'info' },
    { name: 'MODE', value: 'staging' },
    { name: 'EXTRA', value: '1' },
    { name: 'API_SERVICE_HOST', value: 'override' },
    { name: 'X', value: '2' },
    { name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' },
  ]);
});

test('keys that are not valid env var names are skipped and reported', async () => {
  const { env, warnings } = await resolve({ name: 'main', envFrom: [{ configMapRef: { name: 'app' } }, { secretRef: { name: 'creds' }, prefix: 'A=' }] });
  const names = env.map((e) => e.name);
  assert.ok(!names.includes('bad=key'));
  assert.ok(!names.some((n) => n.startsWith('A=')));
  assert.deepEqual(warnings, [
    {
      reason: 'InvalidEnvironmentVariableNames',
      message: 'Keys [bad=key] from the EnvFrom configMap ns/app were skipped since they are considered invalid environment variable names.',
    },
    {
      reason: 'InvalidEnvironmentVariableNames',
      message: 'Keys [A=PASSWORD, A=user.name] from the EnvFrom secret ns/creds were skipped since they are considered invalid environment variable names.',
    },
  ]);
  assert.ok(isValidEnvName('1.dotted-and:colon'), 'relaxed names allow any printable ASCII but =');
  assert.ok(!isValidEnvName('') && !isValidEnvName('tab\there') && !isValidEnvName('é'));
});

test('$(VAR) expands against earlier vars and service vars, never later ones', async () => {
  const { env } = await resolve({
    name: 'main',
    envFrom: [{ configMapRef: { name: 'app' } }],
    env: [
      { name: 'A', value: 'a' },
      { name: 'B', value: '$(A)-$(LOG_LEVEL)-$(KUBERNETES_SERVICE_HOST)-$(C)' },
      { name: 'C', value: 'c' },
      { name: 'D', value: '$$(A) $(MISSING)' },
      { name: 'API_SERVICE_HOST', value: 'mine' },
      { name: 'E', value: '$(API_SERVICE_HOST)' },
      { name: 'FROM', valueFrom: { configMapKeyRef: { name: 'more', key: 'EXTRA' } } },
    ],
  });
  const values = asObject(env);
  assert.equal(values.B, 'a-debug-10.96.0.1-$(C)');
  assert.equal(values.D, '$(A) $(MISSING)');
  assert.equal(values.E, 'mine', 'container vars shadow service vars');
});

test('valueFrom results are used verbatim, without expansion', async () => {
  const source = fakeSource({ configMaps: [configMap('raw', { v: '$(HOME)' })] });
  const { env } = await resolve(
    {
      name: 'main',
      env: [
        { name: 'HOME', value: '/root' },
        { name: 'R', valueFrom: { configMapKeyRef: { name: 'raw', key: 'v' } } },
      ],
    },
    source,
  );
  assert.equal(asObject(env).R, '$(HOME)');
});

test('configMapKeyRef, secretKeyRef, fieldRef and resourceFieldRef', async () => {
  const { env } = await resolve({
    name: 'main',
    resources: { requests: { memory: '64Mi' } },
    env: [
      { name: 'CM', valueFrom: { configMapKeyRef: { name: 'app', key: 'MODE' } } },
      { name: 'SEC', valueFrom: { secretKeyRef: { name: 'creds', key: 'PASSWORD' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
      { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
    ],
  });
  const values = asObject(env);
  assert.equal(values.CM, 'prod');
  assert.equal(values.SEC, 'hunter2');
  assert.equal(values.POD_IP, '10.244.0.5');
  assert.equal(values.NODE, 'vk-node');
  assert.equal(values.APP, 'web');
  assert.equal(values.MEM, '64');
  assert.equal(values.CPU_LIMIT, '8', 'unset limit defaults to node allocatable');
});

async function rejection(container: Container, source?: FakeSource): Promise<MissingReferenceError> {
  try {
    await resolve(container, source);
  } catch (err) {
    assert.ok(err instanceof MissingReferenceError, String(err));
    return err;
  }
  assert.fail('expected a MissingReferenceError');
}

test('missing required references fail with CreateContainerConfigError and kubelet messages', async () => {
  let err = await rejection({ name: 'main', envFrom: [{ configMapRef: { name: 'nope' } }] });
  assert.equal(err.message, 'configmap "nope" not found');
  assert.equal(err.reason, 'CreateContainerConfigError');
  assert.equal(err.eventReason, 'Failed');
  assert.equal(err.code, 'VK_POD_CONFIG');
  assert.equal(err.containerName, 'main');
  assert.equal(err.kind, 'ConfigMap');
  assert.equal(err.objectName, 'nope');
  assert.ok(err instanceof PodConfigError);

  err = await rejection({ name: 'main', envFrom: [{ secretRef: { name: 'nope' } }] });
  assert.equal(err.message, 'secret "nope" not found');
  err = await rejection({ name: 'main', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k' } } }] });
  assert.equal(err.message, 'configmap "nope" not found');
  err = await rejection({ name: 'main', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'app', key: 'k' } } }] });
  assert.equal(err.message, "couldn't find key k in ConfigMap ns/app");
  assert.equal(err.key, 'k');
  err = await rejection({ name: 'main', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'app', key: 'blob' } } }] });
  assert.equal(err.message, "couldn't find key blob in ConfigMap ns/app", 'binaryData keys are not env values');
  err = await rejection({ name: 'main', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'nope', key: 'k' } } }] });
  assert.equal(err.message, 'secret "nope" not found');
  err = await rejection({ name: 'main', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'creds', key: 'k' } } }] });
  assert.equal(err.message, "couldn't find key k in Secret ns/creds");
});

test('missing optional references leave the variable undefined', async () => {
  const { env } = await resolve({
    name: 'main',
    envFrom: [{ configMapRef: { name: 'app' } }, { configMapRef: { name: 'nope', optional: true } }, { secretRef: { name: 'nope', optional: true } }],
    env: [
      { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'app', key: 'absent', optional: true } } },
      { name: 'A', valueFrom: { configMapKeyRef: { name: 'nope', key: 'k', optional: true } } },
      { name: 'B', valueFrom: { secretKeyRef: { name: 'nope', key: 'k', optional: true } } },
      { name: 'C', valueFrom: { secretKeyRef: { name: 'creds', key: 'absent', optional: true } } },
    ],
  });
  const values = asObject(env);
  assert.equal(values.MODE, 'prod', 'the envFrom value survives');
  assert.ok(!('A' in values) && !('B' in values) && !('C' in values));
});

test('each object is fetched once per resolution', async () => {
  const source = standardSource();
  await resolve(
    {
      name: 'main',
      envFrom: [{ configMapRef: { name: 'app' } }],
      env: [
        { name: 'A', valueFrom: { configMapKeyRef: { name: 'app', key: 'MODE' } } },
        { name: 'B', valueFrom: { configMapKeyRef: { name: 'app', key: 'LOG_LEVEL' } } },
      ],
    },
    source,
  );
  assert.deepEqual(source.calls, ['configmap ns/app']);
});

test('fileKeyRef is unsupported', async () => {
  await assert.rejects(
    resolve({ name: 'main', env: [{ name: 'F', valueFrom: { fileKeyRef: { volumeName: 'v', path: 'f.env', key: 'K' } } }] }),
    (err: unknown) =>
      err instanceof UnsupportedPodSpecError && err.reason === 'UnsupportedField' && err.containerName === 'main' && /fileKeyRef/.test(err.message),
  );
});

test('applyEnv replaces env, drops envFrom and expands command, args and subPathExpr', () => {
  const container: Container = {
    name: 'main',
    envFrom: [{ configMapRef: { name: 'app' } }],
    command: ['sh', '-c', 'echo $(GREETING) $$(GREETING) $(NOPE)'],
    args: ['--dir=$(DIR)'],
    volumeMounts: [
      { name: 'data', mountPath: '/data', subPathExpr: '$(POD)/logs' },
      { name: 'cfg', mountPath: '/cfg', subPath: 'fixed' },
    ],
  };
  applyEnv(container, [
    { name: 'GREETING', value: 'hi' },
    { name: 'DIR', value: '/tmp' },
    { name: 'POD', value: 'web-1' },
  ]);
  assert.deepEqual(container.env, [
    { name: 'GREETING', value: 'hi' },
    { name: 'DIR', value: '/tmp' },
    { name: 'POD', value: 'web-1' },
  ]);
  assert.ok(!('envFrom' in container));
  assert.deepEqual(container.command, ['sh', '-c', 'echo hi $(GREETING) $(NOPE)']);
  assert.deepEqual(container.args, ['--dir=/tmp']);
  assert.deepEqual(container.volumeMounts, [
    { name: 'data', mountPath: '/data', subPath: 'web-1/logs' },
    { name: 'cfg', mountPath: '/cfg', subPath: 'fixed' },
  ]);
});

test('subPathExpr with a missing or empty variable, or escaping the volume, is a config error', () => {
  const attempt = (subPathExpr: string) => () =>
    applyEnv({ name: 'main', volumeMounts: [{ name: 'd', mountPath: '/d', subPathExpr }] }, [
      { name: 'EMPTY', value: '' },
      { name: 'UP', value: '..' },
      { name: 'ABS', value: '/etc' },
    ]);
  const configError = (pattern: RegExp) => (err: unknown) =>
    err instanceof PodConfigError && err.reason === 'CreateContainerConfigError' && err.containerName === 'main' && pattern.test(err.message);
  assert.throws(attempt('$(NOPE)/$(EMPTY)'), configError(/^missing value for EMPTY, NOPE$/));
  assert.throws(attempt('a/$(UP)/b'), configError(/must not contain '\.\.'/));
  assert.throws(attempt('$(ABS)'), configError(/must not be an absolute path/));
});
