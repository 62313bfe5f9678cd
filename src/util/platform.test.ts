import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goArch } from './platform.ts';

test('goArch maps Node names to GOARCH', () => {
  assert.equal(goArch('x64'), 'amd64');
  assert.equal(goArch('arm64'), 'arm64');
  assert.equal(goArch('ia32'), '386');
  assert.equal(goArch('ppc64'), 'ppc64le');
  assert.equal(goArch('s390x'), 's390x');
});
