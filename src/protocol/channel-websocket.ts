// The Kubernetes WebSocket channel protocols (channel.k8s.io, base64.channel.k8s.io, v4.*, v5.*):
// every message starts with a channel byte ('0'+n in base64 mode); v5 adds a close signal
// [255, channel]. Each channel is exposed as a Duplex. Backpressure: a channel whose reader
// does not keep up pauses the socket; writes follow the socket's buffered amount.
import { Duplex, type Writable } from 'node:stream';
import type { WebSocket } from 'ws';

const CLOSE_CHANNEL = 255;
/** Pause reading from the socket while a channel holds this much unread data. */
const READ_HIGH_WATER_MARK = 1 << 20;
/** Wait for the socket to drain once this much is queued for sending. */
const WRITE_HIGH_WATER_MARK = 1 << 20;

export interface ChannelProtocol {
  base64: boolean;
  /** v5: the peer may half-close a channel with [255, n]; we send it when we end a channel. */
  closeSignal: boolean;
}

export function channelProtocol(name: string): ChannelProtocol {
  return { base64: name.includes('base64.'), closeSignal: name.startsWith('v5.') };
}

export class WebSocketChannel extends Duplex {
  readonly index: number;
  private readonly conn: ChannelConnection;

  constructor(conn: ChannelConnection, index: number) {
    super({ readableHighWaterMark: READ_HIGH_WATER_MARK, allowHalfOpen: true });
    this.conn = conn;
    this.index = index;
  }

  override _read(): void {
    this.conn.resumeIfDrained();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.conn.send(this.index, chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.conn.sendClose(this.index);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    callback(error);
  }
}

export class ChannelConnection {
  readonly channels: WebSocketChannel[];
  private readonly ws: WebSocket;
  private readonly protocol: ChannelProtocol;
  private paused = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly idleTimeoutMs: number;

  constructor(ws: WebSocket, protocol: ChannelProtocol, channelCount: number, idleTimeoutMs: number) {
    this.ws = ws;
    this.protocol = protocol;
    this.idleTimeoutMs = idleTimeoutMs;
    this.channels = Array.from({ length: channelCount }, (_, i) => new WebSocketChannel(this, i));
    ws.on('message', (data: Buffer) => this.receive(data));
    ws.on('close', () => this.closed());
    ws.on('error', () => this.closed());
    this.touch();
  }

  /** Resets the idle timer; the kubelet closes streams idle for its stream idle timeout. */
  private touch(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.ws.close(1000, 'idle timeout'), this.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private receive(data: Buffer): void {
    this.touch();
    if (data.length === 0) return;
    let channel = data[0]!;
    if (this.protocol.base64) channel -= 0x30;
    if (this.protocol.closeSignal && data[0] === CLOSE_CHANNEL) {
      const target = this.channels[data[1] ?? -1];
      target?.push(null);
      return;
    }
    const target = this.channels[channel];
    if (!target) return; // unknown channels are ignored, as the kubelet's wsstream does
    let payload = data.subarray(1);
    if (this.protocol.base64) payload = Buffer.from(payload.toString('latin1'), 'base64');
    if (payload.length === 0) return;
    if (!target.push(payload) && !this.paused) {
      this.paused = true;
      this.ws.pause();
    }
  }

  resumeIfDrained(): void {
    if (!this.paused) return;
    if (this.channels.every((c) => c.readableLength < READ_HIGH_WATER_MARK || c.destroyed)) {
      this.paused = false;
      this.ws.resume();
    }
  }

  send(channel: number, data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return callback(new Error('websocket closed'));
    this.touch();
    const frame = this.protocol.base64
      ? Buffer.concat([Buffer.from([0x30 + channel]), Buffer.from(data.toString('base64'), 'latin1')])
      : Buffer.concat([Buffer.from([channel]), data]);
    this.ws.send(frame, { binary: !this.protocol.base64 }, (err) => {
      if (err) return callback(err);
      if (this.ws.bufferedAmount < WRITE_HIGH_WATER_MARK) return callback();
      // ws has no drain event: poll the buffered amount briefly instead of queueing without bound.
      const wait = setInterval(() => {
        if (this.ws.bufferedAmount < WRITE_HIGH_WATER_MARK || this.ws.readyState !== this.ws.OPEN) {
          clearInterval(wait);
          callback();
        }
      }, 5);
    });
  }

  /** An empty message on a channel: the kubelet's way to tell the client a channel is open. */
  open(channel: number): void {
    if (this.ws.readyState === this.ws.OPEN)
      this.ws.send(this.protocol.base64 ? Buffer.from([0x30 + channel]) : Buffer.from([channel]), { binary: !this.protocol.base64 });
  }

  sendClose(channel: number): void {
    if (this.protocol.closeSignal && this.ws.readyState === this.ws.OPEN) this.ws.send(Buffer.from([CLOSE_CHANNEL, channel]), { binary: true });
  }

  close(): void {
    clearTimeout(this.idleTimer);
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000);
  }

  private closed(): void {
    clearTimeout(this.idleTimer);
    for (const channel of this.channels) {
      channel.push(null);
      channel.destroy();
    }
  }
}

/**
 * Copies what arrives on `channel` into `out` as it arrives (a client's side of a session). When
 * `out` is full the socket is paused, not the channel, so nothing sits in the channel's buffer when
 * the session closes.
 */
export function forwardChannel(channel: WebSocketChannel, out: Writable, ws: WebSocket): void {
  channel.on('data', (chunk: Buffer) => {
    if (out.destroyed || out.writableEnded) return;
    if (!out.write(chunk) && !ws.isPaused) {
      ws.pause();
      out.once('drain', () => ws.resume());
      out.once('close', () => ws.resume());
    }
  });
}
