import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ResolvedPod } from '../provider.ts';
import { RetiredLogs } from './retired.ts';
import { containerMounts, podHostname, VolumeMountError, writeFilesVolume, writePodEtc, writeVolumes } from './volumes.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sbx-vol-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('file volumes are written atomically through ..data, with their modes, and updated in place', async (t) => {
  const dir = path.join(tmp(t), 'cfg');
  await writeFilesVolume(dir, [
    { path: 'a.txt', content: Buffer.from('one'), mode: 0o644 },
    { path: 'sub/b.txt', content: Buffer.from('two'), mode: 0o400 },
  ]);
  assert.equal(readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'one');
  assert.equal(readlinkSync(path.join(dir, 'a.txt')), '..data/a.txt');
  assert.equal(statSync(path.join(dir, 'sub/b.txt')).mode & 0o777, 0o400);
  const first = readlinkSync(path.join(dir, '..data'));

  await writeFilesVolume(dir, [{ path: 'a.txt', content: Buffer.from('changed'), mode: 0o644 }]);
  assert.equal(readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'changed');
  assert.notEqual(readlinkSync(path.join(dir, '..data')), first);
  assert.throws(() => lstatSync(path.join(dir, 'sub')), /ENOENT/, 'entries gone from the volume are removed');
  assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('..') && n !== '..data').length, 1, 'the old data directory is removed');
});

test('mounts: volumes by name, subPath inside the volume, readOnly, parents first; unknown volume types fail', async (t) => {
  const podDir = tmp(t);
  const resolved: ResolvedPod = {
    pod: {
      metadata: { name: 'p' },
      spec: {
        containers: [],
        volumes: [
          { name: 'host', hostPath: { path: '/srv' } },
          { name: 'pvc', persistentVolumeClaim: { claimName: 'x' } },
        ],
      },
    },
    volumes: new Map([
      ['work', { name: 'work', type: 'emptyDir', medium: '' }],
      ['cfg', { name: 'cfg', type: 'files', source: 'configMap', files: [{ path: 'app.conf', content: Buffer.from('x=1'), mode: 0o644 }] }],
    ]),
  };
  await writeVolumes(podDir, resolved.volumes);
  assert.equal(statSync(path.join(podDir, 'volumes/work')).mode & 0o777, 0o777);
  const mounts = await containerMounts(podDir, resolved, {
    name: 'c',
    volumeMounts: [
      { name: 'cfg', mountPath: '/etc/app/app.conf', subPath: 'app.conf', readOnly: true },
      { name: 'work', mountPath: '/work' },
      { name: 'work', mountPath: '/data/logs', subPath: 'logs' },
      { name: 'host', mountPath: '/srv' },
    ],
  });
  assert.deepEqual(mounts, [
    { source: path.join(podDir, 'volumes/work'), destination: '/work', readOnly: false },
    { source: '/srv', destination: '/srv', readOnly: false },
    { source: path.join(podDir, 'volumes/work/logs'), destination: '/data/logs', readOnly: false },
    { source: path.join(podDir, 'subpaths/c/0'), destination: '/etc/app/app.conf', readOnly: true },
  ]);
  assert.ok(statSync(path.join(podDir, 'volumes/work/logs')).isDirectory(), 'a missing subPath is created');
  // A subPath into a file volume is a fixed copy of that file (same inode): the next update of the volume leaves it be.
  const pinned = path.join(podDir, 'subpaths/c/0');
  assert.equal(statSync(pinned).ino, statSync(path.join(podDir, 'volumes/cfg', readlinkSync(path.join(podDir, 'volumes/cfg/..data')), 'app.conf')).ino);
  await writeVolumes(
    podDir,
    new Map([['cfg', { name: 'cfg', type: 'files', source: 'configMap', files: [{ path: 'app.conf', content: Buffer.from('x=2'), mode: 0o644 }] }]]),
  );
  assert.equal(readFileSync(path.join(podDir, 'volumes/cfg/app.conf'), 'utf8'), 'x=2');
  assert.equal(readFileSync(pinned, 'utf8'), 'x=1');
  await assert.rejects(containerMounts(podDir, resolved, { name: 'c', volumeMounts: [{ name: 'pvc', mountPath: '/x' }] }), VolumeMountError);
});

test('hosts, hostname and resolv.conf of the pod', async (t) => {
  const podDir = tmp(t);
  const pod = {
    metadata: { name: 'web-0', namespace: 'ns' },
    spec: { containers: [], subdomain: 'web', hostAliases: [{ ip: '10.1.1.1', hostnames: ['db'] }] },
  };
  const files = await writePodEtc(podDir, pod, '10.215.0.6', 'nameserver 1.1.1.1\n', 'cluster.local');
  assert.equal(readFileSync(files.hostname, 'utf8'), 'web-0\n');
  const hosts = readFileSync(files.hosts, 'utf8');
  assert.match(hosts, /^10\.215\.0\.6\tweb-0\.web\.ns\.svc\.cluster\.local\tweb-0$/m);
  assert.match(hosts, /^10\.1\.1\.1\tdb$/m);
  assert.equal(podHostname({ metadata: { name: 'a' }, spec: { containers: [], hostname: 'custom' } }), 'custom');
  assert.equal(readFileSync(files.resolv, 'utf8'), 'nameserver 1.1.1.1\n');
});

test("a hostNetwork pod's /etc/hosts is the node's, plus its hostAliases, not a Kubernetes-managed one", async (t) => {
  const podDir = tmp(t);
  const nodeHosts = path.join(podDir, 'node-hosts');
  writeFileSync(nodeHosts, '127.0.0.1\tlocalhost\n192.0.2.7\tnode-a\n');
  const pod = { metadata: { name: 'h', namespace: 'ns' }, spec: { containers: [], hostNetwork: true } };
  const files = await writePodEtc(podDir, pod, '192.0.2.7', '', 'cluster.local', nodeHosts);
  assert.equal(readFileSync(files.hosts, 'utf8'), '127.0.0.1\tlocalhost\n192.0.2.7\tnode-a\n');
  const aliased = { ...pod, spec: { ...pod.spec, hostAliases: [{ ip: '10.1.1.1', hostnames: ['db', 'cache'] }] } };
  const withAliases = readFileSync((await writePodEtc(podDir, aliased, '192.0.2.7', '', 'cluster.local', nodeHosts)).hosts, 'utf8');
  assert.equal(withAliases, '127.0.0.1\tlocalhost\n192.0.2.7\tnode-a\n\n# Entries added by HostAliases.\n10.1.1.1\tdb\tcache\n');
});

test('retired logs are bounded in number and survive a reload', (t) => {
  const root = tmp(t);
  const logs = new RetiredLogs(root, 2);
  for (const i of [1, 2, 3]) {
    const uid = `u${i}`;
    const dir = logs.dirFor(uid);
    rmSync(dir, { recursive: true, force: true });
    // what SandboxPod.delete leaves behind
    mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const meta = { namespace: 'ns', name: `p${i}`, uid, at: Date.now() + i, containers: { c: { logAttempt: 0 } }, pod: { metadata: { name: `p${i}` } } };
    writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta));
    logs.load(uid);
  }
  assert.equal(logs.get('ns', 'p1'), undefined, 'the oldest went over the limit');
  assert.equal(logs.get('ns', 'p3')?.uid, 'u3');
  const again = new RetiredLogs(root, 2);
  assert.deepEqual(
    again
      .all()
      .map((p) => p.name)
      .sort(),
    ['p2', 'p3'],
  );
  again.forget('ns', 'p2');
  assert.equal(new RetiredLogs(root, 2).get('ns', 'p2'), undefined);
});
