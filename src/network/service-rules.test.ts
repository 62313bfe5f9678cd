import assert from 'node:assert/strict';
import test from 'node:test';
import { CommandError, run } from '../util/command.ts';
import { buildRules, eligibleTargets, tableNameFor, type RulesConfig } from './service-rules.ts';
import type { ServiceEndpoint, ServiceInfo } from './services.ts';

const endpoint = (
  ip: string,
  ports: ServiceEndpoint['ports'],
  conditions: Partial<Pick<ServiceEndpoint, 'ready' | 'serving' | 'terminating'>> = {},
): ServiceEndpoint => ({
  ip,
  ready: true,
  serving: true,
  terminating: false,
  ports,
  ...conditions,
});

const web: ServiceInfo = {
  namespace: 'ns',
  name: 'web',
  type: 'ClusterIP',
  clusterIPs: ['10.96.0.10'],
  headless: false,
  ports: [
    { name: 'http', protocol: 'TCP', port: 8080 },
    { name: 'dns', protocol: 'UDP', port: 53 },
    { name: 'metrics', protocol: 'TCP', port: 9100 },
  ],
  publishNotReadyAddresses: false,
  endpoints: [
    endpoint('10.215.0.2', { http: { port: 80, protocol: 'TCP' }, dns: { port: 5353, protocol: 'UDP' } }),
    // Named targetPort resolved to another number on this pod.
    endpoint('10.215.0.6', { http: { port: 8000, protocol: 'TCP' } }),
    endpoint('10.215.0.10', { http: { port: 80, protocol: 'TCP' } }, { ready: false, serving: false }),
    endpoint('192.0.2.50', { http: { port: 80, protocol: 'TCP' } }),
  ],
};

const config: RulesConfig = {
  table: 'vk_test',
  podCIDR: '10.215.0.0/16',
  podLinks: 'vk*',
  egress: true,
  guardedUplinks: [],
  dns: { address: '169.254.20.10', port: 40053 },
};

test('ready endpoints, each at its own resolved port; not-ready ones left out; a port no endpoint has gets none', () => {
  assert.deepEqual(eligibleTargets(web, web.ports[0]!), [
    { ip: '10.215.0.2', port: 80 },
    { ip: '10.215.0.6', port: 8000 },
    { ip: '192.0.2.50', port: 80 },
  ]);
  assert.deepEqual(eligibleTargets(web, web.ports[1]!), [{ ip: '10.215.0.2', port: 5353 }]);
  assert.deepEqual(eligibleTargets(web, web.ports[2]!), []);
});

test('with no ready endpoint, serving terminating ones take the traffic (kube-proxy’s fallback)', () => {
  const draining: ServiceInfo = {
    ...web,
    endpoints: [
      endpoint('10.215.0.2', { http: { port: 80, protocol: 'TCP' } }, { ready: false, serving: true, terminating: true }),
      endpoint('10.215.0.6', { http: { port: 80, protocol: 'TCP' } }, { ready: false, serving: false, terminating: true }),
    ],
  };
  assert.deepEqual(eligibleTargets(draining, web.ports[0]!), [{ ip: '10.215.0.2', port: 80 }]);
});

test('the script DNATs each served port, rejects the rest, masquerades hairpin and egress traffic', () => {
  const rules = buildRules(new Map([['ns/web', web]]), { ...config, guardedUplinks: ['eth0'] });
  assert.match(rules, /^table ip vk_test \{\}\ndelete table ip vk_test\ntable ip vk_test \{/);
  assert.match(
    rules,
    /chain svc_0 \{\n\s+comment "ns\/web:http"\n\s+meta l4proto tcp dnat ip to numgen random mod 3 map \{ 0 : 10\.215\.0\.2 \. 80, 1 : 10\.215\.0\.6 \. 8000, 2 : 192\.0\.2\.50 \. 80 \}/,
  );
  assert.match(rules, /chain svc_1 \{\n\s+comment "ns\/web:dns"\n\s+meta l4proto udp dnat ip to 10\.215\.0\.2:5353/);
  assert.match(rules, /ip daddr \. meta l4proto \. th dport vmap \{ 10\.96\.0\.10 \. tcp \. 8080 : goto svc_0, 10\.96\.0\.10 \. udp \. 53 : goto svc_1 \}/);
  assert.doesNotMatch(rules, /9100/);
  assert.match(rules, /ip saddr 10\.215\.0\.0\/16 ip daddr \{ 10\.96\.0\.10 \} reject/);
  // Hairpin only for endpoints that are pods of this CIDR.
  assert.match(rules, /ct status dnat ip saddr \. ip daddr \{ 10\.215\.0\.2 \. 10\.215\.0\.2, 10\.215\.0\.6 \. 10\.215\.0\.6 \} masquerade/);
  assert.match(rules, /ip saddr 10\.215\.0\.0\/16 ip daddr != 10\.215\.0\.0\/16 masquerade/);
  assert.match(rules, /iifname \{ "eth0" \} ip daddr 10\.215\.0\.0\/16 ct state established,related accept\n\s+iifname \{ "eth0" \} drop/);
  assert.match(rules, /chain prerouting \{[^}]*jump services\n\s+ip daddr 169\.254\.20\.10 meta l4proto \{ tcp, udp \} th dport 53 redirect to :40053/);
  assert.match(rules, /chain output \{[^}]*jump services\n\s+ip daddr 169\.254\.20\.10 meta l4proto \{ tcp, udp \} th dport 53 redirect to :40053/);
  assert.match(rules, /chain local_out \{[^}]*\n\s+ip daddr \{ 10\.96\.0\.10 \} reject/);
  // Pod addresses never leave through anything but a pod's link.
  assert.equal(rules.match(/ip daddr 10\.215\.0\.0\/16 oifname != "vk\*" reject with icmp type host-unreachable/g)?.length, 2);
  assert.match(rules, /th dport 40053 iifname != "lo" ct status & dnat == 0 drop/);
});

test('without egress and DNS the script has neither', () => {
  const rules = buildRules(new Map(), { ...config, egress: false, dns: undefined });
  assert.doesNotMatch(rules, /masquerade|redirect|chain input|reject(?! with icmp type host-unreachable)/);
});

test('table names are valid nftables identifiers, distinct per node', () => {
  assert.match(tableNameFor('vk-local'), /^vk_vk_local_[0-9a-f]{8}$/);
  assert.notEqual(tableNameFor('a.b'), tableNameFor('a-b'));
});

test('nft accepts the script (checked in a network namespace of its own, nothing applied)', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  try {
    await run(['nft', '--version']);
  } catch {
    t.skip('nft is not installed');
    return;
  }
  const services = new Map([
    ['ns/web', web],
    ['ns/empty', { ...web, name: 'empty', clusterIPs: ['10.96.0.11'], endpoints: [] }],
  ]);
  const script = buildRules(services, { ...config, guardedUplinks: ['eth0', 'ens3'] });
  try {
    await run(['unshare', '--net', 'nft', '-c', '-f', '-'], { input: script });
  } catch (err) {
    assert.fail(`nft rejected the script: ${err instanceof CommandError ? err.stderr : String(err)}\n${script}`);
  }
});
