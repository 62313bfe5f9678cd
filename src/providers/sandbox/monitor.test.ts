// The container monitor (monitor/monitor.c) as built for the provider, run on plain shell
// commands: the state and exit files, the CRI log (compared with cri-log.ts's reference writer),
// rotation, start errors, the attach socket, the sandboxed child's watch and TTY resize.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from '../../../test/harness/wait.ts';
import { CriLogWriter, MAX_LINE, parseCriLine, rotatedFiles } from './cri-log.ts';
import { monitorBinary } from './monitor-build.ts';
import {
  encodeSpec,
  FRAME_EXIT,
  FRAME_RESIZE,
  FRAME_STDIN,
  FRAME_STDIN_EOF,
  FRAME_STDOUT,
  FrameReader,
  frame,
  type ShimExit,
  type ShimSpec,
  type ShimState,
} from './shim.ts';

interface Run {
  spec: ShimSpec;
  pid: number;
  exited: Promise<number | null>;
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-monitor-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function runMonitor(dir: string, script: string, options: Partial<ShimSpec> = {}): Promise<Run> {
  const spec: ShimSpec = {
    argv: ['/bin/sh', '-c', script],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', INFO: path.join(dir, 'info.json') },
    tty: false,
    stdin: false,
    stdinOnce: false,
    logFile: path.join(dir, '0.log'),
    logMaxBytes: 1 << 20,
    logMaxFiles: 2,
    socket: path.join(dir, 'attach.sock'),
    stateFile: path.join(dir, 'state.json'),
    exitFile: path.join(dir, 'exit.json'),
    ...options,
  };
  const specFile = path.join(dir, 'monitor-spec');
  writeFileSync(specFile, encodeSpec(spec));
  const child = spawn(await monitorBinary(), [specFile], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { spec, pid: child.pid!, exited };
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
/** The log's records without their times: "stream tag content". */
const records = (file: string) =>
  readFileSync(file)
    .toString('latin1')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const rec = parseCriLine(Buffer.from(line, 'latin1'));
      assert.ok(rec, `a CRI record: ${line.slice(0, 80)}`);
      return `${rec.stream} ${rec.partial ? 'P' : 'F'} ${rec.content.toString('latin1')}`;
    });

test('state, exit and CRI log files: lines per stream, unterminated output at the end, exit code, nanosecond times', async (t) => {
  const dir = tmp(t);
  const run = await runMonitor(dir, 'echo hello; printf par; echo oops >&2; printf t; exit 3');
  assert.equal(await run.exited, 0);
  const state = readJson<ShimState>(run.spec.stateFile);
  assert.equal(state.shimPid, run.pid);
  assert.ok(state.pid > 0);
  const exit = readJson<ShimExit>(run.spec.exitFile);
  assert.equal(exit.exitCode, 3);
  assert.equal(exit.signal, undefined);
  assert.equal(exit.startError, undefined);
  assert.equal(exit.startedAt, state.startedAt);
  assert.ok(Date.parse(exit.finishedAt) >= Date.parse(exit.startedAt));
  assert.deepEqual(records(run.spec.logFile), ['stdout F hello', 'stderr F oops', 'stdout F part']);
  for (const line of readFileSync(run.spec.logFile, 'utf8').trimEnd().split('\n'))
    assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [FP] /);
  assert.equal(existsSync(run.spec.socket), false, 'the socket is removed at the end');
});

test('long lines become P records and the log rotates by size as the reference writer does', async (t) => {
  const dir = tmp(t);
  const long = 'x'.repeat(MAX_LINE * 2 + 100);
  const run = await runMonitor(dir, `printf '%s\\n' '${long}'; i=0; while [ $i -lt 60 ]; do echo "line $i"; i=$((i+1)); done`, {
    logMaxBytes: 600,
    logMaxFiles: 3,
  });
  assert.equal(await run.exited, 0);
  const reference = path.join(dir, 'reference.log');
  const w = new CriLogWriter(reference, { maxBytes: Number.MAX_SAFE_INTEGER, maxFiles: 1 });
  w.write('stdout', Buffer.from(`${long}\n`));
  for (let i = 0; i < 60; i++) w.write('stdout', Buffer.from(`line ${i}\n`));
  w.close();
  // Rotation points depend on the records' lengths (times drop trailing zeros), so: the same
  // records, the newest kept; the live file and two rotated ones, each rotated one just past 600 bytes.
  const rotated = rotatedFiles(run.spec.logFile);
  assert.deepEqual(rotated, [`${run.spec.logFile}.1`, `${run.spec.logFile}.2`]);
  const kept = [...rotated].reverse().concat(run.spec.logFile).flatMap(records);
  const all = records(reference);
  assert.deepEqual(kept, all.slice(all.length - kept.length));
  assert.equal(kept.at(-1), 'stdout F line 59');
  assert.ok(kept.length < all.length, 'the oldest rotated away');
  for (const file of rotated) {
    const size = readFileSync(file).length;
    assert.ok(size >= 600 && size < 600 + 60, `${file}: ${size} bytes`);
  }

  const dir2 = tmp(t);
  const partial = await runMonitor(dir2, `printf '%s\\n' '${long}'`);
  await partial.exited;
  assert.deepEqual(
    records(partial.spec.logFile).map((r) => `${r.slice(0, 8)}${r.length - 9}`),
    [`stdout P${MAX_LINE}`, `stdout P${MAX_LINE}`, 'stdout F100'],
  );
});

test('a command that cannot run is a start error: spawn errors and bwrap execvp errors', async (t) => {
  const dir = tmp(t);
  const run = await runMonitor(dir, '', { argv: ['/nonexistent/command'] });
  assert.equal(await run.exited, 0);
  const exit = readJson<ShimExit>(run.spec.exitFile);
  assert.equal(exit.exitCode, 128);
  assert.equal(exit.startError, 'failed to start /nonexistent/command: spawn /nonexistent/command ENOENT');
  assert.equal(existsSync(run.spec.stateFile), false, 'never started: no state file');

  const dir2 = tmp(t);
  const bwrap = await runMonitor(dir2, 'echo "bwrap: execvp nope: No such file or directory" >&2; echo "after" >&2; exit 1');
  await bwrap.exited;
  const exit2 = readJson<ShimExit>(bwrap.spec.exitFile);
  assert.equal(exit2.exitCode, 128);
  assert.equal(exit2.startError, 'execvp nope: No such file or directory');
  assert.deepEqual(records(bwrap.spec.logFile), ['stderr F after'], "bwrap's line is not container output");
});

test('a command killed by a signal: 128 + the signal, and its name', async (t) => {
  const dir = tmp(t);
  const run = await runMonitor(dir, 'kill -TERM $$');
  await run.exited;
  const exit = readJson<ShimExit>(run.spec.exitFile);
  assert.equal(exit.exitCode, 143);
  assert.equal(exit.signal, 'SIGTERM');
});

/** Connects to the monitor's attach socket; `frames` collects what it sends. */
async function attach(socketPath: string) {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new FrameReader();
  const frames: { type: number; payload: Buffer }[] = [];
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('data', (chunk: Buffer) => frames.push(...reader.push(chunk)));
  return { socket, frames, closed, stdout: () => Buffer.concat(frames.filter((f) => f.type === FRAME_STDOUT).map((f) => f.payload)).toString() };
}

test('attach: stdin goes to the command, output to every session, stdinOnce closes stdin, the exit comes last', async (t) => {
  const dir = tmp(t);
  const run = await runMonitor(dir, 'while read line; do echo "got $line"; done; echo "stdin closed"; exit 7', { stdin: true, stdinOnce: true });
  await waitFor('the attach socket', () => existsSync(run.spec.socket), { timeoutMs: 10_000, intervalMs: 10 });
  const a = await attach(run.spec.socket);
  const b = await attach(run.spec.socket);
  a.socket.write(frame(FRAME_STDIN, 'one\n'));
  await waitFor('the first line echoed to both sessions', () => a.stdout().includes('got one\n') && b.stdout().includes('got one\n'), {
    timeoutMs: 10_000,
    intervalMs: 10,
  });
  a.socket.write(frame(FRAME_STDIN, 'two\n'));
  a.socket.write(frame(FRAME_STDIN_EOF, ''));
  await Promise.all([a.closed, b.closed]);
  assert.equal(await run.exited, 0);
  assert.equal(b.stdout(), 'got one\ngot two\nstdin closed\n');
  const last = b.frames.at(-1)!;
  assert.equal(last.type, FRAME_EXIT);
  assert.deepEqual(JSON.parse(last.payload.toString()), readJson<ShimExit>(run.spec.exitFile));
  assert.equal(readJson<ShimExit>(run.spec.exitFile).exitCode, 7);
  assert.deepEqual(records(run.spec.logFile), ['stdout F got one', 'stdout F got two', 'stdout F stdin closed']);
});

test("the sandboxed child's pid from the info file goes into the state file; once it is gone the command is killed", async (t) => {
  const dir = tmp(t);
  // Like bwrap: the info file names a child; here it ends after a moment while the command would wait 60 s.
  const run = await runMonitor(dir, 'sleep 0.3 & printf \'{\\n    "child-pid": %s\\n}\\n\' $! > "$INFO"; exec sleep 60', {
    infoFile: path.join(dir, 'info.json'),
  });
  const state = await waitFor('the state with childPid', () => readJson<ShimState>(run.spec.stateFile).childPid, { timeoutMs: 10_000, intervalMs: 10 });
  assert.ok(state > 0);
  const started = Date.now();
  await run.exited;
  assert.ok(Date.now() - started < 10_000, 'killed, not waited for');
  const exit = readJson<ShimExit>(run.spec.exitFile);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(exit.exitCode, 137);
});

test('TTY: a resize frame sizes the pty that script made', async (t) => {
  const dir = tmp(t);
  const inner = 'while [ "$(stty size)" != "40 100" ]; do sleep 0.05; done; echo resized; stty size';
  const run = await runMonitor(dir, '', {
    argv: ['/usr/bin/script', '-qfec', `/bin/sh -c '${inner}'`, '/dev/null'],
    tty: true,
    stdin: true,
    stty: '/usr/bin/stty',
  });
  await waitFor('the attach socket', () => existsSync(run.spec.socket), { timeoutMs: 10_000, intervalMs: 10 });
  const a = await attach(run.spec.socket);
  // The first resize may come before script has made its pty: send until it takes.
  await waitFor(
    'the resize applied',
    () => {
      if (a.stdout().includes('resized')) return true;
      a.socket.write(frame(FRAME_RESIZE, JSON.stringify({ width: 100, height: 40 })));
      return false;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  await run.exited;
  assert.match(a.stdout(), /resized\r?\n40 100/);
});
