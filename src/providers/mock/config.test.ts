import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../errors.ts';
import { goArch } from '../../util/platform.ts';
import { parseMockConfig } from './config.ts';

function configError(input: unknown): string {
  try {
    parseMockConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'VK_CONFIG');
    return err.message;
  }
  assert.fail('expected parseMockConfig to throw');
}

test('every field has a default', () => {
  for (const input of [undefined, null, {}]) {
    const c = parseMockConfig(input);
    assert.deepEqual(c.capacity, { cpu: '20', memory: '100Gi', pods: '10000', 'ephemeral-storage': '1Ti' });
    assert.deepEqual(c.allocatable, c.capacity);
    assert.deepEqual(c.labels, {});
    assert.deepEqual(c.taints, []);
    assert.equal(c.operatingSystem, 'linux');
    assert.equal(c.architecture, goArch(process.arch));
    assert.deepEqual(c.lifecycle, { createDelayMs: 0, runningDelayMs: 0, restartDelayMs: 0 });
    assert.equal(c.notify, true);
    assert.equal(c.podCIDR, '10.244.0.0/16');
    assert.equal(c.stateFile, undefined);
  }
});

test('stateFile is an optional non-empty path', () => {
  assert.equal(parseMockConfig({ stateFile: '/tmp/vk/mock-state.json' }).stateFile, '/tmp/vk/mock-state.json');
  assert.equal(configError({ stateFile: '' }), 'provider config: stateFile: must not be empty');
  assert.equal(configError({ stateFile: 7 }), 'provider config: stateFile: expected a string');
});

test('capacity and allocatable merge over the defaults; numeric quantities are accepted', () => {
  const c = parseMockConfig({ capacity: { cpu: 4, 'nvidia.com/gpu': '2' }, allocatable: { memory: '90Gi' } });
  assert.deepEqual(c.capacity, { cpu: '4', memory: '100Gi', pods: '10000', 'ephemeral-storage': '1Ti', 'nvidia.com/gpu': '2' });
  assert.deepEqual(c.allocatable, { ...c.capacity, memory: '90Gi' });
});

test('explicit values pass through', () => {
  const c = parseMockConfig({
    labels: { zone: 'a' },
    taints: [{ key: 'dedicated', value: 'mock', effect: 'NoSchedule' }],
    architecture: 'arm64',
    lifecycle: { createDelayMs: 1, runningDelayMs: 2, completeAfterMs: 3, restartDelayMs: 4 },
    notify: false,
    podCIDR: '192.168.7.0/24',
  });
  assert.deepEqual(c.taints, [{ key: 'dedicated', value: 'mock', effect: 'NoSchedule' }]);
  assert.deepEqual(c.lifecycle, { createDelayMs: 1, runningDelayMs: 2, completeAfterMs: 3, restartDelayMs: 4 });
  assert.equal(c.notify, false);
  assert.equal(c.architecture, 'arm64');
});

test('errors are one line naming the field path', () => {
  assert.equal(configError({ lifecycle: { runningDelayMs: 'soon' } }), 'provider config: lifecycle.runningDelayMs: expected a number');
  assert.equal(configError({ lifecycle: { runningDelayMs: -1 } }), 'provider config: lifecycle.runningDelayMs: must be >= 0');
  assert.equal(configError({ lifecycle: { completeAfterMs: 1.5 } }), 'provider config: lifecycle.completeAfterMs: expected an integer');
  assert.equal(configError({ lifecycle: { runningDelay: 5 } }), 'provider config: lifecycle.runningDelay: unknown field');
  assert.equal(configError({ capacity: { cpu: 'lots' } }), 'provider config: capacity.cpu: expected a quantity such as 4, 500m or 16Gi');
  assert.equal(
    configError({ taints: [{ key: 'k', effect: 'Sometimes' }] }),
    'provider config: taints[0].effect: expected one of "NoSchedule", "PreferNoSchedule", "NoExecute"',
  );
  assert.equal(configError({ labels: { a: 1 } }), 'provider config: labels.a: expected a string');
  assert.equal(configError({ notify: 'yes' }), 'provider config: notify: expected a boolean');
  assert.match(configError({ podCIDR: '10.0.0.0/31' }), /^provider config: podCIDR: expected an IPv4 CIDR/);
  assert.equal(configError('mock'), 'provider config: expected an object');
  assert.equal(
    configError({ lifecycle: { runningDelayMs: 'x', restartDelayMs: 'y' } }),
    'provider config: lifecycle.runningDelayMs: expected a number (and 1 more)',
  );
  for (const input of [{ lifecycle: { runningDelayMs: 'x' } }, { bogus: { nested: true } }]) assert.doesNotMatch(configError(input), /\n/);
});
