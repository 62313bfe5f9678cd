import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Descriptor, ImageIndex, Platform } from './manifest.ts';
import { formatPlatform, hostPlatform, parsePlatform, selectPlatformManifest } from './platform.ts';

function entry(n: number, platform?: Platform): Descriptor {
  return {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    size: 1,
    ...(platform ? { platform } : {}),
  };
}

test('hostPlatform maps process.arch to OCI names', () => {
  const p = hostPlatform();
  assert.equal(p.os, 'linux');
  const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm' };
  if (expected[process.arch]) assert.equal(p.architecture, expected[process.arch]);
  if (process.arch === 'arm64') assert.equal(p.variant, 'v8');
});

test('parsePlatform and formatPlatform round-trip', () => {
  assert.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  assert.throws(() => parsePlatform('linux'), /invalid platform/);
  assert.throws(() => parsePlatform('linux/arm/v7/x'), /invalid platform/);
});

test('selectPlatformManifest: exact os/arch, default variants, arm fallbacks, attestations skipped', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      entry(1, { os: 'unknown', architecture: 'unknown' }),
      entry(2, { os: 'linux', architecture: 'amd64' }),
      entry(3, { os: 'linux', architecture: 'arm64' }),
      entry(4, { os: 'linux', architecture: 'arm', variant: 'v6' }),
      entry(5, { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' }),
      entry(6),
    ],
  };
  assert.equal(selectPlatformManifest(index, { os: 'linux', architecture: 'amd64' })?.digest, entry(2).digest);
  assert.equal(selectPlatformManifest(index, { os: 'linux', architecture: 'arm64', variant: 'v8' })?.digest, entry(3).digest, 'no variant means v8 on arm64');
  assert.equal(selectPlatformManifest(index, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, entry(4).digest, 'v7 runs v6');
  assert.equal(selectPlatformManifest(index, { os: 'linux', architecture: 'arm', variant: 'v5' }), undefined, 'v5 cannot run v6');
  assert.equal(selectPlatformManifest(index, { os: 'linux', architecture: 's390x' }), undefined);
  assert.equal(selectPlatformManifest(index, { os: 'windows', architecture: 'amd64' })?.digest, entry(5).digest);

  const both: ImageIndex = {
    schemaVersion: 2,
    manifests: [entry(7, { os: 'linux', architecture: 'arm', variant: 'v6' }), entry(8, { os: 'linux', architecture: 'arm', variant: 'v7' })],
  };
  assert.equal(selectPlatformManifest(both, { os: 'linux', architecture: 'arm', variant: 'v7' })?.digest, entry(8).digest, 'the exact variant is preferred');
});
