// Claims real interfaces on this host (root only), never the machine's own. The tests use their own
// prefix and half of the range, so that a `vk up` or test control plane running meanwhile (vkapi<n>,
// 10.214.<n>.1) and these tests do not take each other's slots.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { claimHostAddress, type HostAddress } from './host-address.ts';

const skip = process.getuid?.() !== 0 ? 'creating interfaces needs root' : undefined;
const OWN = { interfacePrefix: 'vkapit', range: '10.214.128.0/17' };

function links(): { ifname: string; address: string; operstate: string; addr_info: { local: string; prefixlen: number }[] }[] {
  return JSON.parse(execFileSync('ip', ['-j', 'addr', 'show'], { encoding: 'utf8' }));
}

function removeLink(name: string): void {
  try {
    execFileSync('ip', ['link', 'del', 'dev', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

function link(name: string) {
  return links().find((l) => l.ifname === name);
}

async function claim(): Promise<HostAddress> {
  const notes: string[] = [];
  const claimed = await claimHostAddress({ ...OWN, note: (line) => notes.push(line) });
  assert.ok(claimed, `claimed (notes: ${notes.join('; ')})`);
  return claimed;
}

test('a claim creates vkapi<n> with one /32 that this host answers on; release removes it', { skip }, async (t) => {
  const claimed = await claim();
  t.after(() => claimed.release());
  assert.match(claimed.interfaceName, /^vkapit\d+$/);
  const n = Number(claimed.interfaceName.slice('vkapit'.length));
  assert.equal(claimed.address, `10.214.${128 + n}.1`);
  const created = link(claimed.interfaceName);
  assert.ok(created, 'the interface exists');
  assert.deepEqual(
    created.addr_info.filter((a) => a.local.includes('.')).map((a) => `${a.local}/${a.prefixlen}`),
    [`${claimed.address}/32`],
  );
  assert.equal(created.address, `02:76:${[24, 16, 8, 0].map((s) => ((process.pid >>> s) & 255).toString(16).padStart(2, '0')).join(':')}`);

  const server = net.createServer((socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, claimed.address, resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, claimed.address);
    let data = '';
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
  assert.equal(answer, 'hello');
  server.close();

  await claimed.release();
  assert.equal(link(claimed.interfaceName), undefined, 'gone after release');
  await claimed.release(); // a second release is a no-op
});

test('two claims get different interfaces and addresses, also with different prefixes', { skip }, async (t) => {
  const a = await claim();
  t.after(() => a.release());
  const b = await claim();
  t.after(() => b.release());
  assert.notEqual(a.interfaceName, b.interfaceName);
  assert.notEqual(a.address, b.address);
  // Another prefix on the same range: the slots' names are free, their addresses are not.
  const c = await claimHostAddress({ ...OWN, interfacePrefix: 'vkapiu' });
  assert.ok(c);
  t.after(() => c.release());
  assert.ok(![a.address, b.address].includes(c.address), `${c.address} is new`);
});

test("a crashed run's interface (owner gone) is taken over; a live owner's or a stranger's is skipped", { skip }, async (t) => {
  // Find the slot the next claim takes, then occupy it and the one after it.
  const probe = await claim();
  const first = Number(probe.interfaceName.slice('vkapit'.length));
  await probe.release();

  const dead = spawn(process.execPath, ['-e', '']);
  const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
  const mac = (pid: number) => `02:76:${[24, 16, 8, 0].map((s) => ((pid >>> s) & 255).toString(16).padStart(2, '0')).join(':')}`;
  const occupy = (name: string, address?: string) => {
    execFileSync('ip', ['link', 'add', 'name', name, ...(address ? ['address', address] : []), 'type', 'bridge']);
    t.after(() => removeLink(name));
  };
  const stale = `vkapit${first}`;
  execFileSync('ip', ['link', 'add', 'name', stale, 'address', mac(deadPid), 'type', 'bridge']);
  t.after(() => removeLink(stale));
  occupy(`vkapit${first + 1}`, mac(1)); // pid 1 is alive
  occupy(`vkapit${first + 2}`); // a random MAC: not ours to judge

  const reclaimed = await claim();
  assert.equal(reclaimed.interfaceName, stale, 'the stale slot is reused');
  assert.equal(link(stale)?.address, mac(process.pid), 'now owned by this process');
  assert.equal(link(`vkapit${first}gc`), undefined, 'the reaping lock is gone');

  const next = await claim();
  t.after(() => next.release());
  assert.equal(next.interfaceName, `vkapit${first + 3}`, "the live owner's and the stranger's slots are skipped");
  assert.ok(link(`vkapit${first + 1}`) && link(`vkapit${first + 2}`), 'both left alone');
  await reclaimed.release();
});

test('a range that overlaps an address of this host is refused with a note; a malformed one is a config error', { skip }, async () => {
  const notes: string[] = [];
  assert.equal(await claimHostAddress({ range: '127.0.0.0/8', note: (line) => notes.push(line) }), undefined);
  assert.match(notes.join('\n'), /127\.0\.0\.0\/8 overlaps 127\.0\.0\.1\/8 on lo/);
  await assert.rejects(claimHostAddress({ range: '10.214.0.0/25' }), { code: 'VK_CONFIG' });
  await assert.rejects(claimHostAddress({ interfacePrefix: 'eth' }), { code: 'VK_CONFIG' });
  await assert.rejects(claimHostAddress({ range: 'ten' }), { code: 'VK_CONFIG' });
  assert.equal(
    links().some((l) => l.ifname.startsWith('vkapi') && l.addr_info.some((a) => a.local.startsWith('127.'))),
    false,
  );
});

test('without CAP_NET_ADMIN there is no claim, only a note', { skip }, () => {
  const module = path.join(import.meta.dirname, 'host-address.ts');
  const script = `import(${JSON.stringify(module)}).then(async (m) => { const notes = []; const r = await m.claimHostAddress({ ...${JSON.stringify(OWN)}, note: (l) => notes.push(l) }); console.log(JSON.stringify({ claimed: r ?? null, notes })); })`;
  const out = execFileSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, '-e', script], { encoding: 'utf8' });
  const result = JSON.parse(out) as { claimed: unknown; notes: string[] };
  assert.equal(result.claimed, null);
  assert.equal(result.notes.length, 1);
  assert.match(result.notes[0]!, /needs root or CAP_NET_ADMIN.*Operation not permitted/);
});
