import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { DigestError, digestOf, splitDigest, writeVerified } from './digest.ts';

const dir = await mkdtemp(path.join(tmpdir(), 'vk-digest-'));
after(() => rm(dir, { recursive: true, force: true }));

const content = Buffer.from('hello, registry\n');
const good = digestOf(content);

function chunks(): Readable {
  return Readable.from([content.subarray(0, 5), content.subarray(5)]);
}

test('digestOf and splitDigest', () => {
  assert.match(good, /^sha256:[a-f0-9]{64}$/);
  assert.deepEqual(splitDigest(good), { algorithm: 'sha256', hex: good.slice(7) });
  assert.match(digestOf(content, 'sha512'), /^sha512:[a-f0-9]{128}$/);
  assert.throws(() => splitDigest('sha256:xyz'), DigestError);
});

test('writeVerified renames into place only on a match', async () => {
  const dest = path.join(dir, 'good');
  await writeVerified(chunks(), dest, good, { size: content.length, tmpDir: dir });
  assert.deepEqual(await readFile(dest), content);
});

test('a digest mismatch throws and leaves no file, partial or final', async () => {
  const dest = path.join(dir, 'bad');
  const wrong = `sha256:${'0'.repeat(64)}`;
  await assert.rejects(
    writeVerified(chunks(), dest, wrong, { tmpDir: dir }),
    (err: unknown) => err instanceof DigestError && /digest mismatch: expected sha256:0{64}, got sha256:/.test(err.message),
  );
  await assert.rejects(writeVerified(chunks(), dest, good, { size: 3, tmpDir: dir }), /size mismatch .*more than the expected 3 bytes/);
  await assert.rejects(writeVerified(chunks(), dest, good, { size: 100, tmpDir: dir }), /size mismatch .*expected 100 bytes, got 16/);
  const failing = new Readable({
    read() {
      this.destroy(new Error('connection reset'));
    },
  });
  await assert.rejects(writeVerified(failing, dest, good, { tmpDir: dir }), /connection reset/);
  assert.deepEqual((await readdir(dir)).sort(), ['good']);
});
