import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dottedSysctlName, sysctlCommand } from './sysctls.ts';

test('sysctl names with slash separators become dotted ones, dots inside a part become slashes', () => {
  assert.equal(dottedSysctlName('kernel.shm_rmid_forced'), 'kernel.shm_rmid_forced');
  assert.equal(dottedSysctlName('kernel/shm_rmid_forced'), 'kernel.shm_rmid_forced');
  assert.equal(dottedSysctlName('net/ipv4/conf/eth0.100/forwarding'), 'net.ipv4.conf.eth0/100.forwarding');
  assert.equal(dottedSysctlName('net.ipv4.conf.eth0/100.forwarding'), 'net.ipv4.conf.eth0/100.forwarding');
});

test("the sysctl is written from inside the pause process's net, ipc and uts namespaces", () => {
  assert.deepEqual(sysctlCommand({ nsenter: 'nsenter', busybox: '/bin/busybox' }, 42, { name: 'kernel/shm_rmid_forced', value: '1' }), [
    'nsenter',
    '--net=/proc/42/ns/net',
    '--ipc=/proc/42/ns/ipc',
    '--uts=/proc/42/ns/uts',
    '--',
    '/bin/busybox',
    'sysctl',
    '-w',
    'kernel.shm_rmid_forced=1',
  ]);
});
