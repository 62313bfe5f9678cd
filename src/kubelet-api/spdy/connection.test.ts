import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { SpdyConnection, SpdyStreamResetError } from './connection.ts';
import type { SpdyConnectionOptions, SpdyStream } from './connection.ts';
import {
  FLAG_FIN,
  FrameType,
  GoAwayStatus,
  RstStatus,
  SpdyProtocolError,
  encodeControl,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynStream,
  encodeWindowUpdate,
} from '../../protocol/spdy/frames.ts';
import { TestSpdyClient, connectSpdy, describe, startServer } from '../../../test/fixtures/spdy-client.ts';
import type { ReceivedFrame } from '../../../test/fixtures/spdy-client.ts';
import { waitFor } from '../../../test/harness/wait.ts';

interface Harness {
  client: TestSpdyClient;
  conn: SpdyConnection;
  streams: SpdyStream[];
  errors: Error[];
  closed: Promise<unknown>;
  stream(id: number): Promise<SpdyStream>;
}

/** Server with upgradeToSpdy on loopback plus one upgraded test client. */
async function open(
  t: TestContext,
  options: Omit<SpdyConnectionOptions, 'head'> = {},
  onStream?: (stream: SpdyStream, conn: SpdyConnection) => void,
  { errorListener = true } = {},
): Promise<Harness> {
  const streams: SpdyStream[] = [];
  const errors: Error[] = [];
  let gotConn!: (c: SpdyConnection) => void;
  const connP = new Promise<SpdyConnection>((resolve) => (gotConn = resolve));
  const server = await startServer((conn) => {
    if (errorListener) conn.on('error', (err: Error) => errors.push(err));
    conn.on('stream', (s: SpdyStream) => {
      streams.push(s);
      onStream?.(s, conn);
    });
    gotConn(conn);
  }, options);
  t.after(() => server.close());
  const res = await connectSpdy(server.port);
  assert.equal(res.status, 101);
  const client = res.client!;
  t.after(() => client.close());
  const conn = await connP;
  const closed = new Promise<void>((resolve) => conn.once('close', () => resolve()));
  return {
    client,
    conn,
    streams,
    errors,
    closed,
    stream: (id) => waitFor(`stream ${id}`, () => streams.find((x) => x.id === id), { timeoutMs: 5000, intervalMs: 10 }),
  };
}

/** The server side of the connection's socket. */
function serverSocket(h: Harness): net.Socket {
  return (h.conn as unknown as { socket: net.Socket }).socket;
}

/**
 * An ordering barrier instead of a sleep: resolves once the client has received and handled every
 * byte the server has written so far, so a frame the server sent is in `client.frames` by then.
 */
async function caughtUp(h: Harness): Promise<void> {
  const server = serverSocket(h);
  await waitFor('the client to receive all the server wrote', () => server.writableLength === 0 && h.client.socket.bytesRead >= server.bytesWritten, {
    timeoutMs: 5000,
    intervalMs: 5,
  });
  await h.client.settled();
}

const isFrame = (type: ReceivedFrame['type'], streamId?: number) => (f: ReceivedFrame) =>
  f.type === type && (streamId === undefined || ('streamId' in f && f.streamId === streamId));

function readAll(stream: SpdyStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.on('error', reject);
  });
}

test('upgrade: 101 with the first client protocol the server supports', async (t) => {
  let serverProtocol = '';
  const server = await startServer((_conn, protocol) => (serverProtocol = protocol));
  t.after(() => server.close());
  const res = await connectSpdy(server.port, { protocols: ['v5.channel.k8s.io, v4.channel.k8s.io', 'v3.channel.k8s.io'] });
  t.after(() => res.client?.close());
  assert.equal(res.status, 101);
  assert.equal(res.headers['connection'], 'Upgrade');
  assert.equal(res.headers['upgrade'], 'SPDY/3.1');
  assert.equal(res.headers['x-stream-protocol-version'], 'v4.channel.k8s.io');
  assert.equal(serverProtocol, 'v4.channel.k8s.io');
});

test('upgrade: 403 with the accepted list when no protocol matches', async (t) => {
  const server = await startServer(() => assert.fail('no connection expected'));
  t.after(() => server.close());
  const res = await connectSpdy(server.port, { protocols: ['v1.channel.k8s.io', 'channel.k8s.io'] });
  assert.equal(res.status, 403);
  assert.equal(res.headers['x-accepted-stream-protocol-versions'], 'v4.channel.k8s.io, v3.channel.k8s.io');
  assert.match(res.body, /unable to negotiate protocol: client supports \[v1.channel.k8s.io channel.k8s.io\]/);
});

test('upgrade: 400 without a protocol header or when not a SPDY/3.1 upgrade', async (t) => {
  const server = await startServer(() => assert.fail('no connection expected'));
  t.after(() => server.close());
  const missing = await connectSpdy(server.port, { protocols: [] });
  assert.equal(missing.status, 400);
  assert.match(missing.body, /X-Stream-Protocol-Version does not exist/);
  const blank = await connectSpdy(server.port, { protocols: [' , '] });
  assert.equal(blank.status, 400);
  assert.match(blank.body, /no valid protocols/);
  const websocket = await connectSpdy(server.port, { upgrade: 'websocket' });
  assert.equal(websocket.status, 400);
  assert.match(websocket.body, /missing upgrade headers/);
});

test('streams carry their SYN_STREAM headers and are answered with SYN_REPLY', async (t) => {
  const h = await open(t);
  await h.client.synStream(1, { streamtype: 'error' });
  await h.client.synStream(3, { streamtype: 'data', port: '8080', requestid: '7' });
  const s3 = await h.stream(3);
  assert.deepEqual({ ...s3.headers }, { streamtype: 'data', port: '8080', requestid: '7' });
  assert.deepEqual({ ...(await h.stream(1)).headers }, { streamtype: 'error' });
  const reply = await h.client.waitFor(isFrame('SYN_REPLY', 3));
  assert.deepEqual({ ...reply.headers }, {});
  assert.equal(h.conn.streamCount, 2);
});

test('data both ways with FIN half-close; data written early waits for SYN_REPLY', async (t) => {
  const h = await open(t, {}, (stream) => {
    stream.write('early:'); // before SYN_REPLY is on the wire
    void readAll(stream).then((text) => stream.end(`echo:${text}`));
  });
  await h.client.synStream(1, { streamtype: 'stdin' });
  await h.client.waitFor((f) => f.type === 'DATA' && f.streamId === 1, 'early data');
  h.client.data(1, 'hello');
  h.client.data(1, ' world', true);
  const got = await h.client.readToEnd(1);
  assert.equal(got.toString(), 'early:echo:hello world');
  const order = h.client.frames.filter((f) => 'streamId' in f && f.streamId === 1).map(describe);
  assert.deepEqual(order, ['SYN_REPLY(1)', 'DATA(1,6)', 'DATA(1,16)', 'DATA(1,0,FIN)']);
  const stream = await h.stream(1);
  if (!stream.destroyed) await once(stream, 'close');
  assert.equal(h.conn.streamCount, 0, 'fully closed streams are forgotten');
});

test('our FIN first: the stream stays readable until the client finishes', async (t) => {
  const h = await open(t, {}, (stream) => stream.end('bye'));
  await h.client.synStream(1, { streamtype: 'stdout' });
  assert.equal((await h.client.readToEnd(1)).toString(), 'bye');
  const stream = await h.stream(1);
  const text = readAll(stream);
  h.client.data(1, 'still', false);
  h.client.data(1, ' here', true);
  assert.equal(await text, 'still here');
});

test('client RST_STREAM destroys the stream: CANCEL quietly, other statuses with an error', async (t) => {
  const h = await open(t);
  await h.client.synStream(1, { streamtype: 'stdout' });
  await h.client.synStream(3, { streamtype: 'stderr' });
  const s1 = await h.stream(1);
  const s3 = await h.stream(3);
  const s3Error = once(s3, 'error');
  h.client.write(encodeRstStream(1, RstStatus.CANCEL));
  h.client.write(encodeRstStream(3, RstStatus.PROTOCOL_ERROR));
  await once(s1, 'close');
  assert.equal(s1.errored, null);
  const [err] = (await s3Error) as [SpdyStreamResetError];
  assert.ok(err instanceof SpdyStreamResetError);
  assert.equal(err.code, 'VK_PROTOCOL');
  assert.deepEqual([err.streamId, err.status], [3, RstStatus.PROTOCOL_ERROR]);
  // Nothing goes back for a reset stream, not even an RST. The PING is the barrier: the server
  // answers it after anything the write might have sent.
  s1.write('ignored');
  h.client.write(encodePing(1));
  await h.client.waitFor(isFrame('PING'), 'the PING echo');
  assert.deepEqual(h.client.frames.filter((f) => f.type !== 'SYN_REPLY' && f.type !== 'PING').map(describe), []);
  assert.equal(h.conn.streamCount, 0);
});

test('destroying a stream sends RST_STREAM CANCEL; destroying it in the stream listener rejects it', async (t) => {
  const h = await open(t, {}, (stream) => {
    if (stream.headers['streamtype'] === 'bogus') stream.destroy();
  });
  await h.client.synStream(1, { streamtype: 'bogus' });
  await h.client.waitFor(isFrame('RST_STREAM', 1));
  await h.client.synStream(3, { streamtype: 'stdout' });
  await h.client.waitFor(isFrame('SYN_REPLY', 3));
  (await h.stream(3)).destroy();
  const rst = await h.client.waitFor(isFrame('RST_STREAM', 3));
  assert.equal(rst.type === 'RST_STREAM' && rst.status, RstStatus.CANCEL);
  assert.equal(h.client.frames.filter(isFrame('SYN_REPLY', 1)).length, 0, 'a rejected stream gets no SYN_REPLY');
});

test('client PINGs are echoed; our pings use even ids and their answers are reported', async (t) => {
  const h = await open(t, { pingIntervalMs: 20 });
  h.client.write(encodePing(1));
  await h.client.waitFor((f) => f.type === 'PING' && f.id === 1, 'ping echo');
  const ours = await h.client.waitFor((f) => f.type === 'PING' && f.id % 2 === 0, 'server ping');
  assert.equal(ours.type === 'PING' && ours.id, 2);
  const pong = once(h.conn, 'pong');
  h.client.write(encodePing(2));
  assert.deepEqual(await pong, [2]);
  await h.client.waitFor((f) => f.type === 'PING' && f.id === 4, 'second server ping');
  assert.equal(h.client.frames.filter((f) => f.type === 'PING' && f.id === 1).length, 1, 'echoes are not echoed');
});

test('client GOAWAY: open streams finish, new ones are ignored, then the connection closes', async (t) => {
  const h = await open(t, {}, (stream) => void readAll(stream).then((text) => stream.end(text.toUpperCase())));
  await h.client.synStream(1, { streamtype: 'data' });
  await h.client.waitFor(isFrame('SYN_REPLY', 1));
  const goaway = once(h.conn, 'goaway');
  h.client.write(encodeGoAway(0, GoAwayStatus.OK));
  await goaway;
  await h.client.synStream(3, { streamtype: 'data' });
  h.client.data(1, 'last words', true);
  assert.equal((await h.client.readToEnd(1)).toString(), 'LAST WORDS');
  await h.closed;
  await h.client.waitClosed();
  assert.equal(h.client.frames.filter(isFrame('SYN_REPLY', 3)).length, 0);
  assert.equal(h.streams.length, 1);
});

test('close(): flush writes, RST unfinished streams, GOAWAY, end the socket', async (t) => {
  const h = await open(t);
  await h.client.synStream(1, { streamtype: 'error' });
  await h.client.synStream(3, { streamtype: 'stdin' });
  const s1 = await h.stream(1);
  const s3 = await h.stream(3);
  await h.client.waitFor(isFrame('SYN_REPLY', 3));
  s1.end('{"status":"Success"}');
  s3.write('tail');
  h.conn.close();
  await h.closed;
  await h.client.waitClosed();
  const after = h.client.frames.filter((f) => f.type !== 'SYN_REPLY').map(describe);
  // Data and FINs first (stream 1 finished, so no RST for it), then RST for stream 3, then GOAWAY.
  assert.deepEqual(after.slice(0, 3).sort(), ['DATA(1,0,FIN)', 'DATA(1,20)', 'DATA(3,4)']);
  assert.deepEqual(after.slice(3), [`RST(3,${RstStatus.CANCEL})`, 'GOAWAY(3,0)']);
  assert.ok(s1.destroyed && s3.destroyed);
});

test('close() from the stream listener still answers that stream first', async (t) => {
  const h = await open(t, {}, (stream, conn) => {
    stream.end('bye');
    conn.close();
  });
  await h.client.synStream(1, { streamtype: 'error' });
  await h.client.waitClosed();
  assert.deepEqual(h.client.frames.map(describe), ['SYN_REPLY(1)', 'DATA(1,3)', 'DATA(1,0,FIN)', 'GOAWAY(1,0)']);
});

test('several MiB each way with backpressure on both sides', async (t) => {
  const size = 8 << 20;
  const hwm = 256 << 10;
  const upload = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) upload.writeUInt32LE((i * 2654435761) >>> 0, i);
  const download = Buffer.from(upload).reverse();
  let maxBuffered = 0;
  let sawBackpressure = false;
  let maxWritable = 0;
  let clientDone!: Promise<void>;
  const serverDone = new Promise<string>((resolve, reject) => {
    clientDone = open(t, { streamHighWaterMark: hwm }, (stream) => {
      const hash = createHash('sha256');
      // A slow consumer: the connection must stop reading instead of buffering.
      const slow = new Writable({
        highWaterMark: 16 << 10,
        write(chunk: Buffer, _enc, cb) {
          maxBuffered = Math.max(maxBuffered, stream.readableLength);
          hash.update(chunk);
          setImmediate(cb);
        },
      });
      stream.pipe(slow);
      slow.on('finish', async () => {
        try {
          for (let off = 0; off < size; off += 1 << 20) {
            if (!stream.write(download.subarray(off, off + (1 << 20)))) {
              sawBackpressure = true;
              maxWritable = Math.max(maxWritable, stream.writableLength);
              await once(stream, 'drain');
            }
          }
          stream.end();
          resolve(hash.digest('hex'));
        } catch (err) {
          reject(err as Error);
        }
      });
    }).then(async (h) => {
      await h.client.synStream(1, { streamtype: 'data' });
      await h.client.waitFor(isFrame('SYN_REPLY', 1));
      for (let off = 0; off < size; off += 32 << 10) {
        const last = off + (32 << 10) >= size;
        if (!h.client.data(1, upload.subarray(off, off + (32 << 10)), last)) await once(h.client.socket, 'drain');
      }
      // Stop reading until the server's writes report backpressure: they must wait, not pile up.
      h.client.socket.pause();
      await waitFor('write() to report backpressure while the client does not read', () => sawBackpressure, { timeoutMs: 20_000, intervalMs: 5 });
      h.client.socket.resume();
      const got = await h.client.readToEnd(1, 30_000);
      assert.ok(got.equals(download), 'download intact');
    });
  });
  assert.equal(await serverDone, createHash('sha256').update(upload).digest('hex'), 'upload intact');
  await clientDone;
  assert.ok(maxBuffered <= hwm + (64 << 10), `stream buffered at most ${maxBuffered} bytes`);
  assert.ok(sawBackpressure, 'write() reported backpressure while the client did not read');
  assert.ok(maxWritable <= 2 << 20, `at most ${maxWritable} bytes queued in the stream`);
});

test('stream writes wait for the socket while the client does not read', async (t) => {
  const total = 32 << 20;
  const chunk = Buffer.alloc(256 << 10, 7);
  let completed = 0;
  let maxSocketQueue = 0;
  let waitingForDrain = false;
  let writer!: Promise<void>;
  const h = await open(t, {}, (stream, conn) => {
    const socket = (conn as unknown as { socket: net.Socket }).socket;
    writer = (async () => {
      for (let sent = 0; sent < total; sent += chunk.length) {
        const ok = stream.write(chunk, () => (completed += chunk.length));
        maxSocketQueue = Math.max(maxSocketQueue, socket.writableLength);
        if (!ok) {
          waitingForDrain = true;
          await once(stream, 'drain');
          waitingForDrain = false;
        }
      }
      stream.end();
    })();
  });
  h.client.socket.pause();
  await h.client.synStream(1, { streamtype: 'stdout' });
  // Without backpressure every write would complete (the data piling up in memory); with it the
  // writer ends up parked on the stream's 'drain' while the socket itself needs draining.
  const outcome = await waitFor(
    'the writer to block on the full socket (or to finish)',
    () => (completed === total ? 'finished' : waitingForDrain && serverSocket(h).writableNeedDrain ? 'blocked' : undefined),
    { timeoutMs: 30_000, intervalMs: 5 },
  );
  assert.equal(outcome, 'blocked', 'writes stop completing while the client reads nothing');
  const stalledAt = completed;
  assert.ok(stalledAt < total, `writes stalled after ${stalledAt} bytes`);
  h.client.socket.resume();
  const got = await h.client.readToEnd(1, 30_000);
  await writer;
  assert.equal(got.length, total);
  assert.equal(completed, total);
  assert.ok(maxSocketQueue <= 2 * chunk.length, `socket queue peaked at ${maxSocketQueue} bytes`);
});

test('a stream nobody reads stalls the connection (documented trade-off) until it is read', async (t) => {
  const h = await open(t, { streamHighWaterMark: 64 << 10 });
  await h.client.synStream(1, { streamtype: 'stdin' });
  await h.client.waitFor(isFrame('SYN_REPLY', 1));
  const s1 = await h.stream(1);
  for (let i = 0; i < 8; i++) h.client.data(1, Buffer.alloc(32 << 10, i));
  h.client.write(encodePing(1));
  // The server stops reading its socket; by then it has answered nothing, and it stays stopped.
  await waitFor('the server to stop reading', () => serverSocket(h).isPaused(), { timeoutMs: 5000, intervalMs: 5 });
  await caughtUp(h);
  assert.equal(h.client.frames.filter((f) => f.type === 'PING').length, 0, 'PING waits behind the unread stream');
  assert.ok(serverSocket(h).isPaused(), 'still not reading');
  assert.ok(s1.readableLength <= (64 << 10) + (32 << 10));
  let total = 0;
  s1.on('data', (c: Buffer) => (total += c.length));
  await h.client.waitFor((f) => f.type === 'PING' && f.id === 1, 'ping echo after reading');
  await h.client.until(() => total === 8 * (32 << 10), 'all data read');
});

test('header compression: one context per direction across many SYN_STREAMs', async (t) => {
  const h = await open(t);
  const ids = [1, 3, 5, 7, 9];
  const sizes: number[] = [];
  for (const [i, id] of ids.entries()) {
    const block = await h.client.deflater.compress({ streamtype: i % 2 ? 'error' : 'data', port: '8080', requestid: String(i >> 1) });
    sizes.push(block.length);
    h.client.write(encodeSynStream(id, block));
  }
  for (const [i, id] of ids.entries()) {
    const s = await h.stream(id);
    assert.deepEqual({ ...s.headers }, { streamtype: i % 2 ? 'error' : 'data', port: '8080', requestid: String(i >> 1) });
  }
  assert.ok(sizes.at(-1)! < sizes[0]!, `later blocks are smaller: ${sizes.join(',')}`);
  // The client inflated every SYN_REPLY with ONE context; only the first carries the zlib header.
  const replies = await h.client.until(() => {
    const r = h.client.frames.filter((f) => f.type === 'SYN_REPLY');
    return r.length === ids.length && r;
  }, 'all replies');
  const replySizes = replies.map((f) => (f.type === 'SYN_REPLY' ? f.headerBlock.length : 0));
  assert.ok(
    replySizes.slice(1).every((n) => n < replySizes[0]!),
    `reply sizes ${replySizes.join(',')}`,
  );
  assert.equal(h.client.decodeError, undefined);
});

test('SETTINGS, WINDOW_UPDATE, unknown control frames and data for unknown streams are ignored', async (t) => {
  const h = await open(t);
  h.client.write(encodeSettings([{ flags: 0, id: 7, value: 65536 }]));
  h.client.write(encodeWindowUpdate(0, 1 << 20));
  h.client.write(encodeControl(10, 0, Buffer.from('credential')));
  h.client.write(encodeData(41, Buffer.from('nobody')));
  h.client.write(encodePing(5));
  await h.client.waitFor((f) => f.type === 'PING' && f.id === 5);
  assert.deepEqual(h.errors, []);
});

test('bad stream ids are refused with RST_STREAM PROTOCOL_ERROR; the connection carries on', async (t) => {
  const h = await open(t);
  await h.client.synStream(5, { streamtype: 'data' });
  await h.client.synStream(3, { streamtype: 'data' }); // not increasing
  await h.client.synStream(6, { streamtype: 'data' }); // even: server-initiated id space
  await h.client.synStream(7, { streamtype: 'data' });
  await h.client.waitFor(isFrame('SYN_REPLY', 7));
  const rsts = h.client.frames.filter((f) => f.type === 'RST_STREAM').map(describe);
  assert.deepEqual(rsts, [`RST(3,${RstStatus.PROTOCOL_ERROR})`, `RST(6,${RstStatus.PROTOCOL_ERROR})`]);
  assert.deepEqual(
    h.streams.map((s) => s.id),
    [5, 7],
  );
});

const malformed: [string, (c: TestSpdyClient) => Promise<void> | void, SpdyConnectionOptions?][] = [
  ['a SPDY/2 control frame', (c) => void c.write(Buffer.from('80020006' + '00000004' + '00000001', 'hex'))],
  ['a PING with the wrong length', (c) => void c.write(encodeControl(FrameType.PING, 0, Buffer.alloc(8, 1)))],
  ['a DATA frame on stream 0', (c) => void c.write(encodeData(1, Buffer.from('x')).fill(0, 0, 4))],
  ['a header block that is not zlib', (c) => void c.write(encodeSynStream(3, Buffer.from('definitely not zlib')))],
  [
    'a header block from a different zlib context',
    async (c) => {
      const { HeaderCompressor } = await import('../../protocol/spdy/header-compression.ts');
      const other = new HeaderCompressor();
      await other.compress({ a: 'b' });
      c.write(encodeSynStream(3, await other.compress({ streamtype: 'data' })));
      other.close();
    },
  ],
  ['a frame over maxFrameSize', (c) => void c.write(encodeData(1, Buffer.alloc(4096))), { maxFrameSize: 1024 }],
];

for (const [name, send, options] of malformed) {
  test(`malformed input (${name}): GOAWAY PROTOCOL_ERROR, 'error', close, streams aborted`, async (t) => {
    const h = await open(t, options ?? {});
    await h.client.synStream(1, { streamtype: 'stdout' });
    const s1 = await h.stream(1);
    await h.client.waitFor(isFrame('SYN_REPLY', 1));
    await send(h.client);
    await h.closed;
    await h.client.waitClosed();
    assert.equal(h.errors.length, 1);
    assert.ok(h.errors[0] instanceof SpdyProtocolError, String(h.errors[0]));
    assert.equal(h.errors[0].code, 'VK_PROTOCOL');
    const goaway = h.client.frames.find((f) => f.type === 'GOAWAY');
    assert.equal(goaway?.type === 'GOAWAY' && goaway.status, GoAwayStatus.PROTOCOL_ERROR);
    assert.ok(s1.destroyed);
    assert.equal(s1.errored, null, 'streams are aborted without an error of their own');
  });
}

test('malformed input without an error listener does not crash', async (t) => {
  const h = await open(t, {}, undefined, { errorListener: false });
  h.client.write(Buffer.from('ffffffffffffffff', 'hex'));
  await h.closed;
  await h.client.waitClosed();
});

test('the client dropping the TCP connection aborts open streams', async (t) => {
  const h = await open(t);
  await h.client.synStream(1, { streamtype: 'stdout' });
  const s1 = await h.stream(1);
  h.client.socket.end();
  await h.closed;
  assert.ok(s1.destroyed);
  assert.deepEqual(h.errors, []);
});

test('idle timeout closes the connection like close()', async (t) => {
  const h = await open(t, { idleTimeoutMs: 150 });
  await h.client.synStream(1, { streamtype: 'stdin' });
  const timeout = once(h.conn, 'timeout');
  await timeout;
  await h.client.waitClosed();
  assert.deepEqual(h.client.frames.map(describe), ['SYN_REPLY(1)', `RST(1,${RstStatus.CANCEL})`, 'GOAWAY(1,0)']);
});

test('SpdyConnection works on a plain net.Socket too, including bytes already read', async (t) => {
  const server = net.createServer((socket) => {
    // Pretend the first frame was read along with an HTTP request head.
    socket.once('data', (first: Buffer) => {
      socket.pause();
      const conn = new SpdyConnection(socket, { head: first });
      conn.on('stream', (s: SpdyStream) => s.end(`hi ${s.headers['streamtype']}`));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const socket = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(socket, 'connect');
  const client = new TestSpdyClient(socket, Buffer.alloc(0));
  t.after(() => client.close());
  await client.synStream(1, { streamtype: 'error' });
  assert.equal((await client.readToEnd(1)).toString(), 'hi error');
  const last = client.frames.at(-1);
  assert.equal(last?.type === 'DATA' && last.flags & FLAG_FIN, FLAG_FIN);
});
