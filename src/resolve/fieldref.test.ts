import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnsupportedPodSpecError } from './errors.ts';
import { context, pod } from '../../test/fixtures/fake-source.ts';
import { fieldValue, formatMap, podIPEnvFields, resourceValue } from './fieldref.ts';

const where = { containerName: 'main' };

test('metadata fields, subscripts and whole maps', () => {
  const p = pod({}, { labels: { app: 'web', tier: 'front' }, annotations: { 'example.com/note': 'say "hi"\nbye' } });
  assert.equal(fieldValue(p, { fieldPath: 'metadata.name' }, context, 'env', where), 'web');
  assert.equal(fieldValue(p, { fieldPath: 'metadata.namespace' }, context, 'env', where), 'ns');
  assert.equal(fieldValue(p, { fieldPath: 'metadata.uid' }, context, 'env', where), 'uid-1');
  assert.equal(fieldValue(p, { fieldPath: "metadata.labels['tier']" }, context, 'env', where), 'front');
  assert.equal(fieldValue(p, { fieldPath: "metadata.labels['absent']" }, context, 'env', where), '');
  assert.equal(fieldValue(p, { fieldPath: "metadata.annotations['example.com/note']" }, context, 'env', where), 'say "hi"\nbye');
  assert.equal(fieldValue(p, { fieldPath: 'metadata.labels' }, context, 'volume', where), 'app="web"\ntier="front"');
  assert.equal(fieldValue(p, { fieldPath: 'metadata.annotations' }, context, 'volume', where), 'example.com/note="say \\"hi\\"\\nbye"');
});

test('formatMap sorts keys and Go-quotes values', () => {
  assert.equal(formatMap({ b: '2', a: 'x\ty\\' }), 'a="x\\ty\\\\"\nb="2"');
  assert.equal(formatMap({ c: '\x01\x07é' }), 'c="\\x01\\aé"');
  assert.equal(formatMap(undefined), '');
});

test('spec and status fields come from the pod and the context', () => {
  const p = pod();
  assert.equal(fieldValue(p, { apiVersion: 'v1', fieldPath: 'spec.nodeName' }, context, 'env', where), 'vk-node');
  assert.equal(fieldValue(p, { fieldPath: 'spec.serviceAccountName' }, context, 'env', where), 'sa');
  assert.equal(fieldValue(p, { fieldPath: 'status.hostIP' }, context, 'env', where), '10.0.0.1');
  assert.equal(fieldValue(p, { fieldPath: 'status.hostIPs' }, context, 'env', where), '10.0.0.1');
  assert.equal(fieldValue(p, { fieldPath: 'status.hostIPs' }, { ...context, hostIPs: ['10.0.0.1', 'fd00::1'] }, 'env', where), '10.0.0.1,fd00::1');
  assert.equal(fieldValue(p, { fieldPath: 'status.podIP' }, context, 'env', where), '10.244.0.5');
  assert.equal(fieldValue(p, { fieldPath: 'status.podIPs' }, context, 'env', where), '10.244.0.5,fd00::5');
});

test('pod IPs are ordered by the host IP family, like the kubelet', () => {
  const v6Host = { ...context, hostIP: 'fd00::1' };
  assert.equal(fieldValue(pod(), { fieldPath: 'status.podIP' }, v6Host, 'env', where), 'fd00::5');
  assert.equal(fieldValue(pod(), { fieldPath: 'status.podIPs' }, v6Host, 'env', where), 'fd00::5,10.244.0.5');
  const noIP = { ...context, podIP: undefined, podIPs: undefined };
  assert.equal(fieldValue(pod(), { fieldPath: 'status.podIP' }, noIP, 'env', where), '');
  assert.equal(fieldValue(pod(), { fieldPath: 'status.podIP' }, { ...noIP, podIP: '1.2.3.4' }, 'env', where), '1.2.3.4');
});

test('unsupported field paths are rejected with the field named', () => {
  const check = (fieldPath: string, use: 'env' | 'volume', apiVersion?: string) =>
    assert.throws(
      () => fieldValue(pod(), { fieldPath, ...(apiVersion ? { apiVersion } : {}) }, context, use, where),
      (err: unknown) =>
        err instanceof UnsupportedPodSpecError &&
        err.reason === 'UnsupportedField' &&
        err.code === 'VK_POD_REJECTED' &&
        err.containerName === 'main' &&
        err.message.includes(apiVersion ?? fieldPath),
    );
  check('spec.restartPolicy', 'env');
  check('status.phase', 'env');
  check("metadata.name['x']", 'env');
  // Downward API volumes only know metadata, as the kubelet's fieldpath package.
  check('status.podIP', 'volume');
  check('metadata.name', 'env', 'v2');
});

const resources = pod({
  resources: undefined,
  containers: [
    { name: 'main', resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1500m', memory: '128Mi', 'hugepages-2Mi': '4Mi' } } },
    { name: 'bare' },
  ],
  initContainers: [{ name: 'init', resources: { requests: { cpu: '2' } } }],
});
const main = resources.spec!.containers[0];
const alloc = context.nodeAllocatable;

test('resourceFieldRef divides by the divisor and rounds up', () => {
  const r = (resource: string, divisor?: string, containerName?: string) =>
    resourceValue(resources, { resource, ...(divisor ? { divisor } : {}), ...(containerName ? { containerName } : {}) }, main, alloc, where);
  assert.equal(r('requests.cpu'), '1', '250m rounds up to 1 core');
  assert.equal(r('requests.cpu', '1m'), '250');
  assert.equal(r('limits.cpu', '1m'), '1500');
  assert.equal(r('limits.cpu'), '2');
  assert.equal(r('limits.cpu', '0'), '2', 'a zero divisor means 1');
  assert.equal(r('requests.memory'), String(64 * 1024 * 1024));
  assert.equal(r('requests.memory', '1Mi'), '64');
  assert.equal(r('limits.memory', '1M'), '135', '128Mi = 134.2M rounds up');
  assert.equal(r('limits.hugepages-2Mi', '1Mi'), '4');
  assert.equal(r('requests.cpu', '1m', 'init'), '2000', 'containerName finds init containers');
  assert.equal(r('requests.ephemeral-storage'), '0', 'unset requests read as 0');
});

test('unset limits default to node allocatable, or to pod-level limits', () => {
  const bare = resources.spec!.containers[1];
  assert.equal(resourceValue(resources, { resource: 'limits.cpu' }, bare, alloc, where), '8');
  assert.equal(resourceValue(resources, { resource: 'limits.memory', divisor: '1Gi' }, bare, alloc, where), '16');
  assert.equal(resourceValue(resources, { resource: 'limits.ephemeral-storage', divisor: '1Gi', containerName: 'bare' }, undefined, alloc, where), '100');
  const zero = { resources: { limits: { cpu: '0' } } };
  assert.equal(resourceValue(resources, { resource: 'limits.cpu' }, zero, alloc, where), '8', 'a zero limit counts as unset');
  const podLevel = { ...resources, spec: { ...resources.spec!, resources: { limits: { cpu: '3', memory: '1Gi' } } } };
  assert.equal(resourceValue(podLevel, { resource: 'limits.cpu' }, bare, alloc, where), '3');
  assert.equal(resourceValue(podLevel, { resource: 'limits.memory', divisor: '1Mi' }, bare, alloc, where), '1024');
  assert.equal(resourceValue(podLevel, { resource: 'limits.cpu', divisor: '1m' }, main, alloc, where), '1500', 'the container limit wins');
});

test('unknown resources and containers are rejected', () => {
  const isUnsupported = (err: unknown) => err instanceof UnsupportedPodSpecError && err.reason === 'UnsupportedField';
  assert.throws(() => resourceValue(resources, { resource: 'limits.gpu' }, main, alloc, where), isUnsupported);
  assert.throws(() => resourceValue(resources, { resource: 'cpu' }, main, alloc, where), isUnsupported);
  assert.throws(() => resourceValue(resources, { resource: 'limits.cpu', containerName: 'ghost' }, main, alloc, where), isUnsupported);
});

test('podIPEnvFields: the names set from status.podIP(s), the last entry of a name deciding', () => {
  const fields = podIPEnvFields({
    env: [
      { name: 'A', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'B', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
      { name: 'C', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      { name: 'D', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'D', value: 'literal' },
      { name: 'E', value: 'literal' },
      { name: 'E', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
    ],
  });
  assert.deepEqual(
    [...fields],
    [
      ['A', 'status.podIP'],
      ['B', 'status.podIPs'],
      ['E', 'status.podIPs'],
    ],
  );
  assert.equal(podIPEnvFields(undefined).size, 0);
});
