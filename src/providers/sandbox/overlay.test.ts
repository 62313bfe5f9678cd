import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { overlayDirs, probeOverlay } from './overlay.ts';

const root = process.getuid?.() === 0;

test('overlayDirs: upper and work beside the mount point', () => {
  assert.deepEqual(overlayDirs('/d/containers/c/0/rootfs', '/img/rootfs'), {
    lower: '/img/rootfs',
    upper: '/d/containers/c/0/upper',
    work: '/d/containers/c/0/work',
  });
});

test('probeOverlay: a test mount works here and leaves nothing; a missing tool is the reason', { skip: !root && 'needs root' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-overlay-'));
  try {
    assert.equal(await probeOverlay({ unshare: 'unshare', busybox: '/bin/busybox' }, dir), undefined);
    assert.match((await probeOverlay({ unshare: 'unshare', busybox: '/nonexistent/busybox' }, dir))!, /an overlayfs mount under .* failed/);
    assert.deepEqual(readdirSync(dir), [], 'the probe removes its directories');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'no mount is left in this namespace');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
