import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { enableUplinkForwarding, restoreUplinkForwarding } from './forwarding.ts';

const root = process.getuid?.() === 0;

test('uplink forwarding: turned on where off, remembered across a crash, turned off again on restore', { skip: !root && 'needs root' }, (t) => {
  const link = `vkf${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`]);
  t.after(() => execFileSync('ip', ['link', 'del', link]));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-forwarding-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const flag = () => readFileSync(`/proc/sys/net/ipv4/conf/${link}/forwarding`, 'utf8').trim();
  const stateFile = path.join(dir, 'uplink-forwarding.json');
  assert.equal(flag(), '0');

  return (async () => {
    const first = await enableUplinkForwarding([link], stateFile);
    assert.deepEqual(first.turnedOn, [link]);
    assert.equal(flag(), '1');
    // A crash: no restore. The next start finds the flag on, and knows from the state file it was ours.
    const second = await enableUplinkForwarding([link], stateFile);
    assert.deepEqual(second.turnedOn, [link], 'still guarded and still ours to undo');
    await second.restore();
    assert.equal(flag(), '0');
    assert.equal(existsSync(stateFile), false);
    // A crash, then no restart: `vk down` undoes the flags from the state file alone.
    await enableUplinkForwarding([link], stateFile);
    assert.equal(flag(), '1');
    assert.deepEqual(await restoreUplinkForwarding(stateFile), [link]);
    assert.equal(flag(), '0');
    assert.deepEqual(await restoreUplinkForwarding(stateFile), [], 'nothing left to undo');
    // An uplink that forwarded already is left alone (and not guarded).
    execFileSync('sh', ['-c', `echo 1 > /proc/sys/net/ipv4/conf/${link}/forwarding`]);
    const third = await enableUplinkForwarding([link], stateFile);
    assert.deepEqual(third.turnedOn, []);
    await third.restore();
    assert.equal(flag(), '1');
  })();
});

test('uplink names are checked before they reach /proc', async () => {
  await assert.rejects(enableUplinkForwarding(['../../etc'], path.join(os.tmpdir(), 'unused.json')), /invalid interface name/);
});
