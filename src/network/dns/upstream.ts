// Forwarding of queries the cluster does not answer to the upstream resolvers, in order: each gets
// `timeoutMs`, a timeout, a socket error, SERVFAIL or REFUSED moves on to the next. Queries go out
// as the client sent them (EDNS and flags kept) with an ID of ours; answers are matched by ID,
// source address and the question section, and get the client's ID back. UDP shares one socket per
// address family; a truncated UDP answer is asked again over TCP (one connection per query).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwardOptions {
  transport: 'udp' | 'tcp';
  /** The most a UDP client takes: a larger TCP answer is not used, the truncated UDP one is. */
  maxUdpSize: number;
}

/** The header flags and RCODEs read here (the rest of the packet is the client's or the upstream's). */
const TC_BIT = 0x02; // byte 2
const RCODE_MASK = 0x0f; // byte 3
const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;

interface Pending {
  upstream: Upstream;
  question: Buffer;
  resolve: (answer: Buffer | undefined) => void;
}

export class UpstreamForwarder {
  readonly upstreams: readonly Upstream[];
  readonly timeoutMs: number;
  /** Attempts that failed (timeout, error, SERVFAIL/REFUSED), for metrics. */
  failedAttempts = 0;
  readonly #sockets = new Map<'udp4' | 'udp6', dgram.Socket>();
  readonly #pending = new Map<number, Pending>();
  readonly #tcp = new Set<net.Socket>();
  #closed = false;

  constructor(upstreams: readonly Upstream[], options: { timeoutMs?: number } = {}) {
    this.upstreams = upstreams;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  /**
   * The upstream answer to `query` (a whole DNS message), with the query's ID; undefined when
   * every upstream failed. An upstream SERVFAIL/REFUSED is returned when no upstream did better.
   */
  async forward(query: Buffer, options: ForwardOptions): Promise<Buffer | undefined> {
    const question = questionSection(query);
    if (!question) return undefined;
    let fallback: Buffer | undefined;
    for (const upstream of this.upstreams) {
      if (this.#closed) break;
      const answer = await this.#ask(upstream, query, question, options);
      if (!answer) {
        this.failedAttempts++;
        continue;
      }
      const rcode = answer[3]! & RCODE_MASK;
      if (rcode === RCODE_SERVFAIL || rcode === RCODE_REFUSED) {
        this.failedAttempts++;
        fallback = answer;
        continue;
      }
      return answer;
    }
    return fallback;
  }

  async #ask(upstream: Upstream, query: Buffer, question: Buffer, options: ForwardOptions): Promise<Buffer | undefined> {
    if (options.transport === 'tcp') return this.#askTcp(upstream, query, question);
    const answer = await this.#askUdp(upstream, query, question);
    if (!answer || (answer[2]! & TC_BIT) === 0) return answer;
    const full = await this.#askTcp(upstream, query, question);
    return full && full.length <= options.maxUdpSize ? full : answer;
  }

  #askUdp(upstream: Upstream, query: Buffer, question: Buffer): Promise<Buffer | undefined> {
    const id = this.#freeId();
    if (id === undefined || this.#closed) return Promise.resolve(undefined);
    const socket = this.#socket(net.isIPv6(upstream.host) ? 'udp6' : 'udp4');
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      let done = false;
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      const finish = (answer: Buffer | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#pending.delete(id);
        if (answer) answer.writeUInt16BE(query.readUInt16BE(0), 0);
        resolve(answer);
      };
      this.#pending.set(id, { upstream, question, resolve: finish });
      try {
        socket.send(out, upstream.port, upstream.host, (err) => {
          if (err) finish(undefined);
        });
      } catch {
        finish(undefined); // the socket was closed under us
      }
    });
  }

  #askTcp(upstream: Upstream, query: Buffer, question: Buffer): Promise<Buffer | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    const id = randomInt(0, 65536);
    const out = Buffer.alloc(query.length + 2);
    out.writeUInt16BE(query.length, 0);
    query.copy(out, 2);
    out.writeUInt16BE(id, 2);
    return new Promise((resolve) => {
      const socket = net.connect({ host: upstream.host, port: upstream.port });
      this.#tcp.add(socket);
      let received = Buffer.alloc(0);
      let done = false;
      const finish = (answer: Buffer | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.#tcp.delete(socket);
        socket.destroy();
        if (answer) answer.writeUInt16BE(query.readUInt16BE(0), 0);
        resolve(answer);
      };
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      socket.on('connect', () => socket.write(out));
      socket.on('error', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 2) return;
        const length = received.readUInt16BE(0);
        if (received.length < length + 2) return;
        const answer = Buffer.from(received.subarray(2, length + 2));
        finish(matches(answer, id, question) ? answer : undefined);
      });
    });
  }

  #socket(family: 'udp4' | 'udp6'): dgram.Socket {
    let socket = this.#sockets.get(family);
    if (socket) return socket;
    socket = dgram.createSocket(family);
    socket.on('message', (message, from) => {
      if (message.length < 12) return;
      const pending = this.#pending.get(message.readUInt16BE(0));
      // Only the upstream asked, with the question asked, answers (a spoofed or late answer is dropped).
      if (!pending || pending.upstream.port !== from.port || !sameHost(pending.upstream.host, from.address)) return;
      if (!matches(message, message.readUInt16BE(0), pending.question)) return;
      pending.resolve(message);
    });
    socket.on('error', () => {
      // Sends report their own errors; a socket error leaves the pending queries to their timeouts.
    });
    socket.unref();
    this.#sockets.set(family, socket);
    return socket;
  }

  #freeId(): number | undefined {
    if (this.#pending.size >= 65536) return undefined;
    while (true) {
      const id = randomInt(0, 65536);
      if (!this.#pending.has(id)) return id;
    }
  }

  /** Fails every query in flight and releases the sockets. */
  close(): void {
    this.#closed = true;
    for (const pending of [...this.#pending.values()]) pending.resolve(undefined);
    for (const socket of this.#sockets.values()) socket.close();
    this.#sockets.clear();
    for (const socket of this.#tcp) socket.destroy();
    this.#tcp.clear();
  }
}

/** An answer to our query: a response (QR set) with our ID and the question we sent. */
function matches(answer: Buffer, id: number, question: Buffer): boolean {
  if (answer.length < 12 || answer.readUInt16BE(0) !== id || (answer[2]! & 0x80) === 0) return false;
  // FORMERR, NOTIMP and the like may come as a bare header.
  if (answer.readUInt16BE(4) === 0) return (answer[3]! & RCODE_MASK) !== 0;
  if (answer.readUInt16BE(4) !== 1 || answer.length < 12 + question.length) return false;
  // Case-insensitively: a resolver may not keep the case of the name (0x20 randomization aside).
  return answer.toString('latin1', 12, 12 + question.length).toLowerCase() === question.toString('latin1').toLowerCase();
}

/** The question section of a one-question message (name labels, type, class); undefined if malformed. */
export function questionSection(message: Buffer): Buffer | undefined {
  if (message.length < 12 || message.readUInt16BE(4) !== 1) return undefined;
  let offset = 12;
  while (offset < message.length) {
    const length = message[offset]!;
    if (length === 0) {
      const end = offset + 5;
      return end <= message.length ? message.subarray(12, end) : undefined;
    }
    if (length > 63) return undefined; // no compression pointers in a question of a query
    offset += length + 1;
  }
  return undefined;
}

function sameHost(expected: string, actual: string): boolean {
  return expected === actual || actual === `::ffff:${expected}`;
}
