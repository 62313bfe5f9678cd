// Client side of a SPDY/3.1 connection, as client-go speaks it to kube-apiserver (and, through
// its proxy, to a kubelet) for exec, attach and port-forward when WebSocket is not available:
// the HTTP upgrade (Upgrade: SPDY/3.1, X-Stream-Protocol-Version), then streams we open (odd
// ids, SYN_STREAM; each waits for its SYN_REPLY, as client-go's CreateStream does), DATA both
// ways with half-close (FIN), RST_STREAM, PINGs echoed, GOAWAY.
//
// Frames and header compression are the shared ones (frames.ts, header-compression.ts; the
// server side is src/kubelet-api/spdy/). No flow control, as there: Go's spdystream neither
// sends nor honours WINDOW_UPDATE; backpressure is the TCP connection's (a stream whose reader
// is behind pauses the socket until it reads).
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { ProtocolError, VkError } from '../../errors.ts';
import { FLAG_FIN, FrameDecoder, RstStatus, encodeData, encodeGoAway, encodePing, encodeRstStream, encodeSynStream, type Frame } from './frames.ts';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.ts';

export const SPDY_31 = 'SPDY/3.1';
/** DATA frames carry at most this much (as the server side), so one write cannot hold the socket. */
const MAX_DATA = 64 * 1024;
/** How long a new stream waits for its SYN_REPLY (client-go: 30 s). */
const REPLY_TIMEOUT_MS = 30_000;

/** The server answered the upgrade with something other than 101: its status and body. */
export class SpdyUpgradeRefusedError extends VkError {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string, what: string) {
    super('VK_PROTOCOL', `${what}: SPDY upgrade refused (${status}): ${body.trim().slice(0, 500)}`);
    this.status = status;
    this.body = body;
  }
}

export interface SpdyDialOptions {
  headers: Record<string, string>;
  /** X-Stream-Protocol-Version values, preferred first. */
  protocols: string[];
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  signal: AbortSignal;
  timeoutMs: number;
  /** For messages: what the connection is for. */
  what: string;
}

/** POSTs an upgrade to `url` and returns the SPDY connection with the protocol the server chose. */
export async function dialSpdy(url: URL, options: SpdyDialOptions): Promise<{ connection: SpdyClientConnection; protocol: string }> {
  options.signal.throwIfAborted();
  const headers = {
    ...options.headers,
    Connection: 'Upgrade',
    Upgrade: SPDY_31,
    'X-Stream-Protocol-Version': options.protocols,
    'Content-Length': '0',
  };
  return await new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const req = (secure ? https : http).request(url, {
      method: 'POST',
      headers,
      agent: false,
      signal: options.signal,
      timeout: options.timeoutMs,
      ...(secure && options.tls),
    });
    req.on('timeout', () => req.destroy(new VkError('VK_TIMEOUT', `${options.what}: no answer to the SPDY upgrade in ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('end', () => reject(new SpdyUpgradeRefusedError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), options.what)));
      res.on('error', reject);
    });
    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      const protocol = String(res.headers['x-stream-protocol-version'] ?? '');
      if (!options.protocols.includes(protocol)) {
        socket.destroy();
        reject(new ProtocolError(`${options.what}: the server chose stream protocol "${protocol}", not one of ${options.protocols.join(', ')}`));
        return;
      }
      socket.setTimeout(0);
      socket.setNoDelay(true);
      resolve({ connection: new SpdyClientConnection(socket, head), protocol });
    });
    req.end();
  });
}

/** A stream we opened: a Duplex (end() sends FIN); `replyHeaders` from the server's SYN_REPLY. */
export class SpdyClientStream extends Duplex {
  readonly id: number;
  replyHeaders: Record<string, string[]> = {};
  private readonly conn: SpdyClientConnection;
  private localDone = false;

  constructor(conn: SpdyClientConnection, id: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: 1 << 20 });
    this.id = id;
    this.conn = conn;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.conn.sendData(this.id, chunk, false, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.localDone = true;
    this.conn.sendData(this.id, Buffer.alloc(0), true, done);
  }

  override _read(): void {
    this.conn.resumeFor(this);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // Abandoned before both sides finished: tell the server.
    if (!this.localDone || !this.readableEnded) this.conn.reset(this.id);
    this.conn.forget(this.id);
    done(err);
  }
}

export class SpdyClientConnection extends EventEmitter {
  private readonly socket: Socket;
  private readonly decoder = new FrameDecoder();
  private readonly deflater = new HeaderCompressor();
  private readonly inflater = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyClientStream>();
  private readonly replies = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private readonly blocked = new Set<SpdyClientStream>();
  private nextId = 1;
  /** Frames are handled one at a time, in order (header blocks share one zlib context). */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(socket: Socket, head: Buffer) {
    super();
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new VkError('VK_PROTOCOL', 'SPDY connection closed')));
    if (head.length > 0) this.onData(head);
  }

  /** Opens a stream with these headers and waits for the server's SYN_REPLY. */
  async openStream(headers: Record<string, string>): Promise<SpdyClientStream> {
    if (this.closed) throw new VkError('VK_PROTOCOL', 'SPDY connection is closed');
    const block = await this.deflater.compress(headers);
    // Ids in the order the header blocks were compressed (compress() runs in call order).
    const id = this.nextId;
    this.nextId += 2;
    const stream = new SpdyClientStream(this, id);
    stream.on('error', () => {});
    this.streams.set(id, stream);
    const replied = new Promise<void>((resolve, reject) => this.replies.set(id, { resolve, reject }));
    this.socket.write(encodeSynStream(id, block));
    const timer = setTimeout(
      () => this.replies.get(id)?.reject(new VkError('VK_TIMEOUT', `SPDY stream ${id}: no SYN_REPLY in ${REPLY_TIMEOUT_MS} ms`)),
      REPLY_TIMEOUT_MS,
    );
    try {
      await replied;
    } finally {
      clearTimeout(timer);
      this.replies.delete(id);
    }
    return stream;
  }

  /** GOAWAY, then the socket ends; streams still open are cut. */
  close(): void {
    if (this.closed) return;
    if (!this.socket.destroyed) this.socket.end(encodeGoAway(0, 0));
    this.fail(null);
  }

  sendData(id: number, data: Buffer, fin: boolean, done: (err?: Error | null) => void): void {
    if (this.closed || this.socket.destroyed) return done(new VkError('VK_PROTOCOL', `SPDY stream ${id}: connection closed`));
    let ok = true;
    for (let offset = 0; offset < data.length || (fin && offset === 0); offset += MAX_DATA) {
      const last = offset + MAX_DATA >= data.length;
      ok = this.socket.write(encodeData(id, data.subarray(offset, offset + MAX_DATA), fin && last ? FLAG_FIN : 0));
      if (data.length === 0) break;
    }
    if (ok) done();
    else this.socket.once('drain', () => done());
  }

  reset(id: number): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(encodeRstStream(id, RstStatus.CANCEL));
  }

  forget(id: number): void {
    const stream = this.streams.get(id);
    this.streams.delete(id);
    if (stream) this.resumeFor(stream);
  }

  resumeFor(stream: SpdyClientStream): void {
    this.blocked.delete(stream);
    if (this.blocked.size === 0 && this.socket.isPaused()) this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk);
      for (let frame = this.decoder.next(); frame; frame = this.decoder.next()) {
        const f = frame;
        this.queue = this.queue.then(() => this.handle(f)).catch((err: unknown) => this.fail(err as Error));
      }
    } catch (err) {
      this.fail(err as Error);
    }
  }

  private async handle(frame: Frame): Promise<void> {
    if (this.closed) return;
    switch (frame.type) {
      case 'DATA': {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        if (frame.data.length > 0 && !stream.push(frame.data)) {
          this.blocked.add(stream);
          this.socket.pause();
        }
        if (frame.flags & FLAG_FIN) stream.push(null);
        return;
      }
      case 'SYN_REPLY': {
        const headers = await this.inflater.decompress(frame.headerBlock);
        const stream = this.streams.get(frame.streamId);
        if (stream) stream.replyHeaders = headers;
        this.replies.get(frame.streamId)?.resolve();
        if (stream && frame.flags & FLAG_FIN) stream.push(null);
        return;
      }
      case 'HEADERS':
        await this.inflater.decompress(frame.headerBlock);
        return;
      case 'SYN_STREAM':
        // Kubernetes servers never open streams; keep the zlib context in step and refuse it.
        await this.inflater.decompress(frame.headerBlock);
        this.socket.write(encodeRstStream(frame.streamId, RstStatus.REFUSED_STREAM));
        return;
      case 'RST_STREAM': {
        const err = new VkError('VK_PROTOCOL', `SPDY stream ${frame.streamId} reset by the server (status ${frame.status})`);
        this.replies.get(frame.streamId)?.reject(err);
        const stream = this.streams.get(frame.streamId);
        this.streams.delete(frame.streamId);
        if (!stream) return;
        if (frame.status === RstStatus.CANCEL) {
          stream.push(null);
          stream.destroy();
        } else {
          stream.destroy(err);
        }
        return;
      }
      case 'PING':
        // Server PINGs have even ids: echo them. Ours (odd) we do not send.
        if (frame.id % 2 === 0) this.socket.write(encodePing(frame.id));
        return;
      case 'GOAWAY':
        this.fail(null);
        return;
      default:
        // SETTINGS, WINDOW_UPDATE, unknown control frames: nothing to do (see the header comment).
        return;
    }
  }

  /** Ends everything: streams end (err null) or fail, waiting openers are rejected, the socket goes. */
  private fail(err: Error | null): void {
    if (this.closed) return;
    this.closed = true;
    const reason = err ?? new VkError('VK_PROTOCOL', 'SPDY connection closed');
    for (const waiter of this.replies.values()) waiter.reject(reason);
    for (const stream of this.streams.values()) {
      if (err) stream.destroy(err);
      else {
        stream.push(null);
        stream.destroy();
      }
    }
    this.streams.clear();
    this.deflater.close();
    this.inflater.close();
    if (!this.socket.destroyed) {
      if (err) this.socket.destroy();
      else this.socket.end();
    }
    this.emit('close');
  }
}
