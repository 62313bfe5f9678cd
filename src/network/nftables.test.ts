import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { createLogger } from '../log.ts';
import { NftTable } from './nftables.ts';

/** A stand-in for nft that records each script it is given (slowly, so replacements pile up). */
function fakeNft(t: { after(fn: () => void): void }, exitCode = 0): { bin: string; scripts: () => string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-fake-nft-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'log');
  writeFileSync(log, '');
  const bin = path.join(dir, 'nft');
  writeFileSync(bin, `#!/bin/sh\nif [ "$1" = "-f" ]; then { cat; echo "--end--"; } >> ${log}; sleep 0.1; else echo "$@" >> ${log}; fi\nexit ${exitCode}\n`);
  chmodSync(bin, 0o755);
  return { bin, scripts: () => readFileSync(log, 'utf8').split('--end--\n').filter(Boolean) };
}

test('replacements run one at a time; while one runs, only the newest waiting script runs next', async (t) => {
  const nft = fakeNft(t);
  const table = new NftTable(nft.bin, 'vk_test', createLogger('silent'));
  const all = Promise.all(['one\n', 'two\n', 'three\n', 'four\n'].map((s) => table.replace(s)));
  await all;
  assert.deepEqual(nft.scripts(), ['one\n', 'four\n']);
  assert.equal(table.applied, 2);
});

test('a failed replacement rejects its callers; remove() deletes the table', async (t) => {
  const failing = fakeNft(t, 1);
  await assert.rejects(new NftTable(failing.bin, 'vk_test', createLogger('silent')).replace('x\n'), /exited 1/);
  const nft = fakeNft(t);
  await new NftTable(nft.bin, 'vk_test', createLogger('silent')).remove();
  assert.deepEqual(nft.scripts(), ['delete table ip vk_test\n']);
});
