import assert from 'node:assert/strict';
import test from 'node:test';
import { staleUdpFlows } from './conntrack.ts';
import type { ServiceEndpoint, ServiceInfo } from './services.ts';

const dnsPort = { dns: { port: 5353, protocol: 'UDP' as const } };
const httpPort = { http: { port: 80, protocol: 'TCP' as const } };

function endpoint(ip: string, ports: ServiceEndpoint['ports'], conditions: Partial<ServiceEndpoint> = {}): ServiceEndpoint {
  return { ip, ready: true, serving: true, terminating: false, ports, ...conditions };
}

function service(name: string, clusterIP: string, endpoints: ServiceEndpoint[], protocol: 'UDP' | 'TCP' = 'UDP'): ServiceInfo {
  return {
    namespace: 'ns',
    name,
    type: 'ClusterIP',
    clusterIPs: [clusterIP],
    headless: false,
    ports: [protocol === 'UDP' ? { name: 'dns', protocol, port: 53 } : { name: 'http', protocol, port: 8080 }],
    publishNotReadyAddresses: false,
    endpoints,
  };
}

const view = (...services: ServiceInfo[]) => new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));

test('an endpoint leaving a UDP Service: its flows from the cluster IP go, the others stay', () => {
  const before = view(service('dns', '10.96.0.10', [endpoint('10.215.0.2', dnsPort), endpoint('10.215.0.6', dnsPort)]));
  const after = view(service('dns', '10.96.0.10', [endpoint('10.215.0.6', dnsPort)]));
  assert.deepEqual(staleUdpFlows(before, after), [{ clusterIP: '10.96.0.10', endpointIP: '10.215.0.2' }]);
  // Not ready any more counts as leaving (the rules no longer send to it).
  const unready = view(service('dns', '10.96.0.10', [endpoint('10.215.0.2', dnsPort, { ready: false }), endpoint('10.215.0.6', dnsPort)]));
  assert.deepEqual(staleUdpFlows(before, unready), [{ clusterIP: '10.96.0.10', endpointIP: '10.215.0.2' }]);
  assert.deepEqual(staleUdpFlows(before, before), []);
  assert.deepEqual(staleUdpFlows(before, view(...before.values())), [], 'same endpoints in a new snapshot');
});

test('a UDP Service gaining its first endpoint, or created with one: every flow to its cluster IP goes', () => {
  const none = view(service('dns', '10.96.0.10', []));
  const one = view(service('dns', '10.96.0.10', [endpoint('10.215.0.2', dnsPort)]));
  assert.deepEqual(staleUdpFlows(none, one), [{ clusterIP: '10.96.0.10' }]);
  assert.deepEqual(staleUdpFlows(view(), one), [{ clusterIP: '10.96.0.10' }]);
  assert.deepEqual(staleUdpFlows(one, none), [{ clusterIP: '10.96.0.10', endpointIP: '10.215.0.2' }]);
});

test('a deleted UDP Service: the flows to each of its endpoints go; TCP Services and TCP-only endpoints never flush', () => {
  const dns = service('dns', '10.96.0.10', [endpoint('10.215.0.2', dnsPort), endpoint('10.215.0.9', httpPort)]);
  assert.deepEqual(staleUdpFlows(view(dns), view()), [{ clusterIP: '10.96.0.10', endpointIP: '10.215.0.2' }]);
  const web = service('web', '10.96.0.20', [endpoint('10.215.0.3', httpPort)], 'TCP');
  assert.deepEqual(staleUdpFlows(view(), view(web)), []);
  assert.deepEqual(staleUdpFlows(view(web), view()), []);
});
