import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withPodIPs } from './pod-ip-env.ts';

const original = {
  name: 'c',
  env: [
    { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
    { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
    { name: 'PLAIN', value: 'x' },
  ],
};

test('status.podIP and status.podIPs env vars get the address the sandbox gave the pod; others stay', () => {
  const env = ['PATH=/bin', 'POD_IP=', 'POD_IPS=', 'HOST_IP=192.0.2.1', 'PLAIN=x'];
  assert.deepEqual(withPodIPs(env, original, ['10.215.0.6']), ['PATH=/bin', 'POD_IP=10.215.0.6', 'POD_IPS=10.215.0.6', 'HOST_IP=192.0.2.1', 'PLAIN=x']);
});

test('without an address (or without such vars) the env is unchanged', () => {
  const env = ['POD_IP=', 'PLAIN=x'];
  assert.deepEqual(withPodIPs(env, original, []), env);
  assert.deepEqual(withPodIPs(env, { name: 'c', env: [{ name: 'PLAIN', value: 'x' }] }, ['10.0.0.1']), env);
});

test('a later literal entry of the same name is not overwritten with the address', () => {
  const shadowed = {
    name: 'c',
    env: [
      { name: 'ADDR', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'ADDR', value: 'fixed' },
    ],
  };
  assert.deepEqual(withPodIPs(['ADDR=fixed'], shadowed, ['10.215.0.6']), ['ADDR=fixed']);
});
