// Fuzzing the kubelet API port (fuzz/kubelet-api-server.ts, in a child process): malformed
// HTTP, oversized headers, garbage SPDY and WebSocket frames after an upgrade to exec, attach
// and port-forward, slowloris, and many idle connections. After every case the server process
// must still be alive and answer a well-formed GET /healthz; its RSS is sampled throughout.
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import fc from 'fast-check';
import {
  encodeControl,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynStream,
  encodeWindowUpdate,
} from '../src/protocol/spdy/frames.ts';
import { HeaderCompressor } from '../src/protocol/spdy/header-compression.ts';
import { TargetProcess } from './target-process.ts';
import { checkProperty, type PropertyResult } from './property.ts';

export interface KubeletApiFuzzOptions {
  runs: number;
  seed: number;
  idleConnections: number;
  slowClients: number;
  slowSeconds: number;
}

export interface KubeletApiFuzzResult {
  target: 'kubelet-api';
  properties: PropertyResult[];
  crashed: boolean;
  exit?: string;
  idle: { opened: number; failedToOpen: number; healthzWhileOpenMs: number | undefined };
  /** The server's RSS after each of two idle-connection rounds: memory the first round left is reused by the second, not added to. */
  idleRoundsRssMiB: number[];
  slowloris: { clients: number; seconds: number; healthzServed: number; healthzFailed: number; slowestHealthzMs: number };
  rssMiB: { start: number; peak: number; end: number };
}

const SERVER = path.join(import.meta.dirname, 'kubelet-api-server.ts');
const CASE_WAIT_MS = 150;

class Target extends TargetProcess {
  static async start(): Promise<Target> {
    const { child, port } = await TargetProcess.spawn(SERVER);
    return new Target(child, port);
  }

  /** A well-formed client: GET /healthz answers 200 within 5 s. Throws otherwise. */
  async healthz(): Promise<number> {
    const started = performance.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: this.port, path: '/healthz', rejectUnauthorized: false, agent: false, timeout: 5_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('GET /healthz: no answer within 5 s')));
      req.on('error', reject);
    });
    if (status !== 200) throw new Error(`GET /healthz answered ${status}`);
    return performance.now() - started;
  }

  /** Alive and serving, or throws naming which. */
  async check(): Promise<void> {
    if (!this.alive) throw new Error(`the kubelet API process died: ${this.exit}`);
    await this.healthz();
  }

  connect(): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: this.port, rejectUnauthorized: false }, () => resolve(socket));
      socket.once('error', reject);
    });
  }
}

/** Sends `chunks` on a fresh TLS connection, waits a little for the answer or a close, then drops it. */
async function exchange(target: Target, chunks: Buffer[], waitMs = CASE_WAIT_MS): Promise<Buffer> {
  const socket = await target.connect();
  socket.on('error', () => {});
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk);
  await Promise.race([closed, sleep(waitMs)]);
  socket.destroy();
  return Buffer.concat(received);
}

/** Upgrades a fresh connection; resolves with the socket once the 101 head is read, or undefined when refused. */
async function upgrade(target: Target, head: string): Promise<tls.TLSSocket | string> {
  const socket = await target.connect();
  socket.on('error', () => {});
  socket.write(head);
  const answer = await new Promise<string>((resolve) => {
    let buffered = '';
    const onData = (c: Buffer) => {
      buffered += c.toString('latin1');
      if (buffered.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(buffered);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(buffered));
  });
  if (!answer.startsWith('HTTP/1.1 101')) {
    socket.destroy();
    return answer;
  }
  return socket;
}

async function garbageAfterUpgrade(target: Target, head: string, chunks: Buffer[]): Promise<void> {
  const socket = await upgrade(target, head);
  if (typeof socket === 'string') throw new Error(`the upgrade was refused: ${head.split('\r\n')[0]}: ${JSON.stringify(socket.slice(0, 300))}`);
  socket.resume();
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const chunk of chunks) if (!socket.destroyed) socket.write(chunk);
  await Promise.race([closed, sleep(CASE_WAIT_MS)]);
  socket.destroy();
}

// --- generators ---

const token = fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/);
const anyText = fc.string({ unit: 'binary', maxLength: 200 });

/** A request built from parts that are each well-formed or not, or raw bytes. */
const malformedRequest = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((b) => [Buffer.from(b)]),
  fc
    .record({
      method: fc.oneof(fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'CONNECT', 'OPTIONS', 'TRACE'), token, anyText),
      target: fc.oneof(
        fc.constantFrom(
          '/healthz',
          '/pods',
          '/exec/ns/web/app?command=ls',
          '/containerLogs/ns/web/app?tailLines=-1&follow=x',
          '/stats/summary',
          '*',
          '/%',
          '/%zz/%ff',
        ),
        fc.webPath(),
        anyText,
      ),
      version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', 'http/1.1', ''),
      headers: fc.array(
        fc.tuple(fc.oneof(token, anyText), fc.oneof(anyText, fc.constantFrom('chunked', '-1', '99999999999999999999', 'Upgrade', 'SPDY/3.1', 'websocket'))),
        { maxLength: 12 },
      ),
      eol: fc.constantFrom('\r\n', '\n', '\r'),
      body: fc.oneof(fc.constant(''), anyText, fc.constantFrom('0\r\n\r\n', 'zz\r\n', 'ffffffffffffffff\r\nx')),
      split: fc.integer({ min: 0, max: 64 }),
    })
    .map((r) => {
      const text = `${r.method} ${r.target} ${r.version}${r.eol}${r.headers.map(([k, v]) => `${k}: ${v}${r.eol}`).join('')}${r.eol}${r.body}`;
      const bytes = Buffer.from(text, 'latin1');
      return r.split > 0 && r.split < bytes.length ? [bytes.subarray(0, r.split), bytes.subarray(r.split)] : [bytes];
    }),
);

const oversizedHeaders = fc
  .record({ kind: fc.constantFrom('one-value', 'many-headers', 'request-line'), bytes: fc.integer({ min: 8 << 10, max: 2 << 20 }) })
  .map(({ kind, bytes }) => {
    if (kind === 'request-line') return [Buffer.from(`GET /healthz?${'a'.repeat(bytes)} HTTP/1.1\r\nHost: x\r\n\r\n`)];
    if (kind === 'one-value') return [Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(bytes)}\r\n\r\n`)];
    const lines = Array.from({ length: Math.ceil(bytes / 16) }, (_, i) => `X-${i}: v\r\n`).join('');
    return [Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\n${lines}\r\n`)];
  });

const streamId = fc.oneof(fc.constantFrom(0, 1, 2, 3, 5, 0x7fffffff), fc.integer({ min: 0, max: 0x7fffffff }));
/** Our encoders refuse stream id 0; the fuzz sends it anyway. */
function withStreamId(frame: Buffer, offset: number, id: number): Buffer {
  frame.writeUInt32BE(id & 0x7fffffff, offset);
  return frame;
}
/** A real compressed header block (streamtype: data, a first block on the connection's zlib context). */
const VALID_HEADER_BLOCK = await new HeaderCompressor().compress({ streamtype: 'stdin' });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));

/** SPDY/3.1 frames, each well-formed on the outside with random contents, or raw bytes. */
const spdyFrame = fc.oneof(
  fc.tuple(streamId, bytes(512), fc.integer({ min: 0, max: 255 })).map(([id, data, flags]) => withStreamId(encodeData(1, data, flags), 0, id)),
  fc.tuple(streamId, bytes(512), fc.integer({ min: 0, max: 255 })).map(([id, block, flags]) => withStreamId(encodeSynStream(1, block, { flags }), 8, id)),
  fc.tuple(streamId, fc.integer({ min: 0, max: 255 })).map(([id, flags]) => withStreamId(encodeSynStream(1, VALID_HEADER_BLOCK, { flags }), 8, id)),
  fc
    .tuple(fc.integer({ min: 0, max: 0x7fff }), fc.integer({ min: 0, max: 255 }), bytes(256))
    .map(([type, flags, payload]) => encodeControl(type, flags, payload)),
  fc.tuple(streamId, u32).map(([id, status]) => withStreamId(encodeRstStream(1, status), 8, id)),
  fc
    .array(fc.record({ flags: fc.integer({ min: 0, max: 255 }), id: fc.integer({ min: 0, max: 0xffffff }), value: u32 }), { maxLength: 8 })
    .map((e) => encodeSettings(e)),
  u32.map((id) => encodePing(id)),
  fc.tuple(streamId, u32).map(([id, status]) => encodeGoAway(id, status)),
  fc.tuple(streamId, u32).map(([id, delta]) => encodeWindowUpdate(id, delta)),
  bytes(256),
);

/** WebSocket frames with random FIN/RSV/opcode/mask and length encodings (including lengths that lie). */
const wsFrame = fc
  .record({
    fin: fc.boolean(),
    rsv: fc.integer({ min: 0, max: 7 }),
    opcode: fc.oneof(fc.constantFrom(0, 1, 2, 8, 9, 10), fc.integer({ min: 0, max: 15 })),
    masked: fc.boolean(),
    lengthForm: fc.constantFrom('exact', 'exact', '16', '64', 'huge'),
    payload: bytes(300),
    channel: fc.option(fc.integer({ min: 0, max: 255 })),
  })
  .map((f) => {
    const payload = f.channel === null ? f.payload : Buffer.concat([Buffer.from([f.channel]), f.payload]);
    let len: Buffer;
    if (f.lengthForm === 'exact' && payload.length < 126) len = Buffer.from([payload.length]);
    else if (f.lengthForm === '16' || (f.lengthForm === 'exact' && payload.length < 65536))
      len = Buffer.from([126, payload.length >> 8, payload.length & 0xff]);
    else {
      len = Buffer.alloc(9);
      len[0] = 127;
      len.writeBigUInt64BE(f.lengthForm === 'huge' ? 0x7fffffffffffffffn : BigInt(payload.length), 1);
    }
    len[0] = len[0]! | (f.masked ? 0x80 : 0);
    const first = Buffer.from([(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode]);
    const key = Buffer.from([1, 2, 3, 4]);
    const body = f.masked ? Buffer.from(payload.map((b, i) => b ^ key[i % 4]!)) : payload;
    return Buffer.concat([first, len, ...(f.masked ? [key] : []), body]);
  });

const STREAM_PATHS = {
  exec: '/exec/ns/web/app?command=sh&input=1&output=1&error=1',
  attach: '/attach/ns/web/app?input=1&output=1',
  portForward: '/portForward/ns/web?port=80',
};
const streamPath = fc.constantFrom(...(Object.keys(STREAM_PATHS) as (keyof typeof STREAM_PATHS)[]));

function spdyUpgradeHead(route: keyof typeof STREAM_PATHS, protocol: string): string {
  return [
    `POST ${STREAM_PATHS[route]} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    `X-Stream-Protocol-Version: ${protocol}`,
    '',
    '',
  ].join('\r\n');
}

function wsUpgradeHead(route: keyof typeof STREAM_PATHS, protocol: string): string {
  return [
    `GET ${STREAM_PATHS[route]} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}`,
    `Sec-WebSocket-Protocol: ${protocol}`,
    '',
    '',
  ].join('\r\n');
}

// --- the run ---

/** `count` slow clients each send a request head a byte at a time while GET /healthz keeps being asked. */
async function slowloris(target: Target, count: number, seconds: number): Promise<KubeletApiFuzzResult['slowloris']> {
  const head = Buffer.from('GET /pods HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + 'z'.repeat(4096) + '\r\n\r\n');
  const stopAt = performance.now() + seconds * 1000;
  const sockets = await Promise.all(Array.from({ length: count }, () => target.connect().catch(() => undefined)));
  const drip = sockets.map(async (socket) => {
    if (!socket) return;
    socket.on('error', () => {});
    for (let i = 0; i < head.length && performance.now() < stopAt && !socket.destroyed; i++) {
      socket.write(head.subarray(i, i + 1));
      await sleep(200);
    }
    socket.destroy();
  });
  const result = { clients: count, seconds, healthzServed: 0, healthzFailed: 0, slowestHealthzMs: 0 };
  while (performance.now() < stopAt) {
    try {
      result.slowestHealthzMs = Math.max(result.slowestHealthzMs, await target.healthz());
      result.healthzServed++;
    } catch {
      result.healthzFailed++;
    }
    await sleep(250);
  }
  await Promise.all(drip);
  result.slowestHealthzMs = Math.round(result.slowestHealthzMs);
  return result;
}

/** Opens `count` TLS connections (handshake done, no request) in batches, asks /healthz while all are open, closes them. */
async function idleConnections(target: Target, count: number): Promise<KubeletApiFuzzResult['idle']> {
  const open: tls.TLSSocket[] = [];
  let failedToOpen = 0;
  for (let i = 0; i < count; i += 200) {
    const batch = await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => target.connect().catch(() => undefined)));
    for (const s of batch) {
      if (s) {
        s.on('error', () => {});
        open.push(s);
      } else failedToOpen++;
    }
  }
  let healthzWhileOpenMs: number | undefined;
  try {
    healthzWhileOpenMs = Math.round(await target.healthz());
  } catch {
    healthzWhileOpenMs = undefined;
  }
  const opened = open.filter((s) => !s.destroyed).length;
  for (const s of open) s.destroy();
  return { opened, failedToOpen, healthzWhileOpenMs };
}

export async function fuzzKubeletApi(options: KubeletApiFuzzOptions): Promise<KubeletApiFuzzResult> {
  const target = await Target.start();
  const start = target.rssMiB();
  const { runs, seed } = options;
  const properties: PropertyResult[] = [];
  try {
    await target.check();
    const prop = async <T>(name: string, arb: fc.Arbitrary<T>, send: (input: T) => Promise<unknown>, numRuns = runs) => {
      properties.push(
        await checkProperty(
          name,
          arb,
          async (input) => {
            await send(input);
            await target.check();
          },
          { numRuns, seed },
        ),
      );
    };
    await prop('malformed HTTP requests', malformedRequest, (chunks) => exchange(target, chunks));
    await prop('oversized headers (8 KiB to 2 MiB)', oversizedHeaders, (chunks) => exchange(target, chunks, 500), Math.max(5, Math.ceil(runs / 10)));
    await prop('raw bytes before TLS', bytes(2048), async (data) => {
      const socket = net.connect(target.port, '127.0.0.1');
      socket.on('error', () => {});
      socket.end(data);
      await Promise.race([new Promise((r) => socket.once('close', r)), sleep(CASE_WAIT_MS)]);
      socket.destroy();
    });
    await prop(
      'garbage SPDY frames after an upgrade (exec, attach, port-forward)',
      fc.record({
        route: streamPath,
        protocol: fc.constantFrom('v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'),
        frames: fc.array(spdyFrame, { minLength: 1, maxLength: 12 }),
      }),
      async ({ route, protocol, frames }) =>
        garbageAfterUpgrade(target, spdyUpgradeHead(route, route === 'portForward' ? 'portforward.k8s.io' : protocol), frames),
    );
    await prop(
      'garbage WebSocket frames after an upgrade (exec, attach, port-forward)',
      fc.record({
        route: streamPath,
        protocol: fc.constantFrom('v5.channel.k8s.io', 'v4.channel.k8s.io', 'base64.channel.k8s.io', 'channel.k8s.io'),
        frames: fc.array(wsFrame, { minLength: 1, maxLength: 12 }),
      }),
      async ({ route, protocol, frames }) =>
        garbageAfterUpgrade(target, wsUpgradeHead(route, route === 'portForward' ? 'v4.channel.k8s.io' : protocol), frames),
    );
    const slow = await slowloris(target, options.slowClients, options.slowSeconds);
    const idle = await idleConnections(target, options.idleConnections);
    await sleep(500);
    const idleRoundsRssMiB = [Math.round(target.rssMiB())];
    const second = await idleConnections(target, options.idleConnections);
    // The figures below are the worse of the two rounds.
    idle.opened = Math.min(idle.opened, second.opened);
    idle.failedToOpen += second.failedToOpen;
    idle.healthzWhileOpenMs =
      idle.healthzWhileOpenMs === undefined || second.healthzWhileOpenMs === undefined
        ? undefined
        : Math.max(idle.healthzWhileOpenMs, second.healthzWhileOpenMs);
    await sleep(500);
    idleRoundsRssMiB.push(Math.round(target.rssMiB()));
    if (target.alive) await target.healthz().catch(() => undefined);
    return {
      target: 'kubelet-api',
      properties,
      crashed: !target.alive,
      ...(target.exit !== undefined && { exit: target.exit }),
      idle,
      idleRoundsRssMiB,
      slowloris: slow,
      rssMiB: { start: Math.round(start), peak: Math.round(target.peakRssMiB), end: Math.round(target.rssMiB()) },
    };
  } finally {
    await target.stop();
  }
}
