// Test-only: a minimal SPDY/3.1 client over a real TCP socket, built on our own frame encoder
// and its OWN zlib contexts (separate from the server's), plus an HTTP server wired to
// upgradeToSpdy. Used by the *.test.ts files beside it.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { FLAG_FIN, FrameDecoder, encodeData, encodeSynStream } from './frames.ts';
import type { Frame } from './frames.ts';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.ts';
import type { HeaderValues } from './header-compression.ts';
import type { SpdyConnection, SpdyConnectionOptions } from './connection.ts';
import { upgradeToSpdy } from './upgrade.ts';

export type ReceivedFrame = Frame & { headers?: HeaderValues };

export interface UpgradeResult {
  status: number;
  headers: Record<string, string>;
  body: string;
  client?: TestSpdyClient;
}

export interface UpgradeRequest {
  protocols?: string[] | undefined; // one X-Stream-Protocol-Version line each
  upgrade?: string;
  connection?: string;
  path?: string;
}

/** Performs the HTTP upgrade on a fresh connection to 127.0.0.1:port. */
export async function connectSpdy(port: number, req: UpgradeRequest = {}): Promise<UpgradeResult> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const lines = [
    `POST ${req.path ?? '/exec/ns/pod/c?command=sh&input=1&output=1'} HTTP/1.1`,
    'Host: 127.0.0.1',
    `Connection: ${req.connection ?? 'Upgrade'}`,
    `Upgrade: ${req.upgrade ?? 'SPDY/3.1'}`,
    ...(req.protocols ?? ['v4.channel.k8s.io']).map((p) => `X-Stream-Protocol-Version: ${p}`),
    'Content-Length: 0',
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);

  let buffered = Buffer.alloc(0);
  const headEnd = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const i = buffered.indexOf('\r\n\r\n');
      if (i >= 0) {
        socket.off('data', onData);
        socket.pause();
        resolve(i);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => reject(new Error('connection ended before the response head')));
  });
  const [statusLine, ...headerLines] = buffered.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(statusLine!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = buffered.subarray(headEnd + 4);
  if (status === 101) return { status, headers, body: '', client: new TestSpdyClient(socket, rest) };
  const chunks: Buffer[] = [rest];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.resume();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { status, headers, body: Buffer.concat(chunks).toString('utf8') };
}

/** The client half: sends frames, records every frame received (header blocks inflated in order). */
export class TestSpdyClient {
  readonly socket: net.Socket;
  readonly frames: ReceivedFrame[] = [];
  readonly deflater = new HeaderCompressor();
  private readonly inflater = new HeaderDecompressor();
  private readonly decoder = new FrameDecoder();
  private chain: Promise<void> = Promise.resolve();
  private listeners: (() => void)[] = [];
  ended = false;
  closed = false;
  decodeError: Error | undefined;

  constructor(socket: net.Socket, head: Buffer) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // Frames are handled on a promise chain (header blocks inflate asynchronously), so socket
    // events queue behind them to keep the order seen on the wire.
    socket.on('end', () => this.enqueue(() => this.notify(() => (this.ended = true))));
    socket.on('close', () => this.enqueue(() => this.notify(() => (this.closed = true))));
    socket.on('error', () => {});
    if (head.length) this.onData(head);
    socket.resume();
  }

  private onData(chunk: Buffer): void {
    this.decoder.push(chunk);
    try {
      for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
        const f = frame;
        this.enqueue(async () => {
          const received: ReceivedFrame = { ...f };
          if (f.type === 'SYN_REPLY' || f.type === 'HEADERS' || f.type === 'SYN_STREAM') {
            received.headers = await this.inflater.decompress(f.headerBlock);
          }
          this.notify(() => this.frames.push(received));
        });
      }
    } catch (err) {
      this.decodeError = err as Error;
    }
  }

  private enqueue(fn: () => unknown): void {
    this.chain = this.chain.then(async () => void (await fn())).catch((err: unknown) => {
      this.decodeError ??= err as Error;
    });
  }

  private notify(change: () => void): void {
    change();
    for (const l of [...this.listeners]) l();
  }

  write(frame: Buffer): boolean {
    return this.socket.write(frame);
  }

  async synStream(id: number, headers: Record<string, string>, flags = 0): Promise<void> {
    this.write(encodeSynStream(id, await this.deflater.compress(headers), { flags }));
  }

  data(id: number, data: Buffer | string, fin = false): boolean {
    return this.write(encodeData(id, Buffer.from(data), fin ? FLAG_FIN : 0));
  }

  /** Resolves with the first received frame (past or future) that matches. */
  waitFor(match: (f: ReceivedFrame) => boolean, what = 'frame', timeoutMs = 5000): Promise<ReceivedFrame> {
    return this.until(() => this.frames.find(match), what, timeoutMs);
  }

  /** Resolves when check() returns something other than undefined/false. */
  until<T>(check: () => T | undefined | false, what: string, timeoutMs = 5000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const listener = (): void => {
        const v = check();
        if (v === undefined || v === false) return;
        cleanup();
        resolve(v);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; received: ${this.frames.map(describe).join(', ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
      };
      this.listeners.push(listener);
      listener();
    });
  }

  /** All DATA received on a stream so far. */
  received(id: number): Buffer {
    return Buffer.concat(this.frames.filter((f) => f.type === 'DATA' && f.streamId === id).map((f) => (f as { data: Buffer }).data));
  }

  /** Waits for FIN on a stream and returns its data. */
  async readToEnd(id: number, timeoutMs = 5000): Promise<Buffer> {
    await this.waitFor((f) => f.type === 'DATA' && f.streamId === id && (f.flags & FLAG_FIN) !== 0, `FIN on stream ${id}`, timeoutMs);
    return this.received(id);
  }

  waitClosed(timeoutMs = 5000): Promise<true> {
    return this.until(() => this.closed, 'socket close', timeoutMs);
  }

  close(): void {
    this.deflater.close();
    this.inflater.close();
    this.socket.destroy();
  }
}

export function describe(f: ReceivedFrame): string {
  switch (f.type) {
    case 'DATA':
      return `DATA(${f.streamId},${f.data.length}${f.flags & FLAG_FIN ? ',FIN' : ''})`;
    case 'PING':
      return `PING(${f.id})`;
    case 'RST_STREAM':
      return `RST(${f.streamId},${f.status})`;
    case 'GOAWAY':
      return `GOAWAY(${f.lastGoodStreamId},${f.status})`;
    case 'SYN_REPLY':
      return `SYN_REPLY(${f.streamId})`;
    default:
      return f.type;
  }
}

export interface TestServer {
  port: number;
  connections: SpdyConnection[];
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1:0 whose 'upgrade' handler runs upgradeToSpdy. */
export async function startServer(
  onConnection: (conn: SpdyConnection, protocol: string) => void,
  options: Omit<SpdyConnectionOptions, 'head'> = {},
  protocols = ['v4.channel.k8s.io', 'v3.channel.k8s.io'],
): Promise<TestServer> {
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const connections: SpdyConnection[] = [];
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    const result = upgradeToSpdy(req, socket, head, protocols, options);
    if (!result) return;
    connections.push(result.connection);
    onConnection(result.connection, result.protocol);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
