// SPDY/3 name/value header blocks (draft 3.1, section 2.6.10): zlib with a fixed dictionary
// and ONE compression context per direction for the whole connection, each block ending in
// a Z_SYNC_FLUSH. Both ends must process every block in order or the contexts diverge, so a
// block must be decompressed even when the frame carrying it is then ignored.

import zlib from 'node:zlib';
import { SpdyProtocolError } from './frames.ts';

// The dictionary from the SPDY/3 spec: length-prefixed common header names and values,
// followed by raw text of common status lines, dates and content types.
const DICTIONARY_WORDS = [
  'options',
  'head',
  'post',
  'put',
  'delete',
  'trace',
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
  'accept-ranges',
  'age',
  'allow',
  'authorization',
  'cache-control',
  'connection',
  'content-base',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'etag',
  'expect',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'pragma',
  'proxy-authenticate',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'server',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'vary',
  'via',
  'warning',
  'www-authenticate',
  'method',
  'get',
  'status',
  '200 OK',
  'version',
  'HTTP/1.1',
  'url',
  'public',
  'set-cookie',
  'keep-alive',
  'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY3_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.map((word) => {
    const b = Buffer.alloc(4 + word.length);
    b.writeUInt32BE(word.length, 0);
    b.write(word, 4, 'latin1');
    return b;
  }),
  Buffer.from(DICTIONARY_TAIL, 'latin1'),
]);

/** Limits on a decoded header block; the per-field size and count match moby/spdystream's defaults. */
const MAX_HEADER_COUNT = 1000;
const MAX_HEADER_FIELD_SIZE = 1 << 20;
/** Decompressed size cap, so a tiny compressed block cannot expand without bound. */
export const MAX_HEADER_BLOCK_SIZE = 4 << 20;

/** Header name → values (a value containing NUL carries several values). */
export type HeaderValues = Record<string, string[]>;

/** Serialises a name/value block (uncompressed). Names are lower-cased as SPDY requires. */
export function encodeHeaderBlock(headers: Record<string, string | readonly string[]>): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(headers);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length, 0);
  parts.push(count);
  for (const [name, value] of entries) {
    const nameBuf = Buffer.from(name.toLowerCase(), 'utf8');
    const valueBuf = Buffer.from(typeof value === 'string' ? value : value.join('\0'), 'utf8');
    const lengths = Buffer.alloc(4);
    lengths.writeUInt32BE(nameBuf.length, 0);
    parts.push(lengths, nameBuf);
    const valueLength = Buffer.alloc(4);
    valueLength.writeUInt32BE(valueBuf.length, 0);
    parts.push(valueLength, valueBuf);
  }
  return Buffer.concat(parts);
}

/**
 * Parses a decompressed name/value block. Like Go's framer, names are lower-cased and NUL
 * splits a value into several; unlike it, a repeated name adds values instead of failing.
 */
export function decodeHeaderBlock(block: Buffer): HeaderValues {
  const headers: HeaderValues = Object.create(null) as HeaderValues;
  let offset = 0;
  const readLength = (what: string): number => {
    if (offset + 4 > block.length) throw new SpdyProtocolError(`header block truncated in ${what}`);
    const n = block.readUInt32BE(offset);
    offset += 4;
    if (n > MAX_HEADER_FIELD_SIZE) throw new SpdyProtocolError(`header ${what} of ${n} bytes is too large`);
    if (offset + n > block.length) throw new SpdyProtocolError(`header block truncated in ${what}`);
    return n;
  };
  if (block.length < 4) throw new SpdyProtocolError('header block too short');
  const count = block.readUInt32BE(0);
  offset = 4;
  if (count > MAX_HEADER_COUNT) throw new SpdyProtocolError(`header block has ${count} headers`);
  for (let i = 0; i < count; i++) {
    const nameLength = readLength('name');
    const name = block.toString('utf8', offset, offset + nameLength).toLowerCase();
    offset += nameLength;
    const valueLength = readLength('value');
    const values = block.toString('utf8', offset, offset + valueLength).split('\0');
    offset += valueLength;
    (headers[name] ??= []).push(...values);
  }
  if (offset !== block.length) throw new SpdyProtocolError('header block has trailing bytes');
  return headers;
}

/**
 * One persistent zlib context whose output is cut per input block. Node's zlib has no
 * synchronous API that keeps a context, so blocks run one at a time through the async stream:
 * each write uses Z_SYNC_FLUSH, and the write callback marks the end of that block's output.
 */
class ZlibContext {
  private readonly z: zlib.Inflate | zlib.Deflate;
  private tail: Promise<unknown> = Promise.resolve();
  private out: Buffer[] = [];
  private outLength = 0;
  private limit = Infinity;
  private fail: ((err: Error) => void) | null = null;
  private broken: Error | null = null;

  constructor(kind: 'inflate' | 'deflate') {
    const options: zlib.ZlibOptions = { dictionary: SPDY3_DICTIONARY, flush: zlib.constants.Z_SYNC_FLUSH };
    this.z = kind === 'inflate' ? zlib.createInflate(options) : zlib.createDeflate(options);
    // Paused mode: output is pulled in drain(), which also lets zlib continue past its
    // readable high-water mark within a block.
    this.z.on('readable', () => this.drain());
    this.z.on('error', (err) => this.abort(err));
  }

  /** Runs one block through the context; blocks are processed strictly in call order. */
  process(input: Buffer, maxOutput = Infinity): Promise<Buffer> {
    const run = (): Promise<Buffer> =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.broken) {
          reject(this.broken);
          return;
        }
        this.out = [];
        this.outLength = 0;
        this.limit = maxOutput;
        this.fail = reject;
        this.z.write(input, (err) => {
          if (err) {
            this.abort(err);
            return;
          }
          this.drain();
          if (this.broken) {
            reject(this.broken);
            return;
          }
          this.fail = null;
          resolve(Buffer.concat(this.out, this.outLength));
        });
      });
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.abort(new Error('header compression context closed'));
  }

  private drain(): void {
    let chunk: Buffer | null;
    while (!this.broken && (chunk = this.z.read() as Buffer | null) !== null) {
      this.outLength += chunk.length;
      if (this.outLength > this.limit) {
        this.abort(new SpdyProtocolError(`header block decompresses to more than ${this.limit} bytes`));
        return;
      }
      this.out.push(chunk);
    }
  }

  private abort(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    this.out = [];
    const fail = this.fail;
    this.fail = null;
    this.z.destroy();
    fail?.(err);
  }
}

/** Compresses the header blocks we send (one context for the connection's outgoing side). */
export class HeaderCompressor {
  private readonly ctx = new ZlibContext('deflate');

  compress(headers: Record<string, string | readonly string[]>): Promise<Buffer> {
    return this.ctx.process(encodeHeaderBlock(headers));
  }

  close(): void {
    this.ctx.close();
  }
}

/** Decompresses the header blocks we receive (one context for the connection's incoming side). */
export class HeaderDecompressor {
  private readonly ctx = new ZlibContext('inflate');

  /** Rejects with SpdyProtocolError on bad zlib data or a malformed block. */
  async decompress(compressed: Buffer): Promise<HeaderValues> {
    if (compressed.length === 0) throw new SpdyProtocolError('empty compressed header block');
    let block: Buffer;
    try {
      block = await this.ctx.process(compressed, MAX_HEADER_BLOCK_SIZE);
    } catch (err) {
      if (err instanceof SpdyProtocolError) throw err;
      throw new SpdyProtocolError(`cannot decompress header block: ${(err as Error).message}`, { cause: err });
    }
    return decodeHeaderBlock(block);
  }

  close(): void {
    this.ctx.close();
  }
}
