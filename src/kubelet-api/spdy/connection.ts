// Server side of a SPDY/3.1 connection as kube-apiserver (moby/spdystream) speaks it to a kubelet:
// the client opens every stream; each stream is a Duplex with half-close semantics.
//
// Flow control: there is none. The Go peer never sends WINDOW_UPDATE and ignores ours, so we
// never wait for window updates. Backpressure instead works on the TCP connection:
// - outgoing: a stream's write callback runs only once the socket accepted the frame without
//   exceeding its high-water mark (else on the socket's 'drain');
// - incoming: when a stream's readable buffer is full (its consumer is not reading), the whole
//   connection stops reading the socket until that consumer reads again.
// The trade-off: one slow reader stalls every stream of the connection, PINGs included. Go's
// spdystream does the same (its frame workers block on an unread stream and its read loop
// blocks behind them). Kubernetes clients open all their streams before sending data, so
// opening streams cannot be stalled by a stream nobody reads yet; a generous per-stream buffer
// (streamHighWaterMark) absorbs a consumer that starts reading late.

import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type net from 'node:net';
import type tls from 'node:tls';
import { ProtocolError } from '../../errors.ts';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  FrameDecoder,
  GoAwayStatus,
  MAX_FRAME_LENGTH,
  RstStatus,
  SpdyProtocolError,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynReply,
} from '../../protocol/spdy/frames.ts';
import type { Frame, SynStreamFrame } from '../../protocol/spdy/frames.ts';
import { HeaderCompressor, HeaderDecompressor } from '../../protocol/spdy/header-compression.ts';
import type { HeaderValues } from '../../protocol/spdy/header-compression.ts';

export interface SpdyConnectionOptions {
  /** Send our own PINGs (even ids) this often; 0 or unset: never. Client PINGs are always echoed. */
  pingIntervalMs?: number;
  /** Close the connection after this long without any frame in either direction; 0 or unset: never. */
  idleTimeoutMs?: number;
  /** Largest incoming frame payload; larger is a protocol error. Default: the 24-bit maximum. */
  maxFrameSize?: number;
  /** Bytes already read past the HTTP upgrade request (the 'upgrade' event's head). */
  head?: Buffer;
  /** Per-stream readable buffer before the connection stops reading. Default 1 MiB. */
  streamHighWaterMark?: number;
}

/** One SPDY stream opened by the client. */
export interface SpdyStream extends Duplex {
  readonly id: number;
  /**
   * The SYN_STREAM headers: lower-cased names (streamtype, port, requestid, ...), first value
   * of each, as Go's http.Header.Get gives it.
   */
  readonly headers: Record<string, string>;
}

/** The peer reset a stream with a status other than CANCEL (VK_PROTOCOL; the connection carries on). */
export class SpdyStreamResetError extends ProtocolError {
  readonly streamId: number;
  /** The RST_STREAM status code (RstStatus). */
  readonly status: number;
  constructor(streamId: number, status: number) {
    super(`SPDY stream ${streamId} reset by peer with status ${status}`);
    this.streamId = streamId;
    this.status = status;
  }
}

/** Outgoing DATA frames carry at most this much, so one large write cannot monopolise the socket. */
export const MAX_OUTGOING_DATA = 64 * 1024;
const DEFAULT_STREAM_HIGH_WATER_MARK = 1 << 20;
/** After our FIN, how long to wait for the peer's before destroying the socket. */
const CLOSE_GRACE_MS = 2000;
const EMPTY = Buffer.alloc(0);

/** What a stream needs from its connection. */
interface StreamHost {
  sendData(id: number, data: Buffer, fin: boolean): boolean;
  waitDrain(cb: () => void): void;
  sendRst(id: number, status: number): void;
  streamWantsData(stream: SpdyStreamImpl): void;
  streamDone(stream: SpdyStreamImpl): void;
}

class SpdyStreamImpl extends Duplex implements SpdyStream {
  readonly id: number;
  readonly headers: Record<string, string>;
  private readonly host: StreamHost;
  replyState: 'none' | 'pending' | 'sent' = 'none';
  localFin = false;
  remoteFin = false;
  /** No RST may be sent any more: one was sent or received, or the connection is gone. */
  private rstDone = false;
  private rstAfterReply = false;
  /** A write or final held until SYN_REPLY is on the wire (the Go peer drops data before it). */
  private afterReply: (() => void) | null = null;

  constructor(host: StreamHost, id: number, headers: Record<string, string>, highWaterMark: number) {
    super({ readableHighWaterMark: highWaterMark, allowHalfOpen: true });
    this.host = host;
    this.id = id;
    this.headers = headers;
  }

  override _read(): void {
    this.host.streamWantsData(this);
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.replyState !== 'sent') {
      this.afterReply = () => this._write(chunk, encoding, cb);
      return;
    }
    if (chunk.length === 0 || this.localFin) {
      cb();
      return;
    }
    if (this.host.sendData(this.id, chunk, false)) cb();
    else this.host.waitDrain(() => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.replyState !== 'sent') {
      this.afterReply = () => this._final(cb);
      return;
    }
    if (!this.localFin && !this.rstDone) {
      this.localFin = true;
      this.host.sendData(this.id, EMPTY, true);
    }
    cb();
    this.host.streamDone(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.afterReply = null;
    // Like Go's Stream.Reset: RST_STREAM CANCEL unless our side already finished.
    if (!this.localFin && !this.rstDone) {
      this.rstDone = true;
      if (this.replyState === 'pending') this.rstAfterReply = true;
      else this.host.sendRst(this.id, RstStatus.CANCEL);
    }
    this.host.streamDone(this);
    cb(err);
  }

  // --- called by the connection ---

  onReplied(): void {
    this.replyState = 'sent';
    if (this.rstAfterReply) {
      this.rstAfterReply = false;
      this.host.sendRst(this.id, RstStatus.CANCEL);
      return;
    }
    const next = this.afterReply;
    this.afterReply = null;
    next?.();
  }

  /** False when the readable buffer is full: the connection must stop reading. */
  pushData(data: Buffer): boolean {
    if (this.destroyed || this.remoteFin) return true;
    return this.push(data);
  }

  finishRemote(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    if (!this.destroyed) this.push(null);
    this.host.streamDone(this);
  }

  peerReset(status: number): void {
    this.rstDone = true;
    this.destroy(status === RstStatus.CANCEL ? undefined : new SpdyStreamResetError(this.id, status));
  }

  refuse(): void {
    this.rstDone = true;
    this.host.sendRst(this.id, RstStatus.REFUSED_STREAM);
    this.destroy();
  }

  /** The connection is closing: RST unless our side finished (what Go's Reset does), then drop. */
  closeByConnection(): void {
    if (!this.localFin && !this.rstDone) this.host.sendRst(this.id, RstStatus.CANCEL);
    this.abort();
  }

  /** The connection is gone: no more frames; destroy without a stream error. */
  abort(): void {
    this.rstDone = true;
    this.afterReply = null;
    this.destroy();
  }
}

/**
 * A server-side SPDY/3.1 connection.
 *
 * Events:
 * - 'stream' (stream: SpdyStream): a client SYN_STREAM. SYN_REPLY is sent automatically once
 *   the listeners return, unless a listener destroyed the stream (then RST_STREAM CANCEL is sent,
 *   which is how Kubernetes rejects a stream). Writes made before the reply is on the wire are
 *   held, so data never precedes SYN_REPLY. With no 'stream' listener, streams are refused.
 * - 'error' (err): protocol error from the peer or socket error. Emitted only when someone
 *   listens, so bad input from the network can never crash the process; 'close' always follows.
 * - 'close': the socket is closed and every stream has been destroyed.
 * - 'goaway' (lastGoodStreamId, status), 'pong' (id), 'timeout': informational.
 *
 * Stream endings: the peer's FIN ends the readable side; end() sends an empty DATA frame with
 * FIN. The peer's RST_STREAM destroys the stream (with SpdyStreamResetError unless the status is
 * CANCEL). When the connection ends, remaining streams are destroyed without an error; the
 * cause, if any, is the connection's 'error'.
 */
export class SpdyConnection extends EventEmitter {
  private readonly socket: Duplex;
  private readonly decoder: FrameDecoder;
  private readonly inflater = new HeaderDecompressor();
  private readonly deflater = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStreamImpl>();
  /** Streams whose readable buffer is full; while any exist the socket is not read. */
  private readonly blocked = new Set<SpdyStreamImpl>();
  private drainWaiters: (() => void)[] = [];
  private readonly host: StreamHost;
  private readonly streamHighWaterMark: number;
  private lastStreamId = 0;
  /** SYN_REPLYs being compressed; close() waits for them so no accepted stream is left unanswered. */
  private pendingReplies = 0;
  private decompressing = false;
  private pumping = false;
  private pumpAgain = false;
  private paused = false;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private outputEnded = false;
  private inputEnded = false;
  private goAwayReceived = false;
  private goAwaySent = false;
  private closeEmitted = false;
  private nextPingId = 2;
  private pingTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(socket: net.Socket | tls.TLSSocket | Duplex, options: SpdyConnectionOptions = {}) {
    super();
    this.socket = socket;
    this.decoder = new FrameDecoder(options.maxFrameSize ?? MAX_FRAME_LENGTH);
    this.streamHighWaterMark = options.streamHighWaterMark ?? DEFAULT_STREAM_HIGH_WATER_MARK;
    this.host = {
      sendData: (id, data, fin) => this.sendData(id, data, fin),
      waitDrain: (cb) => this.waitDrain(cb),
      sendRst: (id, status) => void this.writeFrame(encodeRstStream(id, status)),
      streamWantsData: (stream) => this.unblock(stream),
      streamDone: (stream) => this.streamDone(stream),
    };
    // Small interactive frames (a keystroke, a resize) must not wait for Nagle.
    (socket as Partial<net.Socket>).setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.inputEnded = true;
      this.pump();
    });
    socket.on('error', (err: Error) => this.teardown(err));
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => this.releaseDrainWaiters());
    if (options.head?.length) this.decoder.push(options.head);
    if (options.pingIntervalMs && options.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.sendPing(), options.pingIntervalMs).unref();
    }
    if (options.idleTimeoutMs && options.idleTimeoutMs > 0) {
      this.idleTimer = setTimeout(() => this.onIdle(), options.idleTimeoutMs).unref();
    }
    // Let the caller attach listeners before buffered head bytes are processed.
    process.nextTick(() => {
      if (socket.destroyed) this.onSocketClose();
      else {
        socket.resume();
        this.pump();
      }
    });
  }

  /** True once the connection stopped processing (closed, failed or destroyed). */
  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Streams currently open (not yet fully closed or reset). */
  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Graceful close, as Kubernetes' connection.Close does it: pending SYN_REPLYs and data already
   * written to streams are flushed, every stream whose side is not finished gets RST_STREAM
   * CANCEL, then GOAWAY, then the socket is ended. New streams are ignored meanwhile.
   */
  close(): void {
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.stopTimers();
    // Writes waiting for 'drain' go out now; streams ended just before close() send their FIN
    // from _final, which runs on process.nextTick, i.e. before the setImmediate below.
    this.releaseDrainWaiters();
    setImmediate(() => this.finishClose());
  }

  /** Immediate close: no GOAWAY; streams destroyed; 'error' emitted if err is given. */
  destroy(err?: Error): void {
    this.teardown(err ?? null);
    this.outputEnded = true;
    this.socket.destroy();
  }

  // --- input ---

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return; // draining towards close
    this.decoder.push(chunk);
    this.pump();
  }

  /** Decodes and handles frames until input runs out or something must wait. Re-entrant safe. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        while (this.state !== 'closed' && !this.decompressing && this.blocked.size === 0) {
          const frame = this.decoder.next();
          if (!frame) break;
          this.touch();
          this.handleFrame(frame);
        }
      } while (this.pumpAgain && this.state !== 'closed');
    } catch (err) {
      this.pumping = false;
      this.fail(err);
      return;
    }
    this.pumping = false;
    if (this.state === 'closed') return;
    this.updateFlow();
    if (this.inputEnded && !this.decompressing && this.blocked.size === 0) {
      // The peer ended its side (a Go peer only does that when it is done with the connection).
      this.teardown(null);
      this.endOutput();
    }
  }

  private updateFlow(): void {
    const stall = this.decompressing || this.blocked.size > 0;
    if (stall && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!stall && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private handleFrame(frame: Frame): void {
    switch (frame.type) {
      case 'DATA': {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return; // unknown or finished stream: ignored, as Go does
        if (frame.data.length > 0 && !stream.pushData(frame.data) && !stream.destroyed) this.blocked.add(stream);
        if (frame.flags & FLAG_FIN) stream.finishRemote();
        return;
      }
      case 'SYN_STREAM':
      case 'SYN_REPLY':
      case 'HEADERS':
        // Every header block goes through the inflater, even for frames we then ignore,
        // or the shared zlib context would fall out of step with the peer's.
        this.decompressing = true;
        this.inflater.decompress(frame.headerBlock).then(
          (headers) => {
            this.decompressing = false;
            if (this.state === 'closed') return;
            this.guard(() => {
              if (frame.type === 'SYN_STREAM') this.onSynStream(frame, headers);
              else if (frame.type === 'HEADERS' && frame.flags & FLAG_FIN) this.streams.get(frame.streamId)?.finishRemote();
              // SYN_REPLY: we open no streams, so there is nothing it can answer.
            });
            this.pump();
          },
          (err: unknown) => {
            this.decompressing = false;
            this.fail(err);
          },
        );
        return;
      case 'RST_STREAM':
        this.streams.get(frame.streamId)?.peerReset(frame.status);
        return;
      case 'PING':
        // Odd ids are the client's: echo them. Even ids answer our own pings.
        if (frame.id % 2 === 1) this.writeFrame(encodePing(frame.id));
        else this.emit('pong', frame.id);
        return;
      case 'GOAWAY':
        this.goAwayReceived = true;
        this.emit('goaway', frame.lastGoodStreamId, frame.status);
        this.maybeFinishAfterGoAway();
        return;
      case 'SETTINGS':
      case 'WINDOW_UPDATE':
      case 'UNKNOWN':
        return; // no flow control (see top of file); unknown control types are ignored per spec
    }
  }

  private onSynStream(frame: SynStreamFrame, values: HeaderValues): void {
    const id = frame.streamId;
    // After a GOAWAY in either direction new streams are dropped silently, as in Go.
    if (this.goAwayReceived || this.goAwaySent || this.state !== 'open') return;
    if (id % 2 === 0 || id <= this.lastStreamId) {
      this.writeFrame(encodeRstStream(id, RstStatus.PROTOCOL_ERROR));
      return;
    }
    this.lastStreamId = id;
    const headers = Object.create(null) as Record<string, string>;
    for (const [name, list] of Object.entries(values)) headers[name] = list[0] ?? '';
    const stream = new SpdyStreamImpl(this.host, id, headers, this.streamHighWaterMark);
    this.streams.set(id, stream);
    if (frame.flags & FLAG_UNIDIRECTIONAL) {
      stream.localFin = true; // we may not send on it
      stream.end();
    }
    if (frame.flags & FLAG_FIN) stream.finishRemote();
    if (this.listenerCount('stream') === 0) {
      stream.refuse();
      return;
    }
    this.emit('stream', stream);
    // Reply even if a listener called close(): close() waits for pending replies, so a
    // client blocked in CreateStream still gets its answer before RST/GOAWAY.
    if (stream.destroyed || this.closed) return;
    stream.replyState = 'pending';
    this.pendingReplies++;
    this.deflater.compress({}).then(
      (block) => {
        this.pendingReplies--;
        if (this.state === 'closed') return;
        this.writeFrame(encodeSynReply(id, block));
        this.guard(() => stream.onReplied());
        if (this.state === 'closing' && this.pendingReplies === 0) setImmediate(() => this.finishClose());
      },
      (err: unknown) => {
        this.pendingReplies--;
        this.fail(err);
      },
    );
  }

  // --- output ---

  private writeFrame(frame: Buffer): boolean {
    // Dropped once the socket cannot take it: writing after end would only raise a socket error.
    if (this.outputEnded || !this.socket.writable) return true;
    this.touch();
    return this.socket.write(frame);
  }

  private sendData(id: number, data: Buffer, fin: boolean): boolean {
    if (data.length <= MAX_OUTGOING_DATA) return this.writeFrame(encodeData(id, data, fin ? FLAG_FIN : 0));
    let ok = true;
    this.socket.cork();
    for (let offset = 0; offset < data.length; offset += MAX_OUTGOING_DATA) {
      const end = Math.min(offset + MAX_OUTGOING_DATA, data.length);
      ok = this.writeFrame(encodeData(id, data.subarray(offset, end), fin && end === data.length ? FLAG_FIN : 0));
    }
    this.socket.uncork();
    return ok;
  }

  private waitDrain(cb: () => void): void {
    if (this.state !== 'open' || this.outputEnded) cb();
    else this.drainWaiters.push(cb);
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) this.guard(cb);
  }

  private sendPing(): void {
    if (this.state !== 'open') return;
    const id = this.nextPingId;
    this.nextPingId = id >= 0x7ffffffe ? 2 : id + 2;
    this.writeFrame(encodePing(id));
  }

  // --- stream bookkeeping ---

  private unblock(stream: SpdyStreamImpl): void {
    if (this.blocked.delete(stream) && this.blocked.size === 0) this.pump();
  }

  private streamDone(stream: SpdyStreamImpl): void {
    const finished = stream.destroyed || (stream.localFin && stream.remoteFin);
    if (!finished) return;
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.unblock(stream);
    this.maybeFinishAfterGoAway();
  }

  private maybeFinishAfterGoAway(): void {
    // Go closes the connection once the peer said GOAWAY and no stream is left.
    if (this.goAwayReceived && this.streams.size === 0 && this.state === 'open') {
      this.teardown(null);
      this.endOutput();
    }
  }

  // --- shutdown ---

  private finishClose(): void {
    if (this.state !== 'closing' || this.pendingReplies > 0) return;
    for (const stream of [...this.streams.values()]) stream.closeByConnection();
    this.goAwaySent = true;
    this.writeFrame(encodeGoAway(this.lastStreamId, GoAwayStatus.OK));
    this.teardown(null);
    this.endOutput();
  }

  /** Protocol error (or a bug in a listener): GOAWAY with a status, then close. Never throws. */
  private fail(err: unknown): void {
    if (this.state === 'closed') return;
    const error = err instanceof Error ? err : new Error(String(err));
    if (!this.goAwaySent) {
      this.goAwaySent = true;
      const status = error instanceof SpdyProtocolError ? GoAwayStatus.PROTOCOL_ERROR : GoAwayStatus.INTERNAL_ERROR;
      this.writeFrame(encodeGoAway(this.lastStreamId, status));
    }
    this.teardown(error);
    this.endOutput();
  }

  /** Runs connection work triggered outside pump(); failures close the connection instead of escaping. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(err);
    }
  }

  private endOutput(): void {
    if (this.outputEnded) return;
    this.outputEnded = true;
    if (this.socket.destroyed) return;
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Stops all stream and frame processing; idempotent. */
  private teardown(err: Error | null): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.stopTimers();
    this.inflater.close();
    this.deflater.close();
    const streams = [...this.streams.values()];
    this.streams.clear();
    this.blocked.clear();
    this.releaseDrainWaiters();
    for (const stream of streams) stream.abort();
    // Keep reading (and discarding) so the peer's FIN arrives and the socket can close.
    this.paused = false;
    this.socket.resume();
    if (err && this.listenerCount('error') > 0) this.emit('error', err);
  }

  private onSocketClose(): void {
    this.teardown(null);
    clearTimeout(this.closeTimer);
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.idleTimer);
    this.pingTimer = undefined;
    this.idleTimer = undefined;
  }

  private touch(): void {
    this.idleTimer?.refresh();
  }

  private onIdle(): void {
    this.emit('timeout');
    this.close();
  }
}
