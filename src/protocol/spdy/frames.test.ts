import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FLAG_FIN,
  FrameDecoder,
  FrameType,
  SpdyProtocolError,
  encodeControl,
  encodeData,
  encodeGoAway,
  encodeHeaders,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
} from './frames.ts';
import type { Frame } from './frames.ts';

function decodeAll(bytes: Buffer, chunkSize = bytes.length): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) {
    decoder.push(bytes.subarray(i, i + chunkSize));
    for (let f = decoder.next(); f; f = decoder.next()) frames.push(f);
  }
  assert.equal(decoder.bufferedBytes, 0);
  return frames;
}

function decodeOne(bytes: Buffer, maxFrameSize?: number): Frame | null {
  const decoder = new FrameDecoder(maxFrameSize);
  decoder.push(bytes);
  return decoder.next();
}

test('control frames have the SPDY/3 wire layout', () => {
  assert.equal(encodePing(1).toString('hex'), '80030006' + '00000004' + '00000001');
  assert.equal(encodeRstStream(5, 5).toString('hex'), '80030003' + '00000008' + '00000005' + '00000005');
  assert.equal(encodeGoAway(7, 0).toString('hex'), '80030007' + '00000008' + '00000007' + '00000000');
  assert.equal(encodeSynReply(3, Buffer.from('ab'), FLAG_FIN).toString('hex'), '80030002' + '01000006' + '00000003' + '6162');
  const syn = encodeSynStream(1, Buffer.from('h'), { priority: 7, associatedStreamId: 0, flags: FLAG_FIN });
  assert.equal(syn.toString('hex'), '80030001' + '0100000b' + '00000001' + '00000000' + 'e0' + '00' + '68');
});

test('data frames carry stream id, flags and 24-bit length', () => {
  assert.equal(encodeData(3, Buffer.from('hi'), FLAG_FIN).toString('hex'), '00000003' + '01000002' + '6869');
  assert.equal(encodeData(0x7fffffff, Buffer.alloc(0)).toString('hex'), '7fffffff' + '00000000');
  assert.throws(() => encodeData(0, Buffer.alloc(0)), RangeError);
});

test('every frame type round-trips, whole or a byte at a time', () => {
  const bytes = Buffer.concat([
    encodeSynStream(1, Buffer.from('block'), { priority: 3, associatedStreamId: 9, slot: 2, flags: 2 }),
    encodeSynReply(1, Buffer.from('reply')),
    encodeHeaders(1, Buffer.from('more'), FLAG_FIN),
    encodeData(1, Buffer.from('payload'), FLAG_FIN),
    encodeRstStream(3, 5),
    encodeSettings([
      { flags: 1, id: 7, value: 65536 },
      { flags: 0, id: 4, value: 100 },
    ]),
    encodePing(2),
    encodeGoAway(11, 1),
    encodeWindowUpdate(1, 1000),
    encodeControl(10, 0, Buffer.from('credential')),
  ]);
  const expected: Frame[] = [
    { type: 'SYN_STREAM', streamId: 1, associatedStreamId: 9, priority: 3, slot: 2, flags: 2, headerBlock: Buffer.from('block') },
    { type: 'SYN_REPLY', streamId: 1, flags: 0, headerBlock: Buffer.from('reply') },
    { type: 'HEADERS', streamId: 1, flags: FLAG_FIN, headerBlock: Buffer.from('more') },
    { type: 'DATA', streamId: 1, flags: FLAG_FIN, data: Buffer.from('payload') },
    { type: 'RST_STREAM', streamId: 3, status: 5 },
    {
      type: 'SETTINGS',
      flags: 0,
      entries: [
        { flags: 1, id: 7, value: 65536 },
        { flags: 0, id: 4, value: 100 },
      ],
    },
    { type: 'PING', id: 2 },
    { type: 'GOAWAY', lastGoodStreamId: 11, status: 1 },
    { type: 'WINDOW_UPDATE', streamId: 1, delta: 1000 },
    { type: 'UNKNOWN', controlType: 10, flags: 0, payload: Buffer.from('credential') },
  ];
  assert.deepEqual(decodeAll(bytes), expected);
  assert.deepEqual(decodeAll(bytes, 1), expected);
  assert.deepEqual(decodeAll(bytes, 7), expected);
});

test('a large data frame is reassembled from many chunks', () => {
  const payload = Buffer.alloc(3 << 20, 0x5a);
  const [frame] = decodeAll(encodeData(9, payload), 65536);
  assert.equal(frame?.type, 'DATA');
  assert.ok(frame.type === 'DATA' && frame.data.equals(payload));
});

test('an oversized frame is rejected from its header, before the payload arrives', () => {
  const decoder = new FrameDecoder(1024);
  decoder.push(encodeData(1, Buffer.alloc(2048)).subarray(0, 8));
  assert.throws(() => decoder.next(), SpdyProtocolError);
  assert.throws(() => decodeOne(encodeSynStream(1, Buffer.alloc(2000)), 1024), /exceeds the limit of 1024/);
});

test('malformed frames raise SpdyProtocolError', () => {
  const cases: [string, Buffer][] = [
    ['data on stream 0', Buffer.from('0000000000000000', 'hex')],
    ['SPDY/2 control frame', Buffer.from('80020006' + '00000004' + '00000001', 'hex')],
    ['PING too long', encodeControl(FrameType.PING, 0, Buffer.alloc(8, 1))],
    ['PING id 0', encodePing(0)],
    ['PING with flags', encodeControl(FrameType.PING, 1, Buffer.from('00000001', 'hex'))],
    ['RST status 0', encodeControl(FrameType.RST_STREAM, 0, Buffer.from('0000000100000000', 'hex'))],
    ['RST on stream 0', encodeControl(FrameType.RST_STREAM, 0, Buffer.from('0000000000000005', 'hex'))],
    ['RST short', encodeControl(FrameType.RST_STREAM, 0, Buffer.from('00000001', 'hex'))],
    ['SETTINGS count mismatch', encodeControl(FrameType.SETTINGS, 0, Buffer.from('00000002' + '0000000100000001', 'hex'))],
    ['GOAWAY short', encodeControl(FrameType.GOAWAY, 0, Buffer.from('00000001', 'hex'))],
    ['SYN_STREAM short', encodeControl(FrameType.SYN_STREAM, 0, Buffer.from('00000001', 'hex'))],
    ['SYN_STREAM on stream 0', encodeControl(FrameType.SYN_STREAM, 0, Buffer.alloc(12))],
    ['SYN_REPLY short', encodeControl(FrameType.SYN_REPLY, 0, Buffer.from('00', 'hex'))],
    ['WINDOW_UPDATE short', encodeControl(FrameType.WINDOW_UPDATE, 0, Buffer.from('00000001', 'hex'))],
  ];
  for (const [name, bytes] of cases) {
    assert.throws(
      () => decodeOne(bytes),
      (err) => err instanceof SpdyProtocolError && err.code === 'VK_PROTOCOL' && err.name === 'SpdyProtocolError',
      name,
    );
  }
});

test('an incomplete frame waits for more bytes', () => {
  const bytes = encodePing(3);
  const decoder = new FrameDecoder();
  decoder.push(bytes.subarray(0, 5));
  assert.equal(decoder.next(), null);
  decoder.push(bytes.subarray(5, 11));
  assert.equal(decoder.next(), null);
  decoder.push(bytes.subarray(11));
  assert.deepEqual(decoder.next(), { type: 'PING', id: 3 });
  assert.equal(decoder.next(), null);
});
