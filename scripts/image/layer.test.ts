import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import test from 'node:test';
import tar from 'tar-stream';
import { completeEntries, type LayerEntry, writeLayer } from './layer.ts';

async function listTar(file: string): Promise<{ name: string; mode: number; uid: number; mtime: number; type: string }[]> {
  const extract = tar.extract();
  Readable.from(await readFile(file))
    .pipe(createGunzip())
    .pipe(extract as unknown as NodeJS.WritableStream);
  const seen: { name: string; mode: number; uid: number; mtime: number; type: string }[] = [];
  for await (const entry of extract) {
    const h = entry.header;
    seen.push({ name: h.name, mode: h.mode ?? 0, uid: h.uid ?? -1, mtime: h.mtime?.getTime() ?? -1, type: h.type ?? '' });
    entry.resume();
  }
  return seen;
}

test('a layer lists its entries in byte order with every parent directory, root-owned, at the fixed mtime', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vk-layer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'script');
  await writeFile(script, '#!/bin/sh\n', { mode: 0o700 });
  const entries: LayerEntry[] = [
    { path: 'usr/local/bin/tool', type: 'file', mode: 0o700, source: script },
    { path: 'etc/passwd', type: 'file', mode: 0o600, content: Buffer.from('root:x:0:0::/:/x\n') },
    { path: 'tmp', type: 'directory', mode: 0o1777 },
    { path: 'home/nonroot', type: 'directory', owner: 65532 },
    { path: 'usr/bin/sh', type: 'symlink', target: '../local/bin/tool' },
    { path: 'Z-upper', type: 'file', mode: 0o644, content: Buffer.alloc(0) },
  ];
  const written = await writeLayer(entries, path.join(dir, 'layer.tar.gz'), new Date(0));
  const listed = await listTar(path.join(dir, 'layer.tar.gz'));
  assert.deepEqual(
    listed.map((e) => `${e.type} ${e.name} ${e.mode.toString(8)} ${e.uid}`),
    [
      'file Z-upper 644 0',
      'directory etc/ 755 0',
      'file etc/passwd 644 0',
      'directory home/ 755 0',
      'directory home/nonroot/ 755 65532',
      'directory tmp/ 1777 0',
      'directory usr/ 755 0',
      'directory usr/bin/ 755 0',
      'symlink usr/bin/sh 777 0',
      'directory usr/local/ 755 0',
      'directory usr/local/bin/ 755 0',
      'file usr/local/bin/tool 755 0',
    ],
  );
  assert.ok(listed.every((e) => e.mtime === 0));
  assert.match(written.digest, /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(written.digest, written.diffId);
  assert.equal(written.size, (await readFile(path.join(dir, 'layer.tar.gz'))).length);
});

test("the same entries give the same digest whatever the source files' times and the order given", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vk-layer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = path.join(dir, 'a');
  await writeFile(a, 'same bytes\n');
  const entries: LayerEntry[] = [
    { path: 'app/a', type: 'file', mode: 0o644, source: a },
    { path: 'app/b', type: 'file', mode: 0o644, content: Buffer.from('b\n') },
  ];
  const first = await writeLayer(entries, path.join(dir, 'one'), new Date(0));
  await utimes(a, new Date(), new Date(Date.now() + 86_400_000));
  const second = await writeLayer([...entries].reverse(), path.join(dir, 'two'), new Date(0));
  assert.deepEqual(second, first);
  const later = await writeLayer(entries, path.join(dir, 'three'), new Date(1_700_000_000_000));
  assert.notEqual(later.digest, first.digest, 'the mtime is part of the content');
});

test('entries outside the image, given twice, or under a file are refused', () => {
  assert.throws(() => completeEntries([{ path: '../etc/passwd', type: 'directory' }]), /not inside the image/);
  assert.throws(
    () =>
      completeEntries([
        { path: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(0) },
        { path: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(0) },
      ]),
    /given twice/,
  );
  assert.throws(
    () =>
      completeEntries([
        { path: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(0) },
        { path: 'a/b', type: 'file', mode: 0o644, content: Buffer.alloc(0) },
      ]),
    /parent of "a\/b" but not a directory/,
  );
});
