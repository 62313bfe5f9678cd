import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { SpdyProtocolError } from './frames.ts';
import { HeaderCompressor, HeaderDecompressor, MAX_HEADER_BLOCK_SIZE, SPDY3_DICTIONARY, decodeHeaderBlock, encodeHeaderBlock } from './header-compression.ts';

test('the SPDY/3 dictionary has the spec size and framing', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  assert.equal(SPDY3_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.ok(SPDY3_DICTIONARY.toString('latin1').endsWith('charset=iso-8859-1,utf-,*,enq=0.'));
});

test('name/value blocks: lower-cased names, NUL-separated values, repeated names merge', () => {
  const block = encodeHeaderBlock({ StreamType: 'stdout', port: ['80', '8080'] });
  assert.equal(block.readUInt32BE(0), 2);
  assert.deepEqual({ ...decodeHeaderBlock(block) }, { streamtype: ['stdout'], port: ['80', '8080'] });
  const twice = Buffer.concat([Buffer.from([0, 0, 0, 2]), encodeHeaderBlock({ a: '1' }).subarray(4), encodeHeaderBlock({ A: '2' }).subarray(4)]);
  assert.deepEqual({ ...decodeHeaderBlock(twice) }, { a: ['1', '2'] });
  assert.deepEqual({ ...decodeHeaderBlock(encodeHeaderBlock({})) }, {});
});

test('malformed name/value blocks are protocol errors', () => {
  const good = encodeHeaderBlock({ streamtype: 'error' });
  assert.throws(() => decodeHeaderBlock(good.subarray(0, good.length - 1)), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.concat([good, Buffer.from([0])])), /trailing/);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0])), SpdyProtocolError);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0x10, 0])), /headers/);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])), /too large/);
});

test('one persistent context per direction: later blocks build on earlier ones', async () => {
  const compressor = new HeaderCompressor();
  const decompressor = new HeaderDecompressor();
  const headers = [
    { streamtype: 'error', port: '8080', requestid: '0' },
    { streamtype: 'data', port: '8080', requestid: '0' },
    { streamtype: 'error', port: '8080', requestid: '1' },
    { streamtype: 'data', port: '8080', requestid: '1' },
  ];
  const blocks = await Promise.all(headers.map((h) => compressor.compress(h)));
  for (const block of blocks) assert.equal(block.subarray(-4).toString('hex'), '0000ffff', 'each block ends in a sync flush');
  assert.ok(blocks[3]!.length < blocks[0]!.length, `block 4 (${blocks[3]!.length}B) reuses block 1 (${blocks[0]!.length}B)`);
  // Only the first block carries the zlib header; a fresh context cannot read a later block.
  assert.equal(blocks[0]![0], 0x78);
  await assert.rejects(new HeaderDecompressor().decompress(blocks[1]!), SpdyProtocolError);
  for (let i = 0; i < headers.length; i++) {
    const decoded = await decompressor.decompress(blocks[i]!);
    assert.deepEqual(Object.fromEntries(Object.entries(decoded).map(([k, v]) => [k, v[0]])), headers[i]);
  }
  compressor.close();
  decompressor.close();
});

test('output is plain zlib with the SPDY dictionary', async () => {
  const compressor = new HeaderCompressor();
  const block = await compressor.compress({ streamtype: 'stdin' });
  const raw = zlib.inflateSync(block, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  assert.deepEqual({ ...decodeHeaderBlock(raw) }, { streamtype: ['stdin'] });
  compressor.close();
});

test('garbage and decompression bombs are rejected', async () => {
  await assert.rejects(new HeaderDecompressor().decompress(Buffer.from('not zlib at all')), SpdyProtocolError);
  await assert.rejects(new HeaderDecompressor().decompress(Buffer.alloc(0)), SpdyProtocolError);
  const bomb = zlib.deflateSync(Buffer.alloc(MAX_HEADER_BLOCK_SIZE * 4), {
    dictionary: SPDY3_DICTIONARY,
    flush: zlib.constants.Z_SYNC_FLUSH,
  });
  const decompressor = new HeaderDecompressor();
  await assert.rejects(decompressor.decompress(bomb), /decompresses to more than/);
  await assert.rejects(decompressor.decompress(bomb), SpdyProtocolError, 'a failed context stays failed');
});
