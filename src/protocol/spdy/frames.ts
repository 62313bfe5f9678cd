// SPDY/3.1 framing: encode and decode the 8-byte-header frames (draft 3.1, section 2.2).
//   control: |1|version:15|type:16|flags:8|length:24|payload
//   data:    |0|stream-id:31     |flags:8|length:24|payload
// Header blocks stay compressed here; header-compression.ts owns the zlib contexts.
import { ProtocolError } from '../../errors.ts';

const SPDY_VERSION = 3;
/** Largest payload a 24-bit length can describe. */
export const MAX_FRAME_LENGTH = 0xffffff;
const MAX_STREAM_ID = 0x7fffffff;
const FRAME_HEADER_LENGTH = 8;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  INVALID_CREDENTIALS: 10,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** The peer broke the SPDY protocol (VK_PROTOCOL); the connection cannot continue. */
export class SpdyProtocolError extends ProtocolError {}

export interface DataFrame {
  type: 'DATA';
  streamId: number;
  flags: number;
  data: Buffer;
}
export interface SynStreamFrame {
  type: 'SYN_STREAM';
  streamId: number;
  associatedStreamId: number;
  priority: number;
  slot: number;
  flags: number;
  headerBlock: Buffer;
}
export interface SynReplyFrame {
  type: 'SYN_REPLY';
  streamId: number;
  flags: number;
  headerBlock: Buffer;
}
export interface HeadersFrame {
  type: 'HEADERS';
  streamId: number;
  flags: number;
  headerBlock: Buffer;
}
export interface RstStreamFrame {
  type: 'RST_STREAM';
  streamId: number;
  status: number;
}
export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}
export interface SettingsFrame {
  type: 'SETTINGS';
  flags: number;
  entries: SettingsEntry[];
}
export interface PingFrame {
  type: 'PING';
  id: number;
}
export interface GoAwayFrame {
  type: 'GOAWAY';
  lastGoodStreamId: number;
  status: number;
}
export interface WindowUpdateFrame {
  type: 'WINDOW_UPDATE';
  streamId: number;
  delta: number;
}
/** A control type this implementation does not know; the spec says to ignore it. */
export interface UnknownControlFrame {
  type: 'UNKNOWN';
  controlType: number;
  flags: number;
  payload: Buffer;
}

export type Frame =
  | DataFrame
  | SynStreamFrame
  | SynReplyFrame
  | HeadersFrame
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | WindowUpdateFrame
  | UnknownControlFrame;

/**
 * Incremental decoder: push socket chunks, pull whole frames. Buffers at most one frame
 * plus what the socket delivered past it; a frame whose declared length exceeds
 * maxFrameSize is rejected as soon as its header arrives, before its payload is buffered.
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private readonly maxFrameSize: number;

  constructor(maxFrameSize = MAX_FRAME_LENGTH) {
    this.maxFrameSize = maxFrameSize;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The next whole frame, or null if more bytes are needed. Throws SpdyProtocolError. */
  next(): Frame | null {
    if (this.length < FRAME_HEADER_LENGTH) return null;
    const head = this.peek(FRAME_HEADER_LENGTH);
    const word0 = head.readUInt32BE(0);
    const flags = head[4]!;
    const payloadLength = head.readUIntBE(5, 3);
    const control = (word0 & 0x80000000) !== 0;
    const version = (word0 >>> 16) & 0x7fff;
    // Both checks run on the header alone, so garbage is rejected without waiting for its "payload".
    if (control && version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    if (payloadLength > this.maxFrameSize) {
      throw new SpdyProtocolError(`frame of ${payloadLength} bytes exceeds the limit of ${this.maxFrameSize}`);
    }
    if (this.length < FRAME_HEADER_LENGTH + payloadLength) return null;
    this.take(FRAME_HEADER_LENGTH);
    const payload = this.take(payloadLength);
    if (!control) {
      const streamId = word0 & MAX_STREAM_ID;
      if (streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
      return { type: 'DATA', streamId, flags, data: payload };
    }
    return decodeControl(word0 & 0xffff, flags, payload);
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    for (const chunk of this.chunks) {
      filled += chunk.copy(out, filled, 0, Math.min(chunk.length, n - filled));
      if (filled === n) break;
    }
    return out;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length > n) {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    } else if (first.length === n) {
      out = first;
      this.chunks.shift();
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0]!;
        const use = Math.min(chunk.length, n - filled);
        chunk.copy(out, filled, 0, use);
        filled += use;
        if (use === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(use);
      }
    }
    this.length -= n;
    return out;
  }
}

function streamIdAt(payload: Buffer, offset: number): number {
  return payload.readUInt32BE(offset) & MAX_STREAM_ID;
}

function requireLength(name: string, payload: Buffer, exact: number): void {
  if (payload.length !== exact) throw new SpdyProtocolError(`${name} frame has length ${payload.length}, want ${exact}`);
}

function requireStreamId(name: string, id: number): number {
  if (id === 0) throw new SpdyProtocolError(`${name} frame on stream 0`);
  return id;
}

// Checks follow the Go framer the apiserver uses (moby/spdystream/spdy), made exact where Go
// would silently desynchronise on a wrong length.
function decodeControl(type: number, flags: number, payload: Buffer): Frame {
  switch (type) {
    case FrameType.SYN_STREAM: {
      if (payload.length < 10) throw new SpdyProtocolError('SYN_STREAM frame too short');
      return {
        type: 'SYN_STREAM',
        streamId: requireStreamId('SYN_STREAM', streamIdAt(payload, 0)),
        associatedStreamId: streamIdAt(payload, 4),
        priority: payload[8]! >> 5,
        slot: payload[9]!,
        flags,
        headerBlock: payload.subarray(10),
      };
    }
    case FrameType.SYN_REPLY:
    case FrameType.HEADERS: {
      const name = type === FrameType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS';
      if (payload.length < 4) throw new SpdyProtocolError(`${name} frame too short`);
      return { type: name, streamId: requireStreamId(name, streamIdAt(payload, 0)), flags, headerBlock: payload.subarray(4) };
    }
    case FrameType.RST_STREAM: {
      requireLength('RST_STREAM', payload, 8);
      const status = payload.readUInt32BE(4);
      if (status === 0) throw new SpdyProtocolError('RST_STREAM with status 0');
      return { type: 'RST_STREAM', streamId: requireStreamId('RST_STREAM', streamIdAt(payload, 0)), status };
    }
    case FrameType.SETTINGS: {
      if (payload.length < 4) throw new SpdyProtocolError('SETTINGS frame too short');
      const count = payload.readUInt32BE(0);
      if (payload.length !== 4 + count * 8) throw new SpdyProtocolError('SETTINGS frame length does not match its entry count');
      const entries: SettingsEntry[] = [];
      for (let i = 0; i < count; i++) {
        const word = payload.readUInt32BE(4 + i * 8);
        entries.push({ flags: word >>> 24, id: word & 0xffffff, value: payload.readUInt32BE(8 + i * 8) });
      }
      return { type: 'SETTINGS', flags, entries };
    }
    case FrameType.PING: {
      requireLength('PING', payload, 4);
      if (flags !== 0) throw new SpdyProtocolError('PING frame with flags');
      const id = payload.readUInt32BE(0);
      if (id === 0) throw new SpdyProtocolError('PING with id 0');
      return { type: 'PING', id };
    }
    case FrameType.GOAWAY: {
      requireLength('GOAWAY', payload, 8);
      if (flags !== 0) throw new SpdyProtocolError('GOAWAY frame with flags');
      return { type: 'GOAWAY', lastGoodStreamId: streamIdAt(payload, 0), status: payload.readUInt32BE(4) };
    }
    case FrameType.WINDOW_UPDATE: {
      requireLength('WINDOW_UPDATE', payload, 8);
      if (flags !== 0) throw new SpdyProtocolError('WINDOW_UPDATE frame with flags');
      return { type: 'WINDOW_UPDATE', streamId: streamIdAt(payload, 0), delta: payload.readUInt32BE(4) & 0x7fffffff };
    }
    default:
      return { type: 'UNKNOWN', controlType: type, flags, payload };
  }
}

// --- encoding ---

function checkStreamId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_STREAM_ID) throw new RangeError(`invalid stream id ${id}`);
}

function frameHeader(word0: number, flags: number, length: number, total: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`frame payload of ${length} bytes exceeds ${MAX_FRAME_LENGTH}`);
  const buf = Buffer.allocUnsafe(total);
  buf.writeUInt32BE(word0 >>> 0, 0);
  buf.writeUInt32BE((((flags & 0xff) << 24) | length) >>> 0, 4);
  return buf;
}

/** One DATA frame; the caller splits large payloads. */
export function encodeData(streamId: number, data: Uint8Array, flags = 0): Buffer {
  checkStreamId(streamId);
  const buf = frameHeader(streamId, flags, data.length, FRAME_HEADER_LENGTH + data.length);
  buf.set(data, FRAME_HEADER_LENGTH);
  return buf;
}

export function encodeControl(type: number, flags: number, payload: Uint8Array): Buffer {
  const buf = frameHeader(0x80000000 | (SPDY_VERSION << 16) | type, flags, payload.length, FRAME_HEADER_LENGTH + payload.length);
  buf.set(payload, FRAME_HEADER_LENGTH);
  return buf;
}

function words(...values: number[]): Buffer {
  const buf = Buffer.allocUnsafe(values.length * 4);
  values.forEach((v, i) => buf.writeUInt32BE(v >>> 0, i * 4));
  return buf;
}

export function encodeSynStream(
  streamId: number,
  headerBlock: Uint8Array,
  opts: { flags?: number; associatedStreamId?: number; priority?: number; slot?: number } = {},
): Buffer {
  checkStreamId(streamId);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt32BE(streamId, 0);
  fixed.writeUInt32BE((opts.associatedStreamId ?? 0) & MAX_STREAM_ID, 4);
  fixed[8] = ((opts.priority ?? 0) & 0x7) << 5;
  fixed[9] = opts.slot ?? 0;
  return encodeControl(FrameType.SYN_STREAM, opts.flags ?? 0, Buffer.concat([fixed, headerBlock]));
}

export function encodeSynReply(streamId: number, headerBlock: Uint8Array, flags = 0): Buffer {
  checkStreamId(streamId);
  return encodeControl(FrameType.SYN_REPLY, flags, Buffer.concat([words(streamId), headerBlock]));
}

export function encodeHeaders(streamId: number, headerBlock: Uint8Array, flags = 0): Buffer {
  checkStreamId(streamId);
  return encodeControl(FrameType.HEADERS, flags, Buffer.concat([words(streamId), headerBlock]));
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  checkStreamId(streamId);
  return encodeControl(FrameType.RST_STREAM, 0, words(streamId, status));
}

export function encodeSettings(entries: SettingsEntry[], flags = 0): Buffer {
  const payload = Buffer.allocUnsafe(4 + entries.length * 8);
  payload.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    payload.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
    payload.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return encodeControl(FrameType.SETTINGS, flags, payload);
}

export function encodePing(id: number): Buffer {
  return encodeControl(FrameType.PING, 0, words(id));
}

export function encodeGoAway(lastGoodStreamId: number, status: number): Buffer {
  return encodeControl(FrameType.GOAWAY, 0, words(lastGoodStreamId & MAX_STREAM_ID, status));
}

export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  return encodeControl(FrameType.WINDOW_UPDATE, 0, words(streamId & MAX_STREAM_ID, delta & 0x7fffffff));
}
