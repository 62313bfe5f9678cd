import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { resolveUser, UserResolveError } from './user.ts';

const root = await mkdtemp(path.join(tmpdir(), 'vk-user-'));
after(() => rm(root, { recursive: true, force: true }));
await mkdir(path.join(root, 'etc'));
await writeFile(path.join(root, 'etc/passwd'), '# comment\nroot:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken line\n');
await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nstaff:x:50:\n');

test('names resolve through passwd and group; primary and supplementary groups', async () => {
  assert.deepEqual(await resolveUser(root, { userName: 'app' }), { uid: 1000, gid: 1000, additionalGids: [10], home: '/home/app', userName: 'app' });
  assert.deepEqual(await resolveUser(root, { uid: 1000, groupName: 'staff' }), {
    uid: 1000,
    gid: 50,
    additionalGids: [10],
    home: '/home/app',
    userName: 'app',
  });
  assert.deepEqual(await resolveUser(root, {}), { uid: 0, gid: 0, additionalGids: [], home: '/root', userName: 'root' });
  assert.deepEqual(await resolveUser(root, { uid: 4242 }), { uid: 4242, gid: 0, additionalGids: [], home: undefined, userName: undefined });
  assert.deepEqual(await resolveUser(root, { uid: 4242, gid: 7 }), { uid: 4242, gid: 7, additionalGids: [], home: undefined, userName: undefined });
});

test('unknown names are errors like runc reports them', async () => {
  await assert.rejects(
    resolveUser(root, { userName: 'ghost' }),
    (err: unknown) => err instanceof UserResolveError && err.message === 'unable to find user ghost: no matching entries in passwd file',
  );
  await assert.rejects(resolveUser(root, { uid: 0, groupName: 'ghosts' }), /unable to find group ghosts/);
});

test('an /etc/passwd symlink pointing outside the rootfs is read inside it', async () => {
  const other = await mkdtemp(path.join(tmpdir(), 'vk-user-esc-'));
  after(() => rm(other, { recursive: true, force: true }));
  await mkdir(path.join(other, 'etc'));
  await mkdir(path.join(other, 'real'));
  await writeFile(path.join(other, 'real/passwd'), 'inside:x:5:5::/:/bin/sh\n');
  await symlink('/real/passwd', path.join(other, 'etc/passwd')); // would be the host's /real/passwd if followed naively
  assert.equal((await resolveUser(other, { userName: 'inside' })).uid, 5);
  await rm(path.join(other, 'etc/passwd'));
  await symlink('../../../../../../etc/passwd', path.join(other, 'etc/passwd'));
  await assert.rejects(
    resolveUser(other, { userName: 'root' }),
    /too many levels of symbolic links/,
    'resolves to itself inside the rootfs, never to the host file',
  );
});
