// Benchmark (not a test): DNS lookups per second against the node's cluster DNS server (src/network/dns)
// on 127.0.0.1, for names it answers itself and for names it forwards ("the host resolver path").
//
//   node bench/dns.ts [--seconds 5] [--clients 16] [--out bench/results/dns.json]
//
// Three threads, like three processes on a node: the main thread runs the DnsServer under test
// (cluster.local, a few Services); a worker runs the "host resolver", a second DnsServer
// authoritative for example.test that the first forwards to; a worker runs the load: --clients UDP
// clients, each with one query in flight (send, wait for the answer, send the next), for --seconds
// per scenario after 0.5 s of warm-up. Scenarios:
//   cluster     A of a ClusterIP Service, answered from the ServiceView
//   headless    A of a headless Service with 10 ready endpoints
//   nxdomain    a Service that does not exist
//   forwarded   A of a name outside the cluster domain: server → upstream → server → client
//   upstream    the same name asked of the upstream directly: the forwarding overhead's baseline
// Every answer is checked (ID, RCODE, answer count); a query unanswered after 1 s counts as lost.
// Nothing leaves loopback. The machine's load average is recorded: the figures are only as quiet as it was.
import { mkdirSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import dnsPacket from 'dns-packet';
import { DnsServer } from '../src/network/dns/server.ts';
import type { ServiceEndpoint, ServiceInfo, ServiceView } from '../src/network/services.ts';

interface Scenario {
  name: string;
  question: string;
  /** 'server' or 'upstream': which server the clients ask. */
  target: 'server' | 'upstream';
  rcode: number;
  answers: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'cluster', question: 'web.shop.svc.cluster.local', target: 'server', rcode: 0, answers: 1 },
  { name: 'headless', question: 'db.shop.svc.cluster.local', target: 'server', rcode: 0, answers: 10 },
  { name: 'nxdomain', question: 'nope.shop.svc.cluster.local', target: 'server', rcode: 3, answers: 0 },
  { name: 'forwarded', question: 'api.shop.svc.example.test', target: 'server', rcode: 0, answers: 1 },
  { name: 'upstream', question: 'api.shop.svc.example.test', target: 'upstream', rcode: 0, answers: 1 },
];

interface LoadRequest {
  port: number;
  scenario: Scenario;
  clients: number;
  warmupMs: number;
  durationMs: number;
}

interface LoadResult {
  lookups: number;
  lost: number;
  wrong: number;
  seconds: number;
  latenciesUs: number[];
}

function view(services: ServiceInfo[]): ServiceView {
  const snapshot = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  return { snapshot: () => snapshot, onChange: () => () => {} };
}

function service(fields: Partial<ServiceInfo> & Pick<ServiceInfo, 'name'>): ServiceInfo {
  return { namespace: 'shop', type: 'ClusterIP', clusterIPs: [], headless: false, ports: [], publishNotReadyAddresses: false, endpoints: [], ...fields };
}

const endpoint = (ip: string): ServiceEndpoint => ({ ip, ready: true, serving: true, terminating: false, ports: { pg: { port: 5432, protocol: 'TCP' } } });

/** The load: `clients` closed-loop UDP clients for the warm-up, then for the measured window. */
async function runLoad(request: LoadRequest): Promise<LoadResult> {
  const { scenario } = request;
  const query = dnsPacket.encode({
    type: 'query',
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: scenario.question, type: 'A', class: 'IN' }],
  });
  const latenciesUs: number[] = [];
  let lookups = 0;
  let lost = 0;
  let wrong = 0;
  let measuring = false;
  let running = true;
  const client = async (index: number) => {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const message = Buffer.from(query);
    let id = index * 4096;
    let waiting: ((answer: Buffer | undefined) => void) | undefined;
    socket.on('message', (answer) => {
      if (answer.readUInt16BE(0) === id) waiting?.(answer);
    });
    while (running) {
      id = (id + 1) % 65536;
      message.writeUInt16BE(id, 0);
      const sent = performance.now();
      const answer = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 1000);
        waiting = (a) => {
          clearTimeout(timer);
          resolve(a);
        };
        socket.send(message, request.port, '127.0.0.1');
      });
      waiting = undefined;
      if (!measuring) continue;
      if (!answer) {
        lost++;
        continue;
      }
      if ((answer[3]! & 0x0f) !== scenario.rcode || answer.readUInt16BE(6) !== scenario.answers) wrong++;
      lookups++;
      latenciesUs.push((performance.now() - sent) * 1000);
    }
    socket.close();
  };
  const clients = Array.from({ length: request.clients }, (_, i) => client(i));
  await new Promise((resolve) => setTimeout(resolve, request.warmupMs));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, request.durationMs));
  measuring = false;
  const seconds = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(clients);
  return { lookups, lost, wrong, seconds, latenciesUs };
}

if (!isMainThread) {
  const role = (workerData as { role: string }).role;
  if (role === 'upstream') {
    const upstream = new DnsServer({
      host: '127.0.0.1',
      port: 0,
      clusterDomain: 'example.test',
      services: view([service({ name: 'api', clusterIPs: ['192.0.2.10'], ports: [{ name: 'https', protocol: 'TCP', port: 443 }] })]),
      upstreams: [],
    });
    const { port } = await upstream.start();
    parentPort!.postMessage({ port });
    parentPort!.once('message', () => void upstream.stop().then(() => parentPort!.close()));
  } else {
    parentPort!.on('message', (request: LoadRequest | 'stop') => {
      if (request === 'stop') parentPort!.close();
      else void runLoad(request).then((result) => parentPort!.postMessage(result));
    });
  }
} else {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      clients: { type: 'string', default: '16' },
      out: { type: 'string', default: 'bench/results/dns.json' },
    },
  });
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  if (!(seconds > 0) || !Number.isInteger(clients) || clients < 1) {
    process.stderr.write('usage: node bench/dns.ts [--seconds 5] [--clients 16] [--out bench/results/dns.json]\n');
    process.exit(2);
  }
  const say = (line: string) => process.stderr.write(`[dns] ${line}\n`);

  const upstreamWorker = new Worker(new URL(import.meta.url), { workerData: { role: 'upstream' } });
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    upstreamWorker.once('message', (m: { port: number }) => resolve(m.port));
    upstreamWorker.once('error', reject);
  });
  const server = new DnsServer({
    host: '127.0.0.1',
    port: 0,
    clusterDomain: 'cluster.local',
    services: view([
      service({ name: 'web', clusterIPs: ['10.96.0.20'], ports: [{ name: 'http', protocol: 'TCP', port: 80 }] }),
      service({ name: 'db', headless: true, endpoints: Array.from({ length: 10 }, (_, i) => endpoint(`10.244.0.${i + 10}`)) }),
      ...Array.from({ length: 1000 }, (_, i) => service({ name: `svc-${i}`, namespace: `ns-${i % 50}`, clusterIPs: [`10.97.${i >> 8}.${i & 255}`] })),
    ]),
    upstreams: [{ host: '127.0.0.1', port: upstreamPort }],
    upstreamTimeoutMs: 1000,
  });
  const { port } = await server.start();
  const loadWorker = new Worker(new URL(import.meta.url), { workerData: { role: 'load' } });
  say(`server 127.0.0.1:${port}, upstream 127.0.0.1:${upstreamPort}, ${clients} clients, ${seconds} s per scenario`);

  const loadBefore = os.loadavg();
  const results: Record<string, unknown> = {};
  const table: string[] = ['| scenario | lookups/s | p50 (µs) | p99 (µs) | lost | wrong |', '|---|---:|---:|---:|---:|---:|'];
  try {
    for (const scenario of SCENARIOS) {
      const request: LoadRequest = { port: scenario.target === 'server' ? port : upstreamPort, scenario, clients, warmupMs: 500, durationMs: seconds * 1000 };
      const result = await new Promise<LoadResult>((resolve, reject) => {
        loadWorker.once('message', resolve);
        loadWorker.once('error', reject);
        loadWorker.postMessage(request);
      });
      const sorted = result.latenciesUs.sort((a, b) => a - b);
      const rank = (q: number) => Math.round(sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0);
      const summary = {
        question: scenario.question,
        asked: scenario.target,
        lookupsPerSecond: Math.round(result.lookups / result.seconds),
        lookups: result.lookups,
        seconds: Math.round(result.seconds * 100) / 100,
        latencyUs: { p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: Math.round(sorted.at(-1) ?? 0) },
        lost: result.lost,
        wrong: result.wrong,
      };
      results[scenario.name] = summary;
      table.push(
        `| ${scenario.name} | ${summary.lookupsPerSecond} | ${summary.latencyUs.p50} | ${summary.latencyUs.p99} | ${summary.lost} | ${summary.wrong} |`,
      );
      say(
        `${scenario.name}: ${summary.lookupsPerSecond} lookups/s, p50 ${summary.latencyUs.p50} µs, p99 ${summary.latencyUs.p99} µs, ${summary.lost} lost, ${summary.wrong} wrong`,
      );
    }
  } finally {
    loadWorker.postMessage('stop');
    upstreamWorker.postMessage('stop');
    await server.stop();
  }

  const round = (l: number) => Math.round(l * 100) / 100;
  const output = {
    benchmark: 'dns',
    description:
      'cluster DNS server (src/network/dns) on 127.0.0.1: closed-loop UDP clients in a worker thread, the server in the main thread, the upstream ("host resolver") a second DnsServer in another worker',
    date: new Date().toISOString(),
    clients,
    secondsPerScenario: seconds,
    servicesInView: 1002,
    // 1-, 5- and 15-minute load averages before and after (2 CPUs: above ~1 something else ran too).
    loadavg: { before: loadBefore.map(round), after: os.loadavg().map(round) },
    host: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, kernel: os.release(), node: process.version },
    scenarios: results,
    forwardedToUpstreamRatio: round(
      (results.forwarded as { lookupsPerSecond: number }).lookupsPerSecond / (results.upstream as { lookupsPerSecond: number }).lookupsPerSecond,
    ),
    serverCounters: server.counters,
  };
  process.stdout.write(
    `\n${clients} clients, ${seconds} s each; load average ${output.loadavg.before.join(' ')} before, ${output.loadavg.after.join(' ')} after\n${table.join('\n')}\n`,
  );
  if (values.out) {
    mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify(output, null, 2)}\n`);
    say(`wrote ${values.out}`);
  }
}
