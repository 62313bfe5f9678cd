import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { compress, tarEntries, type TarEntrySpec } from '../../../../test/fixtures/registry/image-builder.ts';
import { digestOf } from './digest.ts';
import { unpackLayer } from './layer.ts';
import { assembleRootfs, cloneRootfs, type LayerDir, resolveInRoot } from './rootfs.ts';

const work = await mkdtemp(path.join(tmpdir(), 'vk-rootfs-'));
after(() => rm(work, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
let n = 0;

async function layer(entries: TarEntrySpec[]): Promise<LayerDir> {
  const tarball = await tarEntries(entries);
  const file = path.join(work, `blob-${n}`);
  await writeFile(file, compress(tarball, 'gzip'));
  const dir = path.join(work, `layer-${n++}`);
  await mkdir(dir);
  const result = await unpackLayer(file, dir, { diffId: digestOf(tarball) });
  return { dir, implicitDirs: result.implicitDirs };
}

async function assemble(...layers: LayerDir[]): Promise<string> {
  const root = path.join(work, `root-${n++}`);
  await mkdir(root);
  await assembleRootfs(root, layers);
  return root;
}

async function tree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(path.join(root, rel))).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = await lstat(path.join(root, p));
    if (st.isDirectory()) out.push(`${p}/`, ...(await tree(root, p)));
    else if (st.isSymbolicLink()) out.push(`${p} -> ${await readlink(path.join(root, p))}`);
    else out.push(`${p} = ${await readFile(path.join(root, p), 'utf8')}`);
  }
  return out;
}

test('layers stack in order: whiteouts delete, opaque directories hide lower content, upper entries win', async () => {
  const base = await layer([
    { path: 'etc/', type: 'directory' },
    { path: 'etc/keep', content: 'keep' },
    { path: 'etc/remove-me', content: 'x' },
    { path: 'etc/replace', content: 'old' },
    { path: 'data/', type: 'directory' },
    { path: 'data/old1', content: '1' },
    { path: 'data/sub/', type: 'directory' },
    { path: 'data/sub/old2', content: '2' },
    { path: 'tree/', type: 'directory' },
    { path: 'tree/deep/', type: 'directory' },
    { path: 'tree/deep/file', content: 'deep' },
    { path: 'was-file', content: 'file' },
    { path: 'was-dir/', type: 'directory' },
    { path: 'was-dir/inner', content: 'inner' },
  ]);
  const upper = await layer([
    { path: 'etc/', type: 'directory' },
    { path: 'etc/.wh.remove-me', content: '' },
    { path: 'etc/replace', content: 'new' },
    { path: 'etc/added', content: 'added' },
    { path: 'data/', type: 'directory' },
    { path: 'data/.wh..wh..opq', content: '' },
    { path: 'data/fresh', content: 'fresh' },
    { path: '.wh.tree', content: '' },
    { path: 'was-file/', type: 'directory' },
    { path: 'was-file/now-dir', content: 'd' },
    { path: 'was-dir', type: 'symlink', target: 'etc' },
  ]);
  const root = await assemble(base, upper);
  assert.deepEqual(await tree(root), [
    'data/',
    'data/fresh = fresh',
    'etc/',
    'etc/added = added',
    'etc/keep = keep',
    'etc/replace = new',
    'was-dir -> etc',
    'was-file/',
    'was-file/now-dir = d',
  ]);
  // The lower layer itself is untouched, and files are shared with it, not copied.
  assert.equal(await readFile(path.join(base.dir, 'etc/replace'), 'utf8'), 'old');
  assert.equal((await lstat(path.join(root, 'etc/keep'))).ino, (await lstat(path.join(base.dir, 'etc/keep'))).ino);
});

test('a whiteout in a layer only hides lower layers: the same layer may re-add the name', async () => {
  const base = await layer([{ path: 'app/config', content: 'v1' }]);
  const upper = await layer([
    { path: 'app/.wh.config', content: '' },
    { path: 'app/config', content: 'v2' },
  ]);
  const root = await assemble(base, upper);
  assert.equal(await readFile(path.join(root, 'app/config'), 'utf8'), 'v2');
});

test('directory metadata: explicit directories take the upper mode and owner, implicit ones keep the lower', async () => {
  const base = await layer([
    { path: 'srv/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
    { path: 'opt/', type: 'directory', mode: 0o711 },
  ]);
  const upper = await layer([
    { path: 'srv/a', content: 'a' },
    { path: 'opt/', type: 'directory', mode: 0o755, uid: 2000, gid: 2000 },
  ]);
  const root = await assemble(base, upper);
  if (isRoot) {
    const srv = await lstat(path.join(root, 'srv'));
    assert.equal(srv.mode & 0o7777, 0o750, 'implicit parent keeps the lower mode');
    assert.equal(srv.uid, 1000);
    const opt = await lstat(path.join(root, 'opt'));
    assert.equal(opt.mode & 0o7777, 0o755);
    assert.equal(opt.uid, 2000);
  }
  assert.equal(await readFile(path.join(root, 'srv/a'), 'utf8'), 'a');
});

test('usr-merge: an implicit directory goes through a lower symlink to a directory inside the rootfs', async () => {
  const base = await layer([
    { path: 'usr/', type: 'directory' },
    { path: 'usr/bin/', type: 'directory' },
    { path: 'usr/bin/ls', content: 'ls' },
    { path: 'bin', type: 'symlink', target: 'usr/bin' },
    { path: 'lib', type: 'symlink', target: '/usr/lib-missing' },
  ]);
  const upper = await layer([
    { path: 'bin/tool', content: 'tool' },
    { path: 'lib/thing', content: 'thing' },
  ]);
  const root = await assemble(base, upper);
  assert.equal(await readlink(path.join(root, 'bin')), 'usr/bin');
  assert.equal(await readFile(path.join(root, 'usr/bin/tool'), 'utf8'), 'tool');
  assert.ok((await lstat(path.join(root, 'lib'))).isDirectory(), 'a dangling symlink is replaced by the directory');
  assert.equal(await readFile(path.join(root, 'lib/thing'), 'utf8'), 'thing');
});

test('resolveInRoot keeps absolute and climbing symlinks inside the root', async () => {
  const root = await assemble(
    await layer([
      { path: 'etc/', type: 'directory' },
      { path: 'up', type: 'symlink', target: '../../../..' },
      { path: 'abs', type: 'symlink', target: '/etc' },
      { path: 'loop', type: 'symlink', target: 'loop' },
    ]),
  );
  assert.equal(await resolveInRoot(root, 'up/etc'), 'etc');
  assert.equal(await resolveInRoot(root, 'abs/passwd'), 'etc/passwd');
  await assert.rejects(resolveInRoot(root, 'loop/x'), /too many levels of symbolic links/);
});

test('cloneRootfs copy: own inodes, same content, modes, owners and symlinks; hardlink groups kept', async () => {
  const src = await assemble(
    await layer([
      { path: 'bin/', type: 'directory', mode: 0o755 },
      { path: 'bin/busybox', content: 'BB', mode: 0o755 },
      { path: 'bin/ash', type: 'link', target: 'bin/busybox' },
      { path: 'bin/sh', type: 'symlink', target: 'busybox' },
      { path: 'home/app/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
      { path: 'home/app/.profile', content: 'p', mode: 0o600, uid: 1000, gid: 1000 },
      { path: 'ro/', type: 'directory', mode: 0o555 },
      { path: 'ro/file', content: 'r', mode: 0o444 },
    ]),
  );
  const dest = path.join(work, 'clone-copy');
  await cloneRootfs(src, dest);
  assert.deepEqual(await tree(dest), await tree(src));
  const a = await lstat(path.join(src, 'bin/busybox'));
  const b = await lstat(path.join(dest, 'bin/busybox'));
  assert.notEqual(a.ino, b.ino, 'copy mode gives the pod its own inodes');
  assert.equal((await lstat(path.join(dest, 'bin/ash'))).ino, b.ino, 'files hardlinked in the image stay hardlinked');
  assert.equal((await lstat(path.join(dest, 'ro'))).mode & 0o7777, isRoot ? 0o555 : 0o755, 'not root: directories stay u+rwx so the store can manage them');
  if (isRoot) {
    const profile = await lstat(path.join(dest, 'home/app/.profile'));
    assert.equal(profile.uid, 1000);
    assert.equal(profile.mode & 0o7777, 0o600);
    assert.equal((await lstat(path.join(dest, 'home/app'))).uid, 1000);
  }
  await writeFile(path.join(dest, 'bin/busybox'), 'changed');
  assert.equal(await readFile(path.join(src, 'bin/busybox'), 'utf8'), 'BB', 'writes in a copy do not reach the image');

  const linked = path.join(work, 'clone-hardlink');
  await cloneRootfs(src, linked, { mode: 'hardlink' });
  assert.deepEqual(await tree(linked), await tree(src));
  assert.equal((await lstat(path.join(linked, 'bin/busybox'))).ino, a.ino, 'hardlink mode shares inodes with the image');
});
