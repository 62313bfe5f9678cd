// Content digests: computing them, and writing a stream to a file only if it hashes to the
// expected digest (sha256 while streaming; on any failure the partial file is removed, so a
// blob path either holds verified content or does not exist).
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VkError } from '../../../errors.ts';
import { digestProblem } from './reference.ts';

const HASH_NAMES: Record<string, string> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

/** Content that does not match its digest or size, or a digest we cannot compute. */
export class DigestError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_IMAGE_PULL', message, options);
  }
}

export function splitDigest(digest: string): { algorithm: string; hex: string } {
  const problem = digestProblem(digest);
  if (problem) throw new DigestError(problem);
  const colon = digest.indexOf(':');
  return { algorithm: digest.slice(0, colon), hex: digest.slice(colon + 1) };
}

export function hashFor(algorithm: string): Hash {
  const name = HASH_NAMES[algorithm];
  if (!name) throw new DigestError(`unsupported digest algorithm "${algorithm}"`);
  return createHash(name);
}

export function digestOf(data: Uint8Array, algorithm = 'sha256'): string {
  return `${algorithm}:${hashFor(algorithm).update(data).digest('hex')}`;
}

/** A pass-through that hashes and counts what flows through it. */
export class HashingStream extends Transform {
  readonly algorithm: string;
  private readonly hash: Hash;
  bytes = 0;
  private readonly limit: number | undefined;

  constructor(algorithm = 'sha256', limit?: number) {
    super();
    this.algorithm = algorithm;
    this.hash = hashFor(algorithm);
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    if (this.limit !== undefined && this.bytes > this.limit) {
      callback(new DigestError(`more than the expected ${this.limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  /** algorithm:hex of everything seen; call once, after the stream ended. */
  digest(): string {
    return `${this.algorithm}:${this.hash.digest('hex')}`;
  }
}

export interface VerifiedWriteOptions {
  /** Expected size in bytes, when known: more is an error as soon as it arrives, less at the end. */
  size?: number;
  /** Directory for the partial file; must be on the same filesystem as `dest`. */
  tmpDir: string;
  signal?: AbortSignal;
}

/**
 * Streams `source` into `dest`, hashing as it goes; renames into place only when the digest
 * (and size, if given) match. Otherwise throws DigestError and leaves nothing behind.
 */
export async function writeVerified(source: Readable, dest: string, digest: string, options: VerifiedWriteOptions): Promise<void> {
  const { algorithm } = splitDigest(digest);
  const hashing = new HashingStream(algorithm, options.size);
  const partial = path.join(options.tmpDir, `${path.basename(dest)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    await pipeline(source, hashing, createWriteStream(partial, { flags: 'wx', mode: 0o644 }), options.signal ? { signal: options.signal } : {});
    if (options.size !== undefined && hashing.bytes !== options.size) {
      throw new DigestError(`size mismatch for ${digest}: expected ${options.size} bytes, got ${hashing.bytes}`);
    }
    const actual = hashing.digest();
    if (actual !== digest) throw new DigestError(`digest mismatch: expected ${digest}, got ${actual}`);
    await rename(partial, dest);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof DigestError && err.message.startsWith('more than')) {
      throw new DigestError(`size mismatch for ${digest}: ${err.message}`);
    }
    throw err;
  }
}
