import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Container, EnvVar, Pod } from '../kube/types.ts';
import { configMap, context, fakeSource, pod, secret } from '../../test/fixtures/fake-source.ts';
import { resolvePod } from './resolve-pod.ts';
import { withPodIPs } from './pod-ip.ts';

const noAddress = { ...context, podIP: undefined, podIPs: undefined };

function source() {
  return fakeSource({ configMaps: [configMap('app', { PORT: '8080', HOST: 'from-envfrom' })], secrets: [secret('db', { password: 'pw' })] });
}

function podWithAddressUse(): Pod {
  return pod({
    initContainers: [
      { name: 'init', image: 'busybox', command: ['echo', '$(POD_IP)'], env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] },
    ],
    containers: [
      {
        name: 'main',
        image: 'app',
        envFrom: [{ configMapRef: { name: 'app' } }],
        env: [
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
          { name: 'ADDR', value: '$(POD_IP):$(PORT)' },
          { name: 'HOST', value: '$(HOST)-then-$(POD_IP)' },
          { name: 'ESCAPED', value: '$$(POD_IP)' },
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
        ],
        command: ['serve', '--bind=$(POD_IP)', '--all=$(POD_IPS)'],
        args: ['--advertise=$(ADDR)', '$(UNKNOWN)'],
      },
      { name: 'sidecar', image: 'app', env: [{ name: 'PLAIN', value: 'x' }], args: ['$(PLAIN)'] },
    ],
  });
}

function part(p: Pod, name: string): Pick<Container, 'env' | 'command' | 'args'> {
  const c = [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].find((x) => x.name === name)!;
  return { env: c.env, ...(c.command && { command: c.command }), ...(c.args && { args: c.args }) };
}

test('without an address the pod-IP variables are empty; templates filled in equal a resolution that had the address', async () => {
  const pending = await resolvePod(podWithAddressUse(), source(), noAddress);
  assert.deepEqual(
    pending.podIPTemplates?.map((t) => t.containerName),
    ['init', 'main'],
    'only containers that use the address',
  );
  const main = part(pending.pod, 'main');
  assert.equal(main.env?.find((e) => e.name === 'POD_IP')?.value, '');
  assert.deepEqual(main.command, ['serve', '--bind=', '--all=']);

  for (const podIPs of [['10.215.0.6'], ['10.244.0.5', 'fd00::5']]) {
    const known = await resolvePod(podWithAddressUse(), source(), { ...noAddress, podIP: podIPs[0], podIPs });
    assert.equal(known.podIPTemplates, undefined, 'no template once the address is known');
    for (const name of ['init', 'main', 'sidecar']) {
      const container = [...pending.pod.spec!.initContainers!, ...pending.pod.spec!.containers].find((c) => c.name === name)!;
      assert.deepEqual(part({ spec: { containers: [withPodIPs(pending, container, podIPs)] } }, name), part(known.pod, name), `${name} with ${podIPs}`);
    }
  }
  const filled = withPodIPs(pending, pending.pod.spec!.containers[0]!, ['10.215.0.6']);
  assert.deepEqual(filled.command, ['serve', '--bind=10.215.0.6', '--all=10.215.0.6']);
  assert.deepEqual(filled.args, ['--advertise=10.215.0.6:8080', '$(UNKNOWN)']);
  assert.deepEqual(
    filled.env?.filter((e) => ['ADDR', 'HOST', 'ESCAPED'].includes(e.name)),
    [
      { name: 'HOST', value: 'from-envfrom-then-10.215.0.6' },
      { name: 'ADDR', value: '10.215.0.6:8080' },
      { name: 'ESCAPED', value: '$(POD_IP)' },
    ],
  );
  assert.equal(withPodIPs(pending, pending.pod.spec!.containers[0]!, []), pending.pod.spec!.containers[0], 'no address: unchanged');
});

test('property: filling the template equals resolving with the address, for any use of the pod-IP variables', async () => {
  const name = fc.constantFrom('A', 'B', 'POD_IP', 'IPS', 'PORT');
  const text = fc
    .array(fc.oneof(fc.constantFrom('$(A)', '$(B)', '$(POD_IP)', '$(IPS)', '$(PORT)', '$$(POD_IP)', '$(', ',', ':'), fc.string({ maxLength: 3 })), {
      maxLength: 5,
    })
    .map((parts) => parts.join(''));
  const envVar: fc.Arbitrary<EnvVar> = fc.oneof(
    fc.record({ name, value: text }),
    fc.record({ name, valueFrom: fc.constantFrom({ fieldRef: { fieldPath: 'status.podIP' } }, { fieldRef: { fieldPath: 'status.podIPs' } }) }),
  );
  const ips = fc.constantFrom<string[]>(['10.215.0.6'], ['10.244.0.5', 'fd00::5'], ['fd00::7', '10.1.2.3']);
  await fc.assert(
    fc.asyncProperty(fc.array(envVar, { minLength: 1, maxLength: 6 }), fc.array(text, { maxLength: 3 }), ips, async (env, args, podIPs) => {
      // A new array: fast-check re-runs these very values while it shrinks.
      const withLast = [...env, { name: 'LAST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }];
      const spec = { containers: [{ name: 'c', image: 'app', envFrom: [{ configMapRef: { name: 'app' } }], env: withLast, args }] };
      const pending = await resolvePod(pod(spec), source(), noAddress);
      const known = await resolvePod(pod(spec), source(), { ...noAddress, podIP: podIPs[0], podIPs });
      // A provider passes the addresses primary first, as the pod's status lists them.
      const filled = withPodIPs(pending, pending.pod.spec!.containers[0]!, sortedLikeTheKubelet(podIPs));
      assert.deepEqual(part({ spec: { containers: [filled] } }, 'c'), part(known.pod, 'c'));
    }),
    { numRuns: 200 },
  );
});

/** The order fieldref.ts gives status.podIPs in: the host's family (IPv4 here) first. */
function sortedLikeTheKubelet(podIPs: string[]): string[] {
  return [...podIPs].sort((a, b) => Number(!b.includes(':')) - Number(!a.includes(':')));
}
