import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, formatIPv4, parseIPv4, parseIPv4Cidr } from './ipv4.ts';

test('parseIPv4Cidr masks to the network and rejects nonsense', () => {
  assert.deepEqual(parseIPv4Cidr('10.244.3.9/16'), { base: (10 * 2 ** 24 + 244 * 2 ** 16) >>> 0, bits: 16 });
  for (const bad of ['10.244.0.0', '10.244.0.0/33', '300.0.0.0/8', 'fd00::/64', '10.0.0.0/32']) assert.equal(parseIPv4Cidr(bad), undefined, bad);
});

test('formatIPv4 writes the dotted quad of a 32-bit number', () => {
  assert.equal(formatIPv4(0), '0.0.0.0');
  assert.equal(formatIPv4(0x0ad70002), '10.215.0.2');
  assert.equal(formatIPv4(0xffffffff), '255.255.255.255');
});

test('parseIPv4 reads a dotted quad and rejects anything else', () => {
  assert.equal(parseIPv4('10.215.0.2'), 0x0ad70002);
  for (const bad of ['10.215.0', '256.0.0.1', '10.0.0.1/8', 'x']) assert.equal(parseIPv4(bad), undefined, bad);
});

test('cidrContains', () => {
  const net = parseIPv4Cidr('10.215.0.0/16')!;
  assert.equal(cidrContains(net, '10.215.255.254'), true);
  assert.equal(cidrContains(net, '10.216.0.1'), false);
  assert.equal(cidrContains(net, '192.0.2.50'), false);
  assert.equal(cidrContains(net, 'not an ip'), false);
  assert.equal(cidrContains(parseIPv4Cidr('0.0.0.0/0')!, '203.0.113.9'), true);
});
