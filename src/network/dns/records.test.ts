import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer } from 'dns-packet';
import type { ServiceEndpoint, ServiceInfo, ServiceView } from '../services.ts';
import { ClusterRecords, type ClusterAnswer } from './records.ts';

function service(fields: Partial<ServiceInfo> & Pick<ServiceInfo, 'name'>): ServiceInfo {
  return {
    namespace: 'shop',
    type: 'ClusterIP',
    clusterIPs: [],
    headless: false,
    ports: [],
    publishNotReadyAddresses: false,
    endpoints: [],
    ...fields,
  };
}

function endpoint(ip: string, fields: Partial<ServiceEndpoint> = {}): ServiceEndpoint {
  return { ip, ready: true, serving: true, terminating: false, ports: {}, ...fields };
}

const WEB = service({
  name: 'web',
  clusterIPs: ['10.96.0.20'],
  ports: [
    { name: 'http', protocol: 'TCP', port: 8080 },
    { name: 'metrics', protocol: 'TCP', port: 9090 },
  ],
  endpoints: [endpoint('10.244.0.5', { ports: { http: { port: 80, protocol: 'TCP' }, metrics: { port: 9100, protocol: 'TCP' } } })],
});
const DB = service({
  name: 'db',
  headless: true,
  ports: [{ name: 'pg', protocol: 'TCP', port: 5432 }],
  endpoints: [
    endpoint('10.244.0.7', { hostname: 'db-0', ports: { pg: { port: 5433, protocol: 'TCP' } } }),
    endpoint('10.244.0.8', { hostname: 'db-1', ports: { pg: { port: 5433, protocol: 'TCP' } } }),
    endpoint('10.244.0.9', { hostname: 'db-2', ready: false, serving: false, ports: { pg: { port: 5433, protocol: 'TCP' } } }),
    endpoint('10.244.0.10', { ports: { pg: { port: 5433, protocol: 'TCP' } } }),
  ],
});
const PEERS = service({
  name: 'peers',
  headless: true,
  publishNotReadyAddresses: true,
  endpoints: [endpoint('10.244.1.1', { ready: false, serving: false }), endpoint('10.244.1.2')],
});
const EMPTY = service({ name: 'empty', headless: true, ports: [{ name: 'x', protocol: 'UDP', port: 53 }] });
const EXTERNAL = service({ name: 'search', type: 'ExternalName', externalName: 'www.example.com.' });
const KUBERNETES = service({ name: 'kubernetes', namespace: 'default', clusterIPs: ['10.96.0.1'], ports: [{ name: 'https', protocol: 'TCP', port: 443 }] });

function view(...services: ServiceInfo[]): ServiceView & { set(...s: ServiceInfo[]): void } {
  let snapshot = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  return {
    snapshot: () => snapshot,
    onChange: () => () => {},
    set: (...next) => {
      snapshot = new Map(next.map((s) => [`${s.namespace}/${s.name}`, s]));
    },
  };
}

const records = new ClusterRecords(view(WEB, DB, PEERS, EMPTY, EXTERNAL, KUBERNETES), 'cluster.local');

function answered(result: ClusterAnswer): Extract<ClusterAnswer, { kind: 'answer' }> {
  assert.equal(result.kind, 'answer');
  return result as Extract<ClusterAnswer, { kind: 'answer' }>;
}
const data = (answers: Answer[]) => answers.map((a) => ('data' in a ? a.data : undefined));

function assertNoData(result: ClusterAnswer) {
  const a = answered(result);
  assert.equal(a.rcode, 'NOERROR');
  assert.deepEqual(a.answers, []);
  assert.equal(a.authorities[0]?.type, 'SOA');
  assert.equal(a.authorities[0]?.name, 'cluster.local');
}

function assertNxdomain(result: ClusterAnswer) {
  const a = answered(result);
  assert.equal(a.rcode, 'NXDOMAIN');
  assert.deepEqual(a.answers, []);
  assert.equal(a.authorities[0]?.type, 'SOA');
}

test('a ClusterIP service name is an A record of its cluster IP, TTL 5, in any case and with or without the final dot', () => {
  const a = answered(records.lookup('web.shop.svc.cluster.local', 'A'));
  assert.equal(a.rcode, 'NOERROR');
  assert.deepEqual(a.answers, [{ name: 'web.shop.svc.cluster.local', type: 'A', ttl: 5, data: '10.96.0.20' }]);
  const mixed = answered(records.lookup('WeB.Shop.SVC.Cluster.Local.', 'A'));
  assert.deepEqual(data(mixed.answers), ['10.96.0.20']);
  assert.equal(mixed.answers[0]?.name, 'WeB.Shop.SVC.Cluster.Local.', 'the owner name echoes the question (0x20 randomization)');
  assert.deepEqual(data(answered(records.lookup('kubernetes.default.svc.cluster.local', 'A')).answers), ['10.96.0.1']);
});

test('AAAA, TXT and other types for existing names are NODATA with the zone SOA', () => {
  assertNoData(records.lookup('web.shop.svc.cluster.local', 'AAAA'));
  assertNoData(records.lookup('web.shop.svc.cluster.local', 'TXT'));
  assertNoData(records.lookup('db.shop.svc.cluster.local', 'MX'));
  assertNoData(records.lookup('shop.svc.cluster.local', 'A')); // an existing namespace
  assertNoData(records.lookup('svc.cluster.local', 'A'));
  assertNoData(records.lookup('cluster.local', 'A'));
});

test('names in the cluster domain that do not exist are NXDOMAIN with the zone SOA', () => {
  assertNxdomain(records.lookup('nope.shop.svc.cluster.local', 'A'));
  assertNxdomain(records.lookup('web.other.svc.cluster.local', 'A'));
  assertNxdomain(records.lookup('other.svc.cluster.local', 'A'));
  assertNxdomain(records.lookup('web.shop.cluster.local', 'A'));
  assertNxdomain(records.lookup('a.b.c.d.web.shop.svc.cluster.local', 'A'));
  assertNxdomain(records.lookup('google.com.cluster.local', 'A'));
  assertNxdomain(records.lookup('nope.web.shop.svc.cluster.local', 'A'));
});

test('a headless service is the A records of its ready endpoints; none ready is NXDOMAIN', () => {
  assert.deepEqual(data(answered(records.lookup('db.shop.svc.cluster.local', 'A')).answers), ['10.244.0.7', '10.244.0.8', '10.244.0.10']);
  assertNxdomain(records.lookup('empty.shop.svc.cluster.local', 'A'));
});

test('publishNotReadyAddresses publishes endpoints that are not ready, ports or not', () => {
  assert.deepEqual(data(answered(records.lookup('peers.shop.svc.cluster.local', 'A')).answers), ['10.244.1.1', '10.244.1.2']);
  assertNoData(records.lookup('peers.shop.svc.cluster.local', 'SRV'));
});

test('endpoint names: the hostname, else the dashed address; an endpoint that is not ready has none', () => {
  assert.deepEqual(data(answered(records.lookup('db-1.db.shop.svc.cluster.local', 'A')).answers), ['10.244.0.8']);
  assert.deepEqual(data(answered(records.lookup('10-244-0-10.db.shop.svc.cluster.local', 'A')).answers), ['10.244.0.10']);
  assert.deepEqual(data(answered(records.lookup('10-244-0-5.web.shop.svc.cluster.local', 'A')).answers), ['10.244.0.5']);
  assertNxdomain(records.lookup('db-2.db.shop.svc.cluster.local', 'A'));
  assertNxdomain(records.lookup('db-9.db.shop.svc.cluster.local', 'A'));
});

test('SRV for a named port of a ClusterIP service points at the service name, with its A record in additionals', () => {
  const a = answered(records.lookup('_http._tcp.web.shop.svc.cluster.local', 'SRV'));
  assert.deepEqual(a.answers, [
    {
      name: '_http._tcp.web.shop.svc.cluster.local',
      type: 'SRV',
      ttl: 5,
      data: { priority: 0, weight: 100, port: 8080, target: 'web.shop.svc.cluster.local' },
    },
  ]);
  assert.deepEqual(a.additionals, [{ name: 'web.shop.svc.cluster.local', type: 'A', ttl: 5, data: '10.96.0.20' }]);
  // SRV on the bare service name: every port.
  const all = answered(records.lookup('web.shop.svc.cluster.local', 'SRV'));
  assert.deepEqual(
    all.answers.map((r) => (r.type === 'SRV' ? [r.data.port, r.data.weight] : [])),
    [
      [8080, 50],
      [9090, 50],
    ],
  );
  assert.equal(all.additionals.length, 1);
  // The A record of a port name is the service's address (CoreDNS answers it too).
  assert.deepEqual(data(answered(records.lookup('_http._tcp.web.shop.svc.cluster.local', 'A')).answers), ['10.96.0.20']);
});

test('a port name or protocol the service does not have is NXDOMAIN', () => {
  assertNxdomain(records.lookup('_grpc._tcp.web.shop.svc.cluster.local', 'SRV'));
  assertNxdomain(records.lookup('_http._udp.web.shop.svc.cluster.local', 'SRV'));
  assertNxdomain(records.lookup('http.tcp.web.shop.svc.cluster.local', 'SRV'));
});

test('SRV for a headless service: one record per ready endpoint, target its endpoint name, port the endpoint port, A glue', () => {
  const a = answered(records.lookup('_pg._tcp.db.shop.svc.cluster.local', 'SRV'));
  assert.deepEqual(
    a.answers.map((r) => (r.type === 'SRV' ? `${r.data.priority} ${r.data.weight} ${r.data.port} ${r.data.target}` : '')),
    ['0 33 5433 db-0.db.shop.svc.cluster.local', '0 33 5433 db-1.db.shop.svc.cluster.local', '0 33 5433 10-244-0-10.db.shop.svc.cluster.local'],
  );
  assert.deepEqual(
    a.additionals.map((r) => `${r.name} ${'data' in r ? r.data : ''}`),
    ['db-0.db.shop.svc.cluster.local 10.244.0.7', 'db-1.db.shop.svc.cluster.local 10.244.0.8', '10-244-0-10.db.shop.svc.cluster.local 10.244.0.10'],
  );
});

test('an ExternalName service is a CNAME to its external name; endpoint names under it do not exist', () => {
  for (const type of ['A', 'AAAA', 'CNAME']) {
    assert.deepEqual(answered(records.lookup('search.shop.svc.cluster.local', type)).answers, [
      { name: 'search.shop.svc.cluster.local', type: 'CNAME', ttl: 5, data: 'www.example.com' },
    ]);
  }
  assertNxdomain(records.lookup('x.search.shop.svc.cluster.local', 'A'));
  const byAddress = new ClusterRecords(view(service({ name: 'ip', type: 'ExternalName', externalName: '192.0.2.1' })), 'cluster.local');
  assertNxdomain(byAddress.lookup('ip.shop.svc.cluster.local', 'A'));
});

test('a dashed pod address in any namespace is an A record; AAAA is NODATA; anything else there is NXDOMAIN', () => {
  assert.deepEqual(answered(records.lookup('10-244-0-5.shop.pod.cluster.local', 'A')).answers, [
    { name: '10-244-0-5.shop.pod.cluster.local', type: 'A', ttl: 5, data: '10.244.0.5' },
  ]);
  assert.deepEqual(data(answered(records.lookup('10-1-2-3.elsewhere.pod.cluster.local', 'A')).answers), ['10.1.2.3']);
  assertNoData(records.lookup('10-244-0-5.shop.pod.cluster.local', 'AAAA'));
  assertNoData(records.lookup('shop.pod.cluster.local', 'A'));
  for (const bad of ['10-244-0.shop', '10-244-0-500.shop', '10--244-0-5.shop', 'web.shop', 'x.10-244-0-5.shop']) {
    assertNxdomain(records.lookup(`${bad}.pod.cluster.local`, 'A'));
  }
});

test('PTR for cluster IPs and published endpoint addresses; other reverse names are forwarded', () => {
  assert.deepEqual(answered(records.lookup('20.0.96.10.in-addr.arpa', 'PTR')).answers, [
    { name: '20.0.96.10.in-addr.arpa', type: 'PTR', ttl: 5, data: 'web.shop.svc.cluster.local' },
  ]);
  assert.deepEqual(data(answered(records.lookup('7.0.244.10.IN-ADDR.ARPA.', 'PTR')).answers), ['db-0.db.shop.svc.cluster.local']);
  assert.deepEqual(data(answered(records.lookup('5.0.244.10.in-addr.arpa', 'PTR')).answers), ['10-244-0-5.web.shop.svc.cluster.local']);
  assert.deepEqual(records.lookup('9.0.244.10.in-addr.arpa', 'PTR'), { kind: 'forward' }, 'not ready: not published');
  assert.deepEqual(records.lookup('1.2.0.192.in-addr.arpa', 'PTR'), { kind: 'forward' });
  assert.deepEqual(records.lookup('20.0.96.10.in-addr.arpa', 'A'), { kind: 'forward' });
});

test('names outside the cluster domain are forwarded', () => {
  for (const name of ['example.com', 'example.com.', 'cluster.local.example.com', 'xcluster.local', 'local', '.']) {
    assert.deepEqual(records.lookup(name, 'A'), { kind: 'forward' }, name);
  }
});

test('the zone apex answers its SOA; dns-version answers the schema version', () => {
  const soa = answered(records.lookup('cluster.local', 'SOA'));
  assert.equal(soa.answers[0]?.type, 'SOA');
  if (soa.answers[0]?.type === 'SOA') {
    assert.equal(soa.answers[0].data.mname, 'ns.dns.cluster.local');
    assert.equal(soa.answers[0].data.minimum, 5);
  }
  assert.deepEqual(data(answered(records.lookup('dns-version.cluster.local', 'TXT')).answers), ['1.1.0']);
});

test('another cluster domain is honoured, given with a final dot or in capitals', () => {
  const custom = new ClusterRecords(view(WEB), 'Corp.Internal.');
  assert.deepEqual(data(answered(custom.lookup('web.shop.svc.corp.internal', 'A')).answers), ['10.96.0.20']);
  assert.deepEqual(custom.lookup('web.shop.svc.cluster.local', 'A'), { kind: 'forward' });
});

test('the index is rebuilt only when the view hands out a new snapshot object', () => {
  let reads = 0;
  class CountingMap extends Map<string, ServiceInfo> {
    override values() {
      reads++;
      return super.values();
    }
  }
  let snapshot = new CountingMap([['shop/web', WEB]]);
  const counted = new ClusterRecords({ snapshot: () => snapshot, onChange: () => () => {} }, 'cluster.local');
  for (let i = 0; i < 100; i++) counted.lookup('web.shop.svc.cluster.local', 'A');
  assert.equal(reads, 1);

  const moved = { ...WEB, clusterIPs: ['10.96.0.99'] };
  snapshot = new CountingMap([['shop/web', moved]]);
  assert.deepEqual(data(answered(counted.lookup('web.shop.svc.cluster.local', 'A')).answers), ['10.96.0.99']);
  assert.equal(reads, 2);
});

test('a service that goes away stops resolving on the next snapshot', () => {
  const v = view(WEB);
  const r = new ClusterRecords(v, 'cluster.local');
  assert.equal(answered(r.lookup('web.shop.svc.cluster.local', 'A')).rcode, 'NOERROR');
  v.set();
  assertNxdomain(r.lookup('web.shop.svc.cluster.local', 'A'));
});
