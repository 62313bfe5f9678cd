// Real UDP and TCP sockets on 127.0.0.1; the "upstream resolver" is a second DnsServer the test
// starts (authoritative for example.test), so no query leaves loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from 'dns-packet';
import type { ServiceEndpoint, ServiceInfo, ServiceView } from '../services.ts';
import { DnsServer, hostUpstreams } from './server.ts';

function view(services: ServiceInfo[]): ServiceView {
  const snapshot = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  return { snapshot: () => snapshot, onChange: () => () => {} };
}

function service(fields: Partial<ServiceInfo> & Pick<ServiceInfo, 'name'>): ServiceInfo {
  return { namespace: 'shop', type: 'ClusterIP', clusterIPs: [], headless: false, ports: [], publishNotReadyAddresses: false, endpoints: [], ...fields };
}

const endpoints = (n: number, base: string): ServiceEndpoint[] =>
  Array.from({ length: n }, (_, i) => ({ ip: `${base}.${Math.floor(i / 250)}.${(i % 250) + 1}`, ready: true, serving: true, terminating: false, ports: {} }));

const CLUSTER = [
  service({ name: 'web', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', protocol: 'TCP', port: 8080 }] }),
  service({ name: 'many', headless: true, endpoints: endpoints(100, '10.244') }),
  service({ name: 'search', type: 'ExternalName', externalName: 'api.shop.svc.example.test' }),
];
const UPSTREAM_ZONE = [
  service({ name: 'api', clusterIPs: ['192.0.2.10'], ports: [{ name: 'https', protocol: 'TCP', port: 443 }] }),
  service({ name: 'big', headless: true, endpoints: endpoints(100, '10.9') }),
];

let upstream: DnsServer;
let server: DnsServer;

before(async () => {
  upstream = new DnsServer({ host: '127.0.0.1', port: 0, clusterDomain: 'example.test', services: view(UPSTREAM_ZONE), upstreams: [] });
  const { port } = await upstream.start();
  server = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    clusterDomain: 'cluster.local',
    services: view(CLUSTER),
    upstreams: [{ host: '127.0.0.1', port }],
    upstreamTimeoutMs: 1000,
  });
  await server.start();
});

after(async () => {
  await server.stop();
  await upstream.stop();
});

let nextId = 1;
function query(name: string, type: RecordType = 'A', extra: Partial<Packet> = {}): Packet {
  return { type: 'query', id: nextId++ % 65536, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra };
}

/** One UDP exchange; rejects after `timeoutMs` without an answer. */
function askUdp(port: number, message: Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no UDP answer'));
    }, timeoutMs);
    socket.on('message', (answer) => {
      clearTimeout(timer);
      socket.close();
      resolve(answer);
    });
    socket.send(message, port, '127.0.0.1');
  });
}

/** Several queries on one TCP connection; answers in the order they come. */
function askTcp(port: number, messages: Buffer[], timeoutMs = 5000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const answers: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${answers.length} of ${messages.length} TCP answers`));
    }, timeoutMs);
    socket.on('error', reject);
    socket.on('connect', () => {
      for (const m of messages) socket.write(Buffer.concat([Buffer.from([m.length >> 8, m.length & 255]), m]));
    });
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        answers.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      if (answers.length === messages.length) {
        clearTimeout(timer);
        socket.destroy();
        resolve(answers);
      }
    });
  });
}

async function udp(packet: Packet, port = server.address!.port): Promise<DecodedPacket & { rcode?: string }> {
  return dnsPacket.decode(await askUdp(port, dnsPacket.encode(packet)));
}

const addresses = (p: Packet) => (p.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : []));

test('UDP and TCP listen on the one port; a cluster name is answered authoritatively with its ID', async () => {
  const q = query('web.shop.svc.cluster.local');
  const answer = await udp(q);
  assert.equal(answer.id, q.id);
  assert.equal(answer.rcode, 'NOERROR');
  assert.equal(answer.flag_aa, true);
  assert.equal(answer.flag_rd, true);
  assert.deepEqual(addresses(answer), ['10.96.0.20']);

  const [overTcp] = await askTcp(server.address!.port, [dnsPacket.encode(query('web.shop.svc.cluster.local'))]);
  assert.deepEqual(addresses(dnsPacket.decode(overTcp!)), ['10.96.0.20']);
});

test('several queries pipelined on one TCP connection are all answered, local and forwarded', async () => {
  const qs = [query('web.shop.svc.cluster.local'), query('api.shop.svc.example.test'), query('nope.shop.svc.cluster.local')];
  const answers = (
    await askTcp(
      server.address!.port,
      qs.map((q) => dnsPacket.encode(q)),
    )
  ).map((a) => dnsPacket.decode(a) as DecodedPacket & { rcode?: string });
  const byId = new Map(answers.map((a) => [a.id, a]));
  assert.deepEqual(addresses(byId.get(qs[0]!.id)!), ['10.96.0.20']);
  assert.deepEqual(addresses(byId.get(qs[1]!.id)!), ['192.0.2.10']);
  assert.equal(byId.get(qs[2]!.id)!.rcode, 'NXDOMAIN');
});

test('a name outside the cluster domain is forwarded to the upstream resolver and its answer relayed with the client ID', async () => {
  const before = upstream.counters.queries.udp;
  const q = query('API.shop.svc.example.test');
  const answer = await udp(q);
  assert.equal(answer.id, q.id);
  assert.deepEqual(addresses(answer), ['192.0.2.10']);
  assert.equal(answer.questions?.[0]?.name, 'API.shop.svc.example.test');
  assert.equal(upstream.counters.queries.udp, before + 1);
  assert.ok(server.counters.results.forwarded >= 1);
});

test('NXDOMAIN and NODATA carry the cluster SOA in authority', async () => {
  const nx = await udp(query('nope.shop.svc.cluster.local'));
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.equal(nx.authorities?.[0]?.type, 'SOA');
  const nodata = await udp(query('web.shop.svc.cluster.local', 'AAAA'));
  assert.equal(nodata.rcode, 'NOERROR');
  assert.deepEqual(nodata.answers, []);
  assert.equal(nodata.authorities?.[0]?.type, 'SOA');
});

test('an ExternalName service answers its CNAME and the target records the upstream gives', async () => {
  const answer = await udp(query('search.shop.svc.cluster.local'));
  assert.equal(answer.rcode, 'NOERROR');
  assert.deepEqual(
    answer.answers?.map((a) => [a.type, 'data' in a ? a.data : '']),
    [
      ['CNAME', 'api.shop.svc.example.test'],
      ['A', '192.0.2.10'],
    ],
  );
});

test('a UDP answer larger than 512 bytes (no EDNS) is cut with TC set; with EDNS up to 1232; over TCP it is whole', async () => {
  const plain = await askUdp(server.address!.port, dnsPacket.encode(query('many.shop.svc.cluster.local')));
  assert.ok(plain.length <= 512, `${plain.length} bytes`);
  const cut = dnsPacket.decode(plain);
  assert.equal(cut.flag_tc, true);
  assert.ok(addresses(cut).length > 0 && addresses(cut).length < 100);

  const edns = query('many.shop.svc.cluster.local', 'A', {
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
  const larger = await askUdp(server.address!.port, dnsPacket.encode(edns));
  assert.ok(larger.length > 512 && larger.length <= 1232, `${larger.length} bytes`);
  assert.equal(dnsPacket.decode(larger).additionals?.at(-1)?.type, 'OPT');

  const [whole] = await askTcp(server.address!.port, [dnsPacket.encode(query('many.shop.svc.cluster.local'))]);
  const full = dnsPacket.decode(whole!);
  assert.equal(full.flag_tc, false);
  assert.equal(addresses(full).length, 100);
  assert.ok(server.counters.truncated >= 2);
});

test('a forwarded answer truncated over UDP is asked again over TCP; a TCP client gets it whole, a UDP client the cut one', async () => {
  const tcpBefore = upstream.counters.queries.tcp;
  const [whole] = await askTcp(server.address!.port, [dnsPacket.encode(query('big.shop.svc.example.test'))]);
  assert.equal(addresses(dnsPacket.decode(whole!)).length, 100);
  assert.equal(upstream.counters.queries.tcp, tcpBefore + 1, 'a TCP client: TCP upstream');

  const viaUdp = await udp(query('big.shop.svc.example.test'));
  assert.equal(viaUdp.flag_tc, true);
  assert.equal(upstream.counters.queries.tcp, tcpBefore + 2, 'the truncated UDP answer made the forwarder ask over TCP');
});

test('malformed packets: no header is dropped, an unparsable body gets FORMERR with the ID, the server keeps answering', async () => {
  assert.equal(await server.answer(Buffer.from([1, 2, 3]), 'udp'), undefined);
  // A header that announces one question, and no question.
  const header = Buffer.from([0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const formerr = dnsPacket.decode(await askUdp(server.address!.port, header)) as DecodedPacket & { rcode?: string };
  assert.equal(formerr.id, 0xbeef);
  assert.equal(formerr.rcode, 'FORMERR');
  assert.equal(formerr.flag_qr, true);
  // A name whose label runs past the end.
  const broken = Buffer.concat([Buffer.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([40, 97, 98])]);
  assert.equal((dnsPacket.decode(await askUdp(server.address!.port, broken)) as { rcode?: string }).rcode, 'FORMERR');
  // A label that is not UTF-8 cannot be repeated faithfully in an answer.
  const binary = Buffer.concat([Buffer.from([0, 10, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from([2, 0xff, 0xfe, 0, 0, 1, 0, 1])]);
  assert.equal((dnsPacket.decode(await askUdp(server.address!.port, binary)) as { rcode?: string }).rcode, 'FORMERR');
  // Two questions in one query.
  const two = dnsPacket.encode({
    ...query('web.shop.svc.cluster.local'),
    questions: [
      { name: 'a.example', type: 'A' },
      { name: 'b.example', type: 'A' },
    ],
  });
  assert.equal((dnsPacket.decode(await askUdp(server.address!.port, two)) as { rcode?: string }).rcode, 'FORMERR');
  // A response sent to the server is not answered (no loop between two servers).
  const response = dnsPacket.encode({ ...query('web.shop.svc.cluster.local'), type: 'response' });
  assert.equal(await server.answer(response, 'udp'), undefined);
  // A non-QUERY opcode (STATUS = 2) is NOTIMP.
  const status = dnsPacket.encode({ ...query('web.shop.svc.cluster.local'), flags: 2 << 11 });
  assert.equal((dnsPacket.decode(await askUdp(server.address!.port, status)) as { rcode?: string }).rcode, 'NOTIMP');

  // Garbage over TCP too, then a good query on a new connection.
  await new Promise<void>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: server.address!.port }, () => socket.end(Buffer.from([0, 3, 1, 2, 3, 0xff])));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    socket.resume();
  });
  assert.deepEqual(addresses(await udp(query('web.shop.svc.cluster.local'))), ['10.96.0.20']);
  assert.ok(server.counters.results.formerr >= 3 && server.counters.results.dropped >= 2 && server.counters.results.notimp >= 1);
});

test('random bytes and mutated queries never throw: every one is dropped or answered with a parsable response', async () => {
  // A seeded generator: the same 3000 inputs each run, so a failure can be reproduced.
  let seed = 0x9e3779b9;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const valid = dnsPacket.encode(
    query('web.shop.svc.cluster.local', 'SRV', {
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    }),
  );
  let dropped = 0;
  let answered = 0;
  for (let i = 0; i < 3000; i++) {
    let input: Buffer;
    if (i % 2 === 0) {
      input = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256)));
    } else {
      input = Buffer.from(valid);
      for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
      if (random() < 0.3) input = input.subarray(0, Math.floor(random() * input.length));
    }
    const answer = await server.answer(input, i % 3 === 0 ? 'tcp' : 'udp');
    if (answer === undefined) {
      dropped++;
      continue;
    }
    const decoded = dnsPacket.decode(answer);
    assert.equal(decoded.flag_qr, true, `input ${input.toString('hex')}`);
    assert.equal(decoded.id, input.readUInt16BE(0));
    answered++;
  }
  assert.ok(dropped > 100 && answered > 100, `${dropped} dropped, ${answered} answered`);
  assert.deepEqual(addresses(await udp(query('web.shop.svc.cluster.local'))), ['10.96.0.20']);
});

test('upstreams down: SERVFAIL within the per-upstream timeout; a dead first upstream is skipped for a live second one', async () => {
  const dead = await silentUpstream();
  const deadPort = dead.address().port;
  const lonely = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    clusterDomain: 'cluster.local',
    services: view(CLUSTER),
    upstreams: [{ host: '127.0.0.1', port: deadPort }],
    upstreamTimeoutMs: 300,
  });
  const fallback = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    clusterDomain: 'cluster.local',
    services: view(CLUSTER),
    upstreams: [
      { host: '127.0.0.1', port: deadPort },
      { host: '127.0.0.1', port: upstream.address!.port },
    ],
    upstreamTimeoutMs: 300,
  });
  await lonely.start();
  await fallback.start();
  try {
    const started = performance.now();
    const failed = await udp(query('api.shop.svc.example.test'), lonely.address!.port);
    const elapsed = performance.now() - started;
    assert.equal(failed.rcode, 'SERVFAIL');
    assert.ok(elapsed >= 250 && elapsed < 1500, `${elapsed} ms`);
    assert.equal(lonely.counters.results.servfail, 1);
    assert.equal(lonely.upstreamFailures, 1);
    // Cluster names do not need an upstream.
    assert.deepEqual(addresses(await udp(query('web.shop.svc.cluster.local'), lonely.address!.port)), ['10.96.0.20']);

    const [overTcp] = await askTcp(lonely.address!.port, [dnsPacket.encode(query('api.shop.svc.example.test'))]);
    assert.equal((dnsPacket.decode(overTcp!) as { rcode?: string }).rcode, 'SERVFAIL');

    assert.deepEqual(addresses(await udp(query('api.shop.svc.example.test'), fallback.address!.port)), ['192.0.2.10']);
    assert.equal(fallback.upstreamFailures, 1);
  } finally {
    await lonely.stop();
    await fallback.stop();
    dead.close();
  }
});

test('a server never forwards to itself: an upstream on its own port (wildcard listen, loopback upstream) is left out', async () => {
  // A fixed port the kernel handed out a moment ago; another try if something took it meanwhile.
  let own: DnsServer | undefined;
  for (let attempt = 0; !own; attempt++) {
    const port = await freeUdpPort();
    const candidate = new DnsServer({
      host: '0.0.0.0',
      port,
      clusterDomain: 'cluster.local',
      services: view(CLUSTER),
      upstreams: [{ host: '127.0.0.1', port }],
      upstreamTimeoutMs: 300,
    });
    try {
      await candidate.start();
      own = candidate;
    } catch (err) {
      if (attempt >= 5 || (err as { code?: string }).code !== 'VK_CONFIG') throw err;
    }
  }
  try {
    const answer = await udp(query('api.shop.svc.example.test'), own.address!.port);
    assert.equal(answer.rcode, 'SERVFAIL');
    assert.equal(own.upstreamFailures, 0, 'the query was forwarded to this server itself');
    assert.equal(own.counters.results.servfail, 1);
  } finally {
    await own.stop();
  }
});

test('stop() releases the UDP and TCP port and the open TCP connections', async () => {
  const own = new DnsServer({ host: '127.0.0.1', port: 0, clusterDomain: 'cluster.local', services: view(CLUSTER), upstreams: [] });
  const { port } = await own.start();
  const idle = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve) => idle.on('connect', resolve));
  const closed = new Promise((resolve) => idle.on('close', resolve));
  idle.resume();
  await own.stop();
  await closed;
  // Both can be bound again: nothing of the server is left on the port.
  const again = new DnsServer({ host: '127.0.0.1', port, clusterDomain: 'cluster.local', services: view(CLUSTER), upstreams: [] });
  assert.deepEqual(await again.start(), { host: '127.0.0.1', port });
  await again.stop();
});

test('the default upstreams are the nameservers of the host resolv.conf, port 53', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'vk-dns-'));
  try {
    await writeFile(path.join(dir, 'resolv.conf'), 'nameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver ::1\nsearch x\n');
    assert.deepEqual(await hostUpstreams(path.join(dir, 'resolv.conf')), [
      { host: '127.0.0.53', port: 53 },
      { host: 'fe80::1%eth0', port: 53 },
      { host: '::1', port: 53 },
    ]);
    assert.deepEqual(await hostUpstreams(path.join(dir, 'missing')), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** A loopback port (UDP and TCP) that nothing listens on. */
/** An upstream that is down: bound for the whole test (so no server can be handed its port) and never answers. */
async function silentUpstream(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

async function freeUdpPort(): Promise<number> {
  const socket = await silentUpstream();
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

test('a port that is taken fails start() with a VK_CONFIG error naming the address', async () => {
  const taken = server.address!.port;
  const clash = new DnsServer({ host: '127.0.0.1', port: taken, clusterDomain: 'cluster.local', services: view(CLUSTER), upstreams: [] });
  await assert.rejects(clash.start(), (err: Error & { code?: string }) => err.code === 'VK_CONFIG' && err.message.includes(`127.0.0.1:${taken}`));
  assert.equal(clash.address, undefined);
});
