import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makePod } from '../../../test/harness/pods.ts';
import { configMap, context, fakeSource, pod, secret } from '../../../test/fixtures/fake-source.ts';
import { resolvePod } from '../../resolve/resolve-pod.ts';
import { PodRejectedError } from '../../errors.ts';
import type { ResolvedVolume } from '../provider.ts';
import { parseClusterConfig } from './config.ts';
import { ANNOTATION_TOLERATIONS, LABEL_NODE, LABEL_UID, NameMapping, sourceOf } from './names.ts';
import { sourcePod } from './status.ts';
import { translatePod } from './translate.ts';

const config = parseClusterConfig({ kubeconfig: '/k', scheduling: { tolerations: [{ operator: 'Exists' }] } });

function sourceWithVolumes() {
  const pod = makePod({ name: 'web', namespace: 'team', uid: 'u-1', labels: { app: 'web' } });
  pod.spec!.nodeSelector = { 'kubernetes.io/hostname': 'vk' };
  pod.spec!.tolerations = [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }];
  pod.spec!.serviceAccountName = 'builder';
  pod.spec!.priorityClassName = 'high';
  pod.spec!.volumes = [
    { name: 'cfg', configMap: { name: 'settings' } },
    { name: 'token', projected: { sources: [] } },
    { name: 'scratch', emptyDir: {} },
  ];
  pod.spec!.containers[0]!.env = [{ name: 'PASSWORD', value: 'hunter2' }];
  const volumes = new Map<string, ResolvedVolume>([
    ['cfg', { name: 'cfg', type: 'files', source: 'configMap', files: [{ path: 'a/b.conf', content: Buffer.from('x=1'), mode: 0o644 }] }],
    ['token', { name: 'token', type: 'files', source: 'projected', files: [{ path: 'token', content: Buffer.from('jwt'), mode: 0o600 }] }],
    ['scratch', { name: 'scratch', type: 'emptyDir', medium: '' }],
  ]);
  return { pod, volumes };
}

test('a pod maps to the target with scheduling stripped, env in a Secret, volumes as owned objects', () => {
  const { pod, volumes } = sourceWithVolumes();
  const out = translatePod({ pod, volumes }, { namespace: 'team', name: 'web' }, 'vk', config);
  const spec = out.pod.spec!;
  assert.equal(spec.nodeName, undefined);
  assert.equal(spec.nodeSelector, undefined);
  assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  assert.equal(spec.serviceAccountName, undefined);
  assert.equal(spec.automountServiceAccountToken, false);
  assert.equal(spec.priorityClassName, undefined, 'dropped by default');
  assert.ok(!JSON.stringify(out.pod).includes('hunter2'), 'no env value in clear');
  assert.deepEqual(spec.containers[0]!.env, [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'web-env', key: 'c0.0' } } }]);
  const env = out.secrets.find((s) => s.metadata?.name === 'web-env');
  assert.equal(Buffer.from(env!.data!['c0.0']!, 'base64').toString(), 'hunter2');
  assert.deepEqual(spec.volumes?.find((v) => v.name === 'cfg')?.configMap, { name: 'web-vol-cfg', items: [{ key: 'f0', path: 'a/b.conf', mode: 0o644 }] });
  assert.equal(spec.volumes?.find((v) => v.name === 'token')?.secret?.secretName, 'web-vol-token');
  assert.deepEqual(
    spec.volumes?.find((v) => v.name === 'scratch'),
    { name: 'scratch', emptyDir: {} },
  );
  assert.equal(out.configMaps.length, 1);
  for (const object of [...out.configMaps, ...out.secrets]) assert.equal(object.metadata?.labels?.[LABEL_UID], 'u-1');
  assert.equal(out.pod.metadata?.labels?.[LABEL_NODE], 'vk');
  assert.equal(out.pod.metadata?.labels?.app, 'web');
});

test('the pod read back from the target is the source pod: same updatable fields, so the core sees no drift', () => {
  const { pod, volumes } = sourceWithVolumes();
  const out = translatePod({ pod, volumes }, { namespace: 'team', name: 'web' }, 'vk', config);
  const source = sourceOf({ ...out.pod.metadata, uid: 'target-uid' }, 'vk');
  assert.deepEqual(source, { namespace: 'team', name: 'web', uid: 'u-1' });
  // The source tolerations stay with the provider, not on the target pod (which has the configured ones).
  assert.equal(JSON.stringify(out.pod.metadata).includes('tolerations'), false);
  const back = sourcePod({ ...out.pod, status: { phase: 'Running', podIP: '10.0.0.5' } }, source!, 'vk', '192.0.2.1', pod.spec?.tolerations);
  assert.deepEqual(back.metadata?.labels, pod.metadata?.labels);
  assert.deepEqual(back.metadata?.annotations, pod.metadata?.annotations);
  assert.deepEqual(back.spec?.tolerations, pod.spec?.tolerations);
  assert.equal(back.spec?.nodeName, 'vk');
  assert.deepEqual(out.pod.spec?.tolerations, [{ operator: 'Exists' }], 'the target pod object is not changed by rendering');
  // A target pod made by an older version carries them in an annotation: still read.
  const legacy = structuredClone(out.pod);
  legacy.metadata!.annotations![ANNOTATION_TOLERATIONS] = JSON.stringify(pod.spec?.tolerations);
  const fromLegacy = sourcePod(legacy, source!, 'vk', '192.0.2.1');
  assert.deepEqual(fromLegacy.spec?.tolerations, pod.spec?.tolerations);
  assert.equal(fromLegacy.metadata?.annotations?.[ANNOTATION_TOLERATIONS], undefined);
  assert.equal(back.status?.podIP, '10.0.0.5');
  assert.equal(back.status?.hostIP, '192.0.2.1');
  assert.equal(sourceOf(out.pod.metadata, 'another-node'), undefined, 'another node never claims it');
});

test('with the original spec, only values that may hold Secret data go through the env Secret', () => {
  const { pod, volumes } = sourceWithVolumes();
  const original = structuredClone(pod);
  original.spec!.containers[0]!.env = [
    { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
    { name: 'PLAIN', value: 'plain' },
    { name: 'COLOR', valueFrom: { configMapKeyRef: { name: 'settings', key: 'color' } } },
    { name: 'URL', value: 'https://u:$(PASSWORD)@host' },
  ];
  pod.spec!.containers[0]!.env = [
    { name: 'KUBERNETES_SERVICE_HOST', value: '10.0.0.1' },
    { name: 'PASSWORD', value: 'hunter2' },
    { name: 'PLAIN', value: 'plain' },
    { name: 'COLOR', value: 'blue' },
    { name: 'URL', value: 'https://u:hunter2@host' },
  ];
  const env = translatePod({ pod, volumes, original }, { namespace: 'team', name: 'web' }, 'vk', config).pod.spec!.containers[0]!.env!;
  const clear = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  assert.deepEqual(clear, { KUBERNETES_SERVICE_HOST: '10.0.0.1', PLAIN: 'plain', COLOR: 'blue' });
  assert.ok(!JSON.stringify(env).includes('hunter2'));
  // envFrom a Secret: every name the env list does not set otherwise is kept out of clear.
  original.spec!.containers[0]!.envFrom = [{ secretRef: { name: 'creds' } }];
  const withEnvFrom = translatePod({ pod, volumes, original }, { namespace: 'team', name: 'web' }, 'vk', config).pod.spec!.containers[0]!.env!;
  assert.deepEqual(
    withEnvFrom.filter((e) => e.value !== undefined).map((e) => e.name),
    ['PLAIN', 'COLOR'],
  );
});

test("what uses the pod's address, resolved as the target's kubelet would, equals the source pod resolved with the address", async () => {
  const source = fakeSource({ configMaps: [configMap('app', { PORT: '8080', HOST: 'from-envfrom' })], secrets: [secret('db', { password: 'pw' })] });
  const noAddress = { ...context, podIP: undefined, podIPs: undefined };
  const sourcePod = pod({
    containers: [
      {
        name: 'main',
        image: 'app',
        envFrom: [{ configMapRef: { name: 'app' } }],
        env: [
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
          { name: 'ADDR', value: '$(POD_IP):$(PORT)' },
          { name: 'URL', value: 'https://u:$(PASSWORD)@$(ADDR)' },
          { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'SHADOWED', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'SHADOWED', value: 'literal' },
        ],
        command: ['serve', '--bind=$(POD_IP)'],
        args: ['--advertise=$(ADDR)', '--node=$(NODE)', '$$(POD_IP)'],
      },
      { name: 'plain', image: 'app', env: [{ name: 'A', value: 'a' }], args: ['$(A)'] },
    ],
  });
  const pending = await resolvePod(sourcePod, source, noAddress);
  const out = translatePod(pending, { namespace: 'ns', name: 'web' }, 'vk', config);
  const main = out.pod.spec!.containers[0]!;
  const byName = new Map(main.env!.map((e) => [e.name, e]));
  assert.deepEqual(byName.get('POD_IP'), { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  assert.deepEqual(byName.get('ADDR'), { name: 'ADDR', value: '$(POD_IP):$(PORT)' }, 'travels as written, for the target to expand');
  assert.deepEqual(byName.get('URL'), { name: 'URL', value: 'https://u:$(PASSWORD)@$(ADDR)' });
  assert.deepEqual(byName.get('SHADOWED'), { name: 'SHADOWED', value: 'literal' }, 'a later literal of the name wins');
  assert.deepEqual(main.command, ['serve', '--bind=$(POD_IP)']);
  assert.ok(!JSON.stringify(out.pod).includes('pw'), 'the Secret value stays out of the spec');
  assert.deepEqual(out.pod.spec!.containers[1]!.args, ['a'], 'a container that does not use the address is resolved as before');

  // The target's kubelet: the same resolution, with the target's objects and the address it gives the pod.
  const targetObjects = fakeSource({ configMaps: out.configMaps, secrets: out.secrets });
  for (const podIPs of [['10.9.0.7'], ['10.9.0.7', 'fd00::7']]) {
    const withAddress = { ...noAddress, podIP: podIPs[0], podIPs };
    const inTarget = (await resolvePod(out.pod, targetObjects, withAddress)).pod.spec!.containers[0]!;
    const direct = (await resolvePod(sourcePod, source, withAddress)).pod.spec!.containers[0]!;
    assert.deepEqual(inTarget.env, direct.env, `env with ${podIPs}`);
    assert.deepEqual([inTarget.command, inTarget.args], [direct.command, direct.args], `command and args with ${podIPs}`);
  }

  // A name envFrom defines before the address exists keeps its place there, ahead of POD_IP: the
  // target could not expand it the same way, so it keeps the value resolved without the address.
  const early = structuredClone(sourcePod);
  early.spec!.containers[0]!.env!.push({ name: 'HOST', value: '$(POD_IP)-x' });
  const earlyOut = translatePod(await resolvePod(early, source, noAddress), { namespace: 'ns', name: 'web' }, 'vk', config);
  const host = earlyOut.pod.spec!.containers[0]!.env!.find((e) => e.name === 'HOST')!;
  const key = host.valueFrom!.secretKeyRef!.key;
  assert.equal(Buffer.from(earlyOut.secrets.find((x) => x.metadata?.name === 'web-env')!.data![key]!, 'base64').toString(), '-x');

  // Without templates (a ResolvedPod from elsewhere) nothing is known to use the address.
  const bare = translatePod({ pod: pending.pod, volumes: pending.volumes, original: pending.original }, { namespace: 'ns', name: 'web' }, 'vk', config);
  assert.deepEqual(bare.pod.spec!.containers[0]!.command, ['serve', '--bind=']);
});

test('scheduling.nodeName binds the target pod to that target node', () => {
  const { pod, volumes } = sourceWithVolumes();
  const pinned = parseClusterConfig({ kubeconfig: '/k', scheduling: { nodeName: 'target-node-1' } });
  assert.equal(translatePod({ pod, volumes }, { namespace: 'team', name: 'web' }, 'vk', pinned).pod.spec?.nodeName, 'target-node-1');
  assert.equal(translatePod({ pod, volumes }, { namespace: 'team', name: 'web' }, 'vk', config).pod.spec?.nodeName, undefined);
});

test('volumes the target cannot get are rejected; shared target namespaces give names a hash suffix', () => {
  const pod = makePod({ name: 'db', namespace: 'team', uid: 'u-2' });
  pod.spec!.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
  assert.throws(
    () => translatePod({ pod, volumes: new Map() }, { namespace: 'team', name: 'db' }, 'vk', config),
    (err: unknown) => {
      return err instanceof PodRejectedError && err.reason === 'UnsupportedVolume' && /persistentVolumeClaim/.test(err.message);
    },
  );
  const mapping = new NameMapping(parseClusterConfig({ kubeconfig: '/k', namespaces: { map: { a: 'shared', b: 'shared' }, prefix: 'x-' } }).namespaces);
  const fromA = mapping.target('a', 'web');
  const fromB = mapping.target('b', 'web');
  assert.equal(fromA.namespace, 'shared');
  assert.notEqual(fromA.name, fromB.name);
  assert.deepEqual(mapping.target('c', 'web'), { namespace: 'x-c', name: 'web' });
});

test('a bad config names the field', () => {
  assert.throws(() => parseClusterConfig({}), /cluster provider config: kubeconfig: give the target either a kubeconfig or inCluster credentials/);
  assert.throws(() => parseClusterConfig({ kubeconfig: '/k', namespaces: { map: { a: 'Not_A_Label' } } }), /namespaces\.map\.a/);
});

test("variables the target's kubelet sets by itself, with the same value, are left out of the target pod", () => {
  const pod = makePod({ name: 'api', namespace: 'team', uid: 'u-2' });
  pod.spec!.containers[0]!.env = [
    { name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' },
    { name: 'KUBERNETES_SERVICE_PORT', value: '6443' },
    { name: 'PLAIN', value: 'plain' },
  ];
  const implicitEnv = new Map([
    ['KUBERNETES_SERVICE_HOST', '10.96.0.1'],
    ['KUBERNETES_SERVICE_PORT', '443'],
  ]);
  const out = translatePod({ pod, volumes: new Map(), original: structuredClone(pod) }, { namespace: 'team', name: 'api' }, 'vk', config, implicitEnv);
  // Same name and value: the target gives it; another value (a source API on another port) travels.
  assert.deepEqual(out.pod.spec!.containers[0]!.env, [
    { name: 'KUBERNETES_SERVICE_PORT', value: '6443' },
    { name: 'PLAIN', value: 'plain' },
  ]);
  // Nothing left: no empty env list.
  const only = makePod({ name: 'api', namespace: 'team', uid: 'u-2' });
  only.spec!.containers[0]!.env = [{ name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' }];
  assert.equal(
    translatePod({ pod: only, volumes: new Map() }, { namespace: 'team', name: 'api' }, 'vk', config, implicitEnv).pod.spec!.containers[0]!.env,
    undefined,
  );
  // Without what the target sets (its Service not readable), every variable travels.
  assert.equal(
    translatePod({ pod, volumes: new Map(), original: structuredClone(pod) }, { namespace: 'team', name: 'api' }, 'vk', config).pod.spec!.containers[0]!.env
      ?.length,
    3,
  );
});
