import assert from 'node:assert/strict';
import test from 'node:test';
import type { Service } from '../kube/types.ts';
import { buildServiceInfo, trimEndpointSlice, trimService, type EndpointSlice } from './service-catalog.ts';

const service = (spec: Service['spec']): Service => ({ metadata: { namespace: 'ns', name: 'web', managedFields: [{ manager: 'x' }] }, spec, status: {} });

const slice = (name: string, endpoints: EndpointSlice['endpoints'], ports: EndpointSlice['ports'], addressType = 'IPv4'): EndpointSlice => ({
  metadata: { namespace: 'ns', name, labels: { 'kubernetes.io/service-name': 'web', other: 'dropped' }, annotations: { a: 'b' } },
  addressType,
  endpoints,
  ports,
});

test('trims Services and EndpointSlices to the fields the rules and DNS read', () => {
  const svc = service({
    type: 'ClusterIP',
    clusterIP: '10.96.0.5',
    clusterIPs: ['10.96.0.5'],
    selector: { app: 'web' },
    ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
  });
  trimService(svc);
  assert.deepEqual(svc, {
    metadata: { name: 'web', namespace: 'ns', resourceVersion: undefined },
    spec: {
      type: 'ClusterIP',
      clusterIP: '10.96.0.5',
      clusterIPs: ['10.96.0.5'],
      externalName: undefined,
      publishNotReadyAddresses: undefined,
      ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
    },
  });
  const s = slice(
    'web-1',
    [{ addresses: ['10.215.0.2'], conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'web-a', uid: 'u' }, zone: 'z' }],
    [{ name: 'http', port: 8080, protocol: 'TCP' }],
  );
  trimEndpointSlice(s);
  assert.deepEqual(s.metadata?.labels, { 'kubernetes.io/service-name': 'web' });
  assert.equal(s.metadata?.annotations, undefined);
  assert.deepEqual(s.endpoints?.[0], {
    addresses: ['10.215.0.2'],
    conditions: { ready: true },
    hostname: undefined,
    nodeName: undefined,
    targetRef: { kind: 'Pod', name: 'web-a' },
  });
  const v6 = slice('web-2', [{ addresses: ['fd00::1'] }], [], 'IPv6');
  trimEndpointSlice(v6);
  assert.deepEqual(v6.endpoints, []);
});

test('a ClusterIP Service gathers endpoints of all its slices, each with its slice’s resolved ports', () => {
  const info = buildServiceInfo(
    service({
      clusterIP: '10.96.0.5',
      ports: [
        { name: 'http', port: 80 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    }),
    [
      slice(
        'b',
        [{ addresses: ['10.215.0.6'], conditions: { ready: false, serving: true, terminating: true }, hostname: 'h6', nodeName: 'n1' }],
        [{ name: 'http', port: 9090 }],
      ),
      slice(
        'a',
        [{ addresses: ['10.215.0.2'] }],
        [
          { name: 'http', port: 8080, protocol: 'TCP' },
          { name: 'dns', port: 5353, protocol: 'UDP' },
        ],
      ),
    ],
  );
  assert.equal(info.type, 'ClusterIP');
  assert.deepEqual(info.clusterIPs, ['10.96.0.5']);
  assert.equal(info.headless, false);
  assert.deepEqual(info.ports, [
    { name: 'http', protocol: 'TCP', port: 80 },
    { name: 'dns', protocol: 'UDP', port: 53 },
  ]);
  assert.deepEqual(
    info.endpoints.map((e) => [e.ip, e.ready, e.serving, e.terminating, e.ports]),
    [
      ['10.215.0.2', true, true, false, { http: { port: 8080, protocol: 'TCP' }, dns: { port: 5353, protocol: 'UDP' } }],
      ['10.215.0.6', false, true, true, { http: { port: 9090, protocol: 'TCP' } }],
    ],
  );
  assert.equal(info.endpoints[1]!.hostname, 'h6');
});

test('headless and ExternalName Services have no cluster IPs', () => {
  assert.deepEqual(buildServiceInfo(service({ clusterIP: 'None', ports: [] }), []).clusterIPs, []);
  assert.equal(buildServiceInfo(service({ clusterIP: 'None' }), []).headless, true);
  const ext = buildServiceInfo(service({ type: 'ExternalName', externalName: 'example.org' }), []);
  assert.deepEqual([ext.type, ext.externalName, ext.clusterIPs], ['ExternalName', 'example.org', []]);
  // IPv6 cluster IPs of a dual-stack Service are left out (the node's rules are IPv4).
  assert.deepEqual(buildServiceInfo(service({ clusterIP: 'fd00::5', clusterIPs: ['fd00::5', '10.96.0.9'] }), []).clusterIPs, ['10.96.0.9']);
});
