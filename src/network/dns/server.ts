// The node's cluster DNS server: UDP and TCP on one address and port, answering the cluster domain
// from the ServiceView (records.ts) and forwarding every other name to the upstream resolvers
// (upstream.ts). A packet whose header cannot be read is dropped; one that cannot be parsed gets
// FORMERR; a UDP answer larger than the client takes is cut with TC set, so it asks again over TCP.
// dns-packet does the wire format both ways: maintained, widely used (mDNS, DoH clients), covers
// every record type here, so no packet is assembled by hand.
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { readFile } from 'node:fs/promises';
import dnsPacket, { type Answer, type DecodedPacket, type Packet, type RecordType } from 'dns-packet';
import { VkError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { silentLogger } from '../../log.ts';
import type { ServiceView } from '../services.ts';
import { ClusterRecords } from './records.ts';
import { parseResolvConf } from './resolv-conf.ts';
import { questionSection, UpstreamForwarder, type Upstream } from './upstream.ts';

export interface DnsServerOptions {
  /** Listening address, e.g. the host end of the pods' network. */
  host: string;
  /** 0: one free port, the same for UDP and TCP. */
  port: number;
  /** The kubelet's --cluster-domain. */
  clusterDomain: string;
  services: ServiceView;
  /** Resolvers for names outside the cluster domain; default: the host's /etc/resolv.conf nameservers. */
  upstreams?: Upstream[];
  /** Per upstream and attempt; default 2000 ms. */
  upstreamTimeoutMs?: number;
  log?: Logger;
}

/** What became of each query; `answer`/`nodata`/`nxdomain` were answered from the cluster. */
export type DnsResult = 'answer' | 'nodata' | 'nxdomain' | 'forwarded' | 'servfail' | 'formerr' | 'notimp' | 'dropped';

export interface DnsCounters {
  queries: { udp: number; tcp: number };
  results: Record<DnsResult, number>;
  /** UDP answers cut to the client's size (TC set). */
  truncated: number;
}

// Header bits (RFC 1035 4.1.1) as dns-packet's `flags` carries them, with the opcode and RCODE.
const FLAG_AA = dnsPacket.AUTHORITATIVE_ANSWER;
const FLAG_TC = dnsPacket.TRUNCATED_RESPONSE;
const FLAG_RD = dnsPacket.RECURSION_DESIRED;
const FLAG_RA = dnsPacket.RECURSION_AVAILABLE;
const OPCODE_MASK = 0x7800;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;
/** Without EDNS a UDP answer is at most 512 bytes; with it, what the client says, up to this (DNS flag day 2020). */
const MAX_EDNS_UDP = 1232;
const TCP_IDLE_MS = 10_000;
/** CNAME targets followed for an ExternalName service, at most (a loop stops here). */
const MAX_CNAME_CHAIN = 8;

export class DnsServer {
  readonly counters: DnsCounters = {
    queries: { udp: 0, tcp: 0 },
    results: { answer: 0, nodata: 0, nxdomain: 0, forwarded: 0, servfail: 0, formerr: 0, notimp: 0, dropped: 0 },
    truncated: 0,
  };
  readonly #options: DnsServerOptions;
  readonly #records: ClusterRecords;
  readonly #log: Logger;
  #forwarder: UpstreamForwarder | undefined;
  #udp: dgram.Socket | undefined;
  #tcp: net.Server | undefined;
  readonly #connections = new Set<net.Socket>();
  #address: { host: string; port: number } | undefined;

  constructor(options: DnsServerOptions) {
    this.#options = options;
    this.#records = new ClusterRecords(options.services, options.clusterDomain);
    this.#log = options.log ?? silentLogger;
  }

  /** Where it listens; undefined before start and after stop. */
  get address(): { host: string; port: number } | undefined {
    return this.#address;
  }

  /** Upstream attempts that failed (each timeout, error or SERVFAIL/REFUSED of one upstream). */
  get upstreamFailures(): number {
    return this.#forwarder?.failedAttempts ?? 0;
  }

  async start(): Promise<{ host: string; port: number }> {
    const configured = this.#options.upstreams ?? (await hostUpstreams());

    // Port 0: the kernel picks the UDP port; TCP then takes the same one (another try if it is taken).
    for (let attempt = 0; ; attempt++) {
      try {
        const udp = await bindUdp(this.#options.host, this.#options.port);
        try {
          this.#tcp = await listenTcp(this.#options.host, udp.address().port, (socket) => this.#serveTcp(socket));
        } catch (err) {
          udp.close();
          throw err;
        }
        this.#udp = udp;
        break;
      } catch (err) {
        if (this.#options.port === 0 && attempt < 10 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw new VkError('VK_CONFIG', `cluster DNS: cannot listen on ${this.#options.host}:${this.#options.port} (UDP and TCP): ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    const port = this.#udp.address().port;
    // Never forward to ourselves: a host resolv.conf could name this address, and with port 0 the
    // kernel may hand us the very port an upstream names (each query would then loop back to us).
    const upstreams = configured.filter((u) => !(u.port === port && isOwnHost(u.host, this.#options.host)));
    if (upstreams.length === 0) this.#log.warn('cluster DNS: no upstream resolvers; names outside the cluster domain get SERVFAIL');
    this.#forwarder = new UpstreamForwarder(upstreams, { timeoutMs: this.#options.upstreamTimeoutMs ?? 2000 });
    this.#udp.on('message', (message, from) => this.#serveUdp(message, from));
    this.#udp.on('error', (err) => this.#log.warn({ err }, 'cluster DNS: UDP socket error'));
    this.#address = { host: this.#options.host, port };
    this.#log.info({ ...this.#address, upstreams }, 'cluster DNS listening');
    return this.#address;
  }

  /** Stops listening, closes every TCP connection and upstream socket. */
  async stop(): Promise<void> {
    this.#forwarder?.close();
    this.#address = undefined;
    const udp = this.#udp;
    const tcp = this.#tcp;
    this.#udp = undefined;
    this.#tcp = undefined;
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }

  #serveUdp(message: Buffer, from: dgram.RemoteInfo): void {
    this.counters.queries.udp++;
    this.answer(message, 'udp').then(
      (answer) => {
        if (answer && this.#udp) this.#udp.send(answer, from.port, from.address);
      },
      (err: unknown) => this.#log.warn({ err }, 'cluster DNS: query failed'),
    );
  }

  #serveTcp(socket: net.Socket): void {
    this.#connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      // Several queries may come on one connection; answers go back as each is ready (RFC 7766).
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const message = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + message.length);
        this.counters.queries.tcp++;
        this.answer(Buffer.from(message), 'tcp').then(
          (answer) => {
            if (!answer || socket.destroyed) return;
            const framed = Buffer.alloc(answer.length + 2);
            framed.writeUInt16BE(answer.length, 0);
            answer.copy(framed, 2);
            socket.write(framed);
          },
          (err: unknown) => this.#log.warn({ err }, 'cluster DNS: query failed'),
        );
      }
    });
  }

  /** The answer to one DNS message as it came on `transport`; undefined to send nothing. Never throws. */
  async answer(message: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    // Not even a header, or a response (never answer one: two servers could loop): drop.
    if (message.length < 12 || (message[2]! & 0x80) !== 0) return this.#count('dropped', undefined);
    const id = message.readUInt16BE(0);
    const echo = message.readUInt16BE(2) & (OPCODE_MASK | FLAG_RD);
    // FORMERR, NOTIMP and SERVFAIL carry the header only: the question may be what is wrong.
    const error = (result: DnsResult, rcode: number) => this.#count(result, encode({ type: 'response', id, flags: echo | FLAG_RA | rcode }));
    if ((echo & OPCODE_MASK) !== 0) return error('notimp', RCODE.NOTIMP);
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return error('formerr', RCODE.FORMERR);
    }
    if (query.questions?.length !== 1) return error('formerr', RCODE.FORMERR);
    // The answer repeats the question as dns-packet encodes it: a name that does not survive that
    // (bytes that are not UTF-8, a dot inside a label, an unknown class) would not match the query.
    const asked = questionSection(message);
    if (!asked || !asked.equals(dnsPacket.encode({ questions: query.questions }).subarray(12))) return error('formerr', RCODE.FORMERR);
    try {
      return await this.#answerQuery(message, query, transport);
    } catch (err) {
      this.#log.warn({ err, question: query.questions[0] }, 'cluster DNS: query failed');
      return error('servfail', RCODE.SERVFAIL);
    }
  }

  async #answerQuery(message: Buffer, query: DecodedPacket, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const id = query.id ?? 0;
    const echo = (query.flags ?? 0) & (OPCODE_MASK | FLAG_RD);
    const question = query.questions![0]!;

    const edns = query.additionals?.find((a) => a.type === 'OPT');
    const maxUdpSize = edns && 'udpPayloadSize' in edns ? Math.min(Math.max(edns.udpPayloadSize, 512), MAX_EDNS_UDP) : 512;
    const cls = question.class ?? 'IN';
    const local = cls === 'IN' || cls === 'ANY' ? this.#records.lookup(question.name, question.type) : { kind: 'forward' as const };

    if (local.kind === 'forward') {
      const answer = await this.#forwarder?.forward(message, { transport, maxUdpSize });
      if (answer) return this.#count('forwarded', answer);
      return this.#count('servfail', encode({ type: 'response', id, flags: echo | FLAG_RA | RCODE.SERVFAIL, questions: [question] }));
    }

    let { rcode, answers } = local;
    const { authorities, additionals } = local;
    const last = answers.at(-1);
    if (last?.type === 'CNAME' && question.type !== 'CNAME') {
      const chased = await this.#chase(last.data, question.type, transport);
      rcode = chased.rcode;
      answers = [...answers, ...chased.answers];
    }
    const response: Packet = {
      type: 'response',
      id,
      flags: echo | FLAG_AA | FLAG_RA | RCODE[rcode],
      questions: [question],
      answers,
      authorities,
      additionals: edns ? [...additionals, optRecord()] : additionals,
    };
    const result: DnsResult = rcode === 'NXDOMAIN' ? 'nxdomain' : answers.length === 0 ? 'nodata' : 'answer';
    return this.#count(result, transport === 'udp' ? this.#fit(response, maxUdpSize) : encode(response));
  }

  /** The records of a CNAME target (an ExternalName service's name), from the cluster or upstream. */
  async #chase(target: string, type: string, transport: 'udp' | 'tcp'): Promise<{ rcode: 'NOERROR' | 'NXDOMAIN'; answers: Answer[] }> {
    const answers: Answer[] = [];
    let name = target;
    for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
      const local = this.#records.lookup(name, type);
      let rcode: 'NOERROR' | 'NXDOMAIN';
      let found: Answer[];
      if (local.kind === 'answer') {
        rcode = local.rcode;
        found = local.answers;
      } else {
        const query = encode({ type: 'query', id: 0, flags: FLAG_RD, questions: [{ name, type: type as RecordType, class: 'IN' }] });
        const raw = await this.#forwarder?.forward(query, { transport, maxUdpSize: MAX_EDNS_UDP });
        if (!raw) return { rcode: 'NOERROR', answers };
        let decoded: DecodedPacket;
        try {
          decoded = dnsPacket.decode(raw);
        } catch {
          return { rcode: 'NOERROR', answers };
        }
        rcode = (decoded.flags ?? 0) % 16 === RCODE.NXDOMAIN ? 'NXDOMAIN' : 'NOERROR';
        found = decoded.answers ?? [];
      }
      answers.push(...found);
      const next = found.at(-1);
      if (next?.type !== 'CNAME' || local.kind === 'forward') return { rcode, answers };
      name = next.data;
    }
    return { rcode: 'NOERROR', answers };
  }

  /** The encoded response, cut to `limit` bytes for UDP: additionals go first, then answers from the end (TC set). */
  #fit(response: Packet, limit: number): Buffer {
    if (dnsPacket.encodingLength(response) <= limit) return encode(response);
    const opt = response.additionals?.filter((a) => a.type === 'OPT') ?? [];
    const cut: Packet = { ...response, additionals: opt, authorities: [] };
    // dns-packet does not compress names, so sizes add up record by record.
    let size = dnsPacket.encodingLength({ ...cut, answers: [] });
    const answers: Answer[] = [];
    for (const answer of response.answers ?? []) {
      const next = dnsPacket.encodingLength({ questions: [], answers: [answer] }) - 12;
      if (size + next > limit) break;
      size += next;
      answers.push(answer);
    }
    if (answers.length < (response.answers?.length ?? 0)) {
      cut.flags = (cut.flags ?? 0) | FLAG_TC;
      this.counters.truncated++;
    }
    return encode({ ...cut, answers });
  }

  #count<T>(result: DnsResult, value: T): T {
    this.counters.results[result]++;
    return value;
  }
}

function encode(packet: Packet): Buffer {
  return dnsPacket.encode(packet);
}

/** Our EDNS record: the UDP size we take (RFC 6891). */
function optRecord(): Answer {
  return { type: 'OPT', name: '.', udpPayloadSize: MAX_EDNS_UDP, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

/** The host's resolvers from /etc/resolv.conf (addresses only), port 53; none when it cannot be read. */
export async function hostUpstreams(path = '/etc/resolv.conf'): Promise<Upstream[]> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return parseResolvConf(text)
    .nameservers.filter((host) => net.isIP(host) !== 0)
    .map((host) => ({ host, port: 53 }));
}

/** Whether `upstream` is an address this server, listening on `listening`, answers on. */
function isOwnHost(upstream: string, listening: string): boolean {
  if (upstream === listening) return true;
  if (listening !== '0.0.0.0' && listening !== '::') return false;
  if (upstream.startsWith('127.') || upstream === '::1' || upstream === '0.0.0.0' || upstream === '::') return true;
  return Object.values(os.networkInterfaces()).some((addresses) => addresses?.some((a) => a.address === upstream));
}

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function listenTcp(host: string, port: number, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
