import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../../test/harness/cluster.ts';
import { CriLogWriter, formatRfc3339Nano, MAX_LINE, parseCriLine, parseRfc3339Nano, readCriLog, rotatedFiles, type ReadLogOptions } from './cri-log.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cri-log-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function collect(file: string, options: Partial<ReadLogOptions>): Promise<string> {
  let out = '';
  for await (const chunk of readCriLog(file, { follow: false, timestamps: false, signal: new AbortController().signal, finished: () => true, ...options }))
    out += chunk.toString();
  return out;
}

/** A clock that moves one second per record. */
function clock(start = '2026-01-02T03:04:05Z'): () => bigint {
  let ns = BigInt(Date.parse(start)) * 1_000_000n;
  return () => (ns += 1_000_000_000n);
}

test('RFC3339Nano like Go: trailing zeros dropped, parse round-trips', () => {
  const ns = BigInt(Date.parse('2026-01-02T03:04:05Z')) * 1_000_000n + 120_000_000n;
  assert.equal(formatRfc3339Nano(ns), '2026-01-02T03:04:05.12Z');
  assert.equal(formatRfc3339Nano(ns - 120_000_000n), '2026-01-02T03:04:05Z');
  assert.equal(parseRfc3339Nano('2026-01-02T03:04:05.12Z'), ns);
  assert.equal(parseRfc3339Nano('2026-01-02T04:04:05.12+01:00'), ns);
  assert.equal(parseRfc3339Nano('yesterday'), undefined);
});

test('parses records, including empty lines and malformed ones', () => {
  const rec = parseCriLine(Buffer.from('2026-01-02T03:04:05.5Z stderr P partial text'));
  assert.equal(rec?.stream, 'stderr');
  assert.equal(rec?.partial, true);
  assert.equal(rec?.content.toString(), 'partial text');
  assert.equal(parseCriLine(Buffer.from('2026-01-02T03:04:05Z stdout F'))?.content.length, 0);
  assert.equal(parseCriLine(Buffer.from('garbage')), undefined);
  assert.equal(parseCriLine(Buffer.from('2026-01-02T03:04:05Z stdin F x')), undefined);
});

test('the writer splits output into lines per stream, long lines into P records, and flushes at close', (t) => {
  const file = path.join(tmp(t), '0.log');
  const w = new CriLogWriter(file, { maxBytes: 1 << 20, maxFiles: 2, now: clock() });
  w.write('stdout', Buffer.from('hello\nwor'));
  w.write('stderr', Buffer.from('oops\n'));
  w.write('stdout', Buffer.from('ld\n'));
  w.write('stdout', Buffer.from('x'.repeat(MAX_LINE + 10) + '\n'));
  w.write('stdout', Buffer.from('no newline'));
  w.close();
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(' ').slice(1, 3).join(' ')),
    ['stdout F', 'stderr F', 'stdout F', 'stdout P', 'stdout F', 'stdout F'],
  );
  assert.equal(lines[0], '2026-01-02T03:04:06Z stdout F hello');
  assert.equal(lines[2], '2026-01-02T03:04:08Z stdout F world');
  assert.equal(lines[5]!.endsWith('F no newline'), true);
});

test('rotation keeps maxFiles files and the reader reads them oldest first', async (t) => {
  const file = path.join(tmp(t), '0.log');
  const w = new CriLogWriter(file, { maxBytes: 200, maxFiles: 3, now: clock() });
  for (let i = 0; i < 30; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
  w.close();
  assert.equal(rotatedFiles(file).length, 2);
  const text = await collect(file, {});
  const numbers = text
    .trimEnd()
    .split('\n')
    .map((l) => Number(l.split(' ')[1]));
  assert.equal(numbers.at(-1), 29);
  assert.deepEqual(
    numbers,
    [...numbers].sort((a, b) => a - b),
    'in order',
  );
  assert.ok(numbers.length < 30, 'the oldest rotated away');
});

test('tail, since, timestamps and limitBytes', async (t) => {
  const file = path.join(tmp(t), '0.log');
  const w = new CriLogWriter(file, { maxBytes: 1 << 20, maxFiles: 1, now: clock('2026-01-02T03:04:00Z') });
  for (let i = 1; i <= 5; i++) w.write('stdout', Buffer.from(`l${i}\n`));
  w.close();
  assert.equal(await collect(file, { tailLines: 2 }), 'l4\nl5\n');
  assert.equal(await collect(file, { tailLines: 0 }), '');
  assert.equal(await collect(file, { sinceTime: new Date('2026-01-02T03:04:04Z') }), 'l4\nl5\n');
  assert.equal(await collect(file, { tailLines: 1, timestamps: true }), '2026-01-02T03:04:05Z l5\n');
  assert.equal(await collect(file, { limitBytes: 4 }), 'l1\nl');
});

test('follow returns new records until the instance has finished, across a rotation', async (t) => {
  const file = path.join(tmp(t), '0.log');
  const w = new CriLogWriter(file, { maxBytes: 120, maxFiles: 2 });
  w.write('stdout', Buffer.from('first\n'));
  let finished = false;
  const reader = readCriLog(file, { follow: true, timestamps: false, signal: new AbortController().signal, finished: () => finished, pollMs: 5 });
  let text = '';
  const done = (async () => {
    for await (const chunk of reader) text += chunk.toString();
  })();
  // Each line is seen before the next is written, so the reader is never more than one rotation behind.
  for (let i = 0; i < 10; i++) {
    w.write('stdout', Buffer.from(`more ${i}\n`));
    await waitFor(`line ${i} while following`, () => text.includes(`more ${i}\n`), { timeoutMs: 10_000, intervalMs: 5 });
  }
  assert.ok(rotatedFiles(file).length > 0, 'the writer rotated');
  w.close();
  finished = true;
  await done;
  assert.equal(text, `first\n${Array.from({ length: 10 }, (_, i) => `more ${i}\n`).join('')}`);
});

test('a reader several rotations behind reads every file still kept, in order, and only then the live one', async (t) => {
  const file = path.join(tmp(t), '0.log');
  const w = new CriLogWriter(file, { maxBytes: 120, maxFiles: 5 });
  w.write('stdout', Buffer.from('first\n'));
  let finished = false;
  const reader = readCriLog(file, { follow: true, timestamps: false, signal: new AbortController().signal, finished: () => finished, pollMs: 5 });
  // The generator is suspended after its first chunk: everything below is written while it waits.
  assert.equal((await reader.next()).value?.toString(), 'first\n');
  for (let i = 0; i < 9; i++) w.write('stdout', Buffer.from(`more ${i}\n`));
  assert.ok(rotatedFiles(file).length >= 3, `three rotations happened (files: ${rotatedFiles(file).length})`);
  w.close();
  finished = true;
  let text = '';
  for await (const chunk of reader) text += chunk.toString();
  assert.equal(text, Array.from({ length: 9 }, (_, i) => `more ${i}\n`).join(''));
});
