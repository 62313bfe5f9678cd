import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { compress, type Compression, tarEntries, type TarEntrySpec } from '../../../../test/fixtures/registry/image-builder.ts';
import { digestOf } from './digest.ts';
import { LayerError, normalizeEntryPath, sniffCompression, unpackLayer, zstdAvailable } from './layer.ts';

const work = await mkdtemp(path.join(tmpdir(), 'vk-layer-'));
after(() => rm(work, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
let n = 0;

async function blobOf(tarball: Uint8Array, compression: Compression = 'gzip'): Promise<{ file: string; diffId: string }> {
  const file = path.join(work, `blob-${n++}`);
  await writeFile(file, compress(tarball, compression));
  return { file, diffId: digestOf(tarball) };
}

async function unpack(entries: TarEntrySpec[], compression: Compression = 'gzip') {
  const { file, diffId } = await blobOf(await tarEntries(entries), compression);
  const dest = path.join(work, `layer-${n++}`);
  await mkdir(dest);
  return { dest, result: await unpackLayer(file, dest, { diffId }), file, diffId };
}

test('normalizeEntryPath drops leading / and ./, refuses to climb out', () => {
  assert.equal(normalizeEntryPath('./etc/passwd'), 'etc/passwd');
  assert.equal(normalizeEntryPath('/etc//x/'), 'etc/x');
  assert.equal(normalizeEntryPath('a/b/../c'), 'a/c');
  assert.equal(normalizeEntryPath('./'), '');
  assert.equal(normalizeEntryPath('../etc'), undefined);
  assert.equal(normalizeEntryPath('a/../../etc'), undefined);
});

test('files, modes, mtimes, symlinks, hardlinks, whiteouts as files, implicit parents, owners', async () => {
  const mtime = new Date('2020-02-02T02:02:02Z');
  const { dest, result } = await unpack([
    { path: 'etc/', type: 'directory', mode: 0o755 },
    { path: 'etc/motd', content: 'hello\n', mode: 0o640, uid: 1000, gid: 1001, mtime },
    { path: 'bin/tool', content: '#!/bin/sh\n', mode: 0o4755 },
    { path: 'bin/alias', type: 'link', target: 'bin/tool' },
    { path: 'bin/sh', type: 'symlink', target: 'tool' },
    { path: 'abs', type: 'symlink', target: '/etc/motd' },
    { path: 'secret/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000 },
    { path: 'var/lib/.wh.gone', content: '' },
    { path: 'opt/.wh..wh..opq', content: '' },
    { path: 'dev/null', type: 'fifo' },
  ]);
  assert.equal(result.entries, 10);
  assert.deepEqual(result.implicitDirs, ['bin', 'opt', 'var', 'var/lib'], 'skipped entries make no parents');
  assert.deepEqual(result.skipped, [{ path: 'dev/null', type: 'fifo' }]);
  assert.equal(await readFile(path.join(dest, 'etc/motd'), 'utf8'), 'hello\n');
  const motd = await lstat(path.join(dest, 'etc/motd'));
  assert.equal(motd.mtime.getTime(), mtime.getTime());
  const tool = await lstat(path.join(dest, 'bin/tool'));
  assert.equal(tool.ino, (await lstat(path.join(dest, 'bin/alias'))).ino, 'hardlink shares the inode');
  assert.equal(await readlink(path.join(dest, 'bin/sh')), 'tool');
  assert.equal(await readlink(path.join(dest, 'abs')), '/etc/motd', 'absolute symlinks are kept as written');
  assert.ok((await lstat(path.join(dest, 'var/lib/.wh.gone'))).isFile());
  assert.ok((await lstat(path.join(dest, 'opt/.wh..wh..opq'))).isFile());
  if (isRoot) {
    assert.equal(motd.mode & 0o7777, 0o640);
    assert.equal(tool.mode & 0o7777, 0o4755, 'setuid survives chown');
    assert.equal(motd.uid, 1000);
    assert.equal(motd.gid, 1001);
    const secret = await lstat(path.join(dest, 'secret'));
    assert.equal(secret.mode & 0o7777, 0o700);
    assert.equal(secret.uid, 1000);
  }
});

test('uncompressed and zstd layers; the compression is sniffed', async () => {
  const entries: TarEntrySpec[] = [{ path: 'a.txt', content: 'plain' }];
  const plain = await unpack(entries, 'none');
  assert.equal(await sniffCompression(plain.file), 'none');
  assert.equal(await readFile(path.join(plain.dest, 'a.txt'), 'utf8'), 'plain');
  if (zstdAvailable()) {
    const z = await unpack(entries, 'zstd');
    assert.equal(await sniffCompression(z.file), 'zstd');
    assert.equal(await readFile(path.join(z.dest, 'a.txt'), 'utf8'), 'plain');
  }
});

test('a GNU tar archive (long names, record padding) unpacks and verifies', async () => {
  const src = path.join(work, 'gnu-src');
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(70)}.txt`;
  await mkdir(path.join(src, path.dirname(long)), { recursive: true });
  await writeFile(path.join(src, long), 'deep');
  await symlink(long, path.join(src, 'to-long'));
  const tarball = execFileSync('tar', ['-C', src, '--format=gnu', '-cf', '-', '.']);
  assert.equal(tarball.length % 10240, 0, 'GNU tar pads to its record size');
  const { file, diffId } = await blobOf(tarball);
  const dest = path.join(work, 'gnu-dest');
  await mkdir(dest);
  await unpackLayer(file, dest, { diffId });
  assert.equal(await readFile(path.join(dest, long), 'utf8'), 'deep');
  assert.equal(await readlink(path.join(dest, 'to-long')), long);
});

test('a diff_id mismatch is an error', async () => {
  const { file } = await blobOf(await tarEntries([{ path: 'x', content: 'x' }]));
  const dest = path.join(work, 'mismatch');
  await mkdir(dest);
  await assert.rejects(
    unpackLayer(file, dest, { diffId: `sha256:${'0'.repeat(64)}` }),
    (err: unknown) => err instanceof LayerError && /diff_id mismatch: expected sha256:0{64}/.test(err.message),
  );
});

test('unsafe archives are refused: climbing out, writing through a symlink, hardlinks out or through symlinks', async () => {
  const cases: [TarEntrySpec[], RegExp][] = [
    [[{ path: '../evil', content: 'x' }], /points outside the layer/],
    [
      [
        { path: 'escape', type: 'symlink', target: '/tmp' },
        { path: 'escape/evil', content: 'x' },
      ],
      /lies under "escape", which is not a directory/,
    ],
    [[{ path: 'h', type: 'link', target: '../../etc/passwd' }], /hardlink "h" points outside the layer/],
    [[{ path: 'h', type: 'link', target: 'etc/passwd' }], /targets "etc\/passwd", which is not in this layer/],
    [
      [
        { path: 'etc', type: 'symlink', target: '/etc' },
        { path: 'h', type: 'link', target: 'etc/passwd' },
      ],
      /through "etc", which is not a directory/,
    ],
  ];
  for (const [entries, message] of cases) {
    await assert.rejects(unpack(entries), (err: unknown) => err instanceof LayerError && message.test(err.message), String(message));
  }
});

test('a corrupt gzip stream is a LayerError naming the layer', async () => {
  const good = compress(await tarEntries([{ path: 'x', content: 'x'.repeat(10_000) }]), 'gzip');
  const bad = Buffer.concat([good.subarray(0, 20), Buffer.alloc(40, 0xaa)]);
  const file = path.join(work, 'corrupt.gz');
  await writeFile(file, bad);
  const dest = path.join(work, 'corrupt');
  await mkdir(dest);
  await assert.rejects(
    unpackLayer(file, dest, { diffId: `sha256:${'1'.repeat(64)}` }),
    (err: unknown) => err instanceof LayerError && /cannot unpack layer corrupt\.gz \(gzip\)/.test(err.message),
  );
  assert.ok((await readdir(work)).includes('corrupt'));
});
