import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandNodes } from './node-list.ts';
import { NODE_DEFAULTS, readConfigFile, validateNodeSettings } from './options.ts';

const settings = (extra: Record<string, unknown>) => validateNodeSettings({ ...NODE_DEFAULTS, nodeName: 'vk', nodeIp: '127.0.0.1', ...extra }, 'options');

test('--nodes N names nodes from the template, or appends -i, and spreads a fixed kubelet port', () => {
  assert.deepEqual(
    expandNodes(settings({ nodes: 3, nodeName: 'edge-{i}.zone' })).map((n) => n.nodeName),
    ['edge-0.zone', 'edge-1.zone', 'edge-2.zone'],
  );
  const plain = expandNodes(settings({ nodes: 2, kubeletPort: 11000 }));
  assert.deepEqual(
    plain.map((n) => [n.nodeName, n.kubeletPort]),
    [
      ['vk-0', 11000],
      ['vk-1', 11001],
    ],
  );
  assert.deepEqual(
    expandNodes(settings({ nodes: 2, kubeletPort: 0 })).map((n) => n.kubeletPort),
    [0, 0],
  );
  assert.equal(expandNodes(settings({})).length, 1);
  assert.equal(expandNodes(settings({}))[0]!.nodeName, 'vk');
});

test('a nodes list gives each node its own provider config, labels and taints over the shared ones', () => {
  const nodes = expandNodes(
    settings({
      labels: { team: 'a' },
      providerConfig: 'shared.yaml',
      nodes: [{ nodeName: 'gpu', providerConfig: 'gpu.yaml', labels: { gpu: 'yes' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }] }, { nodeName: 'cpu' }],
    }),
  );
  assert.deepEqual(nodes[0]!.labels, { team: 'a', gpu: 'yes' });
  assert.equal(nodes[0]!.providerConfig, 'gpu.yaml');
  assert.deepEqual(nodes[0]!.taints, [{ key: 'gpu', effect: 'NoSchedule' }]);
  assert.equal(nodes[1]!.providerConfig, 'shared.yaml');
  assert.equal(nodes[1]!.taints, undefined);
});

test('bad node lists are one-line errors naming the entry', () => {
  assert.throws(() => expandNodes(settings({ nodes: [{ nodeName: 'a' }, { nodeName: 'a' }] })), /nodes\[1\]: nodeName a is used twice/);
  assert.throws(() => expandNodes(settings({ nodes: [{ nodeName: 'Bad_Name' }] })), /nodes\[0\]: nodeName: must be a lowercase DNS subdomain/);
  assert.throws(() => settings({ nodes: [{ nodeName: 'a', colour: 'red' }] }), /nodes\.0: Unrecognized key/);
});

test('the example nodes file is valid and expands to its three nodes', () => {
  const file = new URL('../../examples/many-nodes/nodes.yaml', import.meta.url).pathname;
  const nodes = expandNodes(settings(readConfigFile(file)));
  assert.deepEqual(
    nodes.map((n) => n.nodeName),
    ['virtual-small', 'virtual-gpu', 'virtual-batch'],
  );
  assert.deepEqual(nodes[1]!.labels, { 'example.com/pool': 'virtual', 'example.com/accelerator': 'gpu' });
});
