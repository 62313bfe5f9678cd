import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Container } from '../../../kube/types.ts';
import { ContainerConfigError, containerProcess, DEFAULT_PATH, mergeEnv, parseImageUser } from './container-config.ts';
import type { ImageRuntimeConfig } from './manifest.ts';

const image: ImageRuntimeConfig = {
  Entrypoint: ['/entry.sh'],
  Cmd: ['serve', '--port=80'],
  Env: ['PATH=/custom/bin:/bin', 'LANG=C.UTF-8', 'MODE=image'],
  WorkingDir: '/app',
  User: '1000:1000',
  ExposedPorts: { '80/tcp': {}, '53/udp': {} },
  StopSignal: 'SIGQUIT',
};

const c = (extra: Partial<Container> = {}): Container => ({ name: 'main', image: 'x', ...extra });

test('command and args by the Kubernetes rules', () => {
  assert.deepEqual(containerProcess(image, c()).argv, ['/entry.sh', 'serve', '--port=80'], 'image Entrypoint + Cmd');
  assert.deepEqual(containerProcess(image, c({ args: ['debug'] })).argv, ['/entry.sh', 'debug'], 'args replace Cmd');
  assert.deepEqual(containerProcess(image, c({ command: ['/bin/sh'] })).argv, ['/bin/sh'], 'command replaces Entrypoint and drops Cmd');
  assert.deepEqual(containerProcess(image, c({ command: ['/bin/sh'], args: ['-c', 'echo hi'] })).argv, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(containerProcess({ Cmd: ['sh'] }, c()).argv, ['sh'], 'no Entrypoint: Cmd alone');
  assert.deepEqual(containerProcess({ Entrypoint: [''], Cmd: ['sh'] }, c()).argv, ['sh'], 'Entrypoint [""] means none');
  assert.deepEqual(containerProcess({ Entrypoint: ['/e'], Cmd: null }, c()).argv, ['/e']);
  assert.throws(
    () => containerProcess({}, c()),
    (err: unknown) => err instanceof ContainerConfigError && /no command specified/.test(err.message),
  );
});

test('env: image first, container replaces in place and appends; default PATH', () => {
  const env = containerProcess(image, c({ env: [{ name: 'MODE', value: 'pod' }, { name: 'EXTRA', value: '1' }, { name: 'EMPTY' }] })).env;
  assert.deepEqual(env, ['PATH=/custom/bin:/bin', 'LANG=C.UTF-8', 'MODE=pod', 'EXTRA=1', 'EMPTY=']);
  assert.deepEqual(mergeEnv([], [{ name: 'A', value: 'b' }]), [`PATH=${DEFAULT_PATH}`, 'A=b']);
  assert.deepEqual(mergeEnv(['A=1', 'A=2'], [{ name: 'PATH', value: '/x' }]), ['A=2', 'PATH=/x']);
});

test('workingDir, exposed ports, stop signal', () => {
  assert.equal(containerProcess(image, c()).workingDir, '/app');
  assert.equal(containerProcess(image, c({ workingDir: '/work' })).workingDir, '/work');
  assert.equal(containerProcess({ Cmd: ['sh'] }, c()).workingDir, '/');
  const p = containerProcess(image, c());
  assert.deepEqual(p.exposedPorts, ['80/tcp', '53/udp']);
  assert.equal(p.stopSignal, 'SIGQUIT');
});

test('user: image User parsed; runAsUser/runAsGroup override (container over pod)', () => {
  assert.deepEqual(parseImageUser('1000:1000'), { uid: 1000, gid: 1000 });
  assert.deepEqual(parseImageUser('app:staff'), { userName: 'app', groupName: 'staff' });
  assert.deepEqual(parseImageUser('app'), { userName: 'app' });
  assert.deepEqual(parseImageUser('0'), { uid: 0 });
  assert.deepEqual(parseImageUser(''), {});
  assert.deepEqual(containerProcess(image, c()).user, { uid: 1000, gid: 1000 });
  assert.deepEqual(containerProcess(image, c(), { securityContext: { runAsUser: 2000 } }).user, { uid: 2000 }, 'the image group goes with the image user');
  assert.deepEqual(containerProcess(image, c({ securityContext: { runAsUser: 3000 } }), { securityContext: { runAsUser: 2000, runAsGroup: 20 } }).user, {
    uid: 3000,
    gid: 20,
  });
  assert.deepEqual(containerProcess({ ...image, User: 'app:staff' }, c({ securityContext: { runAsGroup: 5 } })).user, { userName: 'app', gid: 5 });
});

test('runAsNonRoot is enforced like the kubelet does', () => {
  assert.throws(() => containerProcess({ Cmd: ['sh'] }, c({ securityContext: { runAsNonRoot: true } })), /image will run as root/);
  assert.throws(
    () => containerProcess({ Cmd: ['sh'], User: 'app' }, c(), { securityContext: { runAsNonRoot: true } }),
    /non-numeric user \(app\), cannot verify user is non-root/,
  );
  assert.equal(containerProcess({ Cmd: ['sh'], User: 'app' }, c({ securityContext: { runAsNonRoot: true, runAsUser: 1000 } })).user.uid, 1000);
  assert.equal(containerProcess(image, c({ securityContext: { runAsNonRoot: true } })).user.uid, 1000);
});
