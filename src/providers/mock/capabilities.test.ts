// The mock provider's kubelet API capabilities: logs, stats, exec (the scripted shell), attach, port-forward.
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable, duplexPair } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import { ContainerStateError, NotFoundError } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import type { ExecStreams, LogOptions } from '../provider.ts';
import { parseMockConfig } from './config.ts';
import { LogModel, logTimestamp } from './logs.ts';
import { ANNOTATION_LOG_LINES, MockProvider, syntheticStats } from './mock-provider.ts';
import { MockShell, ShellSyntaxError, tokenize, type ShellIO } from './shell.ts';
import { makePod as makeHarnessPod, type PodOptions } from '../../../test/harness/pods.ts';
import { waitFor } from '../../../test/harness/wait.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

/** The shared pod builder; these tests' pod is ns/web. */
function makePod(o: PodOptions = {}): Pod {
  return makeHarnessPod({ name: 'web', namespace: 'ns', ...o });
}

/** A provider on a hand-moved clock (no timers needed: every call brings pods up to the clock). */
function clocked(t: TestContext, config: unknown = {}) {
  let now = T0;
  const p = new MockProvider(parseMockConfig(config), { nodeName: 'vk', log: silentLogger, now: () => new Date(now) });
  t.after(() => p.close());
  return { p, advance: (ms: number) => (now += ms), at: () => now };
}

function real(t: TestContext, config: unknown = {}) {
  const p = new MockProvider(parseMockConfig(config), { nodeName: 'vk', log: silentLogger });
  t.after(() => p.close());
  return p;
}

async function text(stream: Readable): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

function logOptions(o: Partial<LogOptions> = {}): LogOptions {
  return { follow: false, previous: false, timestamps: false, signal: new AbortController().signal, ...o };
}

describe('logs', () => {
  test('a start line, the log-lines annotation, then one tick per interval; timestamps, tail, since and limitBytes', async (t) => {
    const { p, advance } = clocked(t);
    await p.createPod({ pod: makePod({ annotations: { [ANNOTATION_LOG_LINES]: 'first custom line\nsecond custom line\n' } }), volumes: new Map() }, call);
    advance(5_500);
    const all = (await text(await p.getContainerLogs('ns', 'web', 'app', logOptions()))).split('\n');
    assert.deepEqual(all, [
      'mock web/app: started (image nginx:1.27, restart 0)',
      'first custom line',
      'second custom line',
      'mock web/app: tick 1',
      'mock web/app: tick 2',
      'mock web/app: tick 3',
      'mock web/app: tick 4',
      'mock web/app: tick 5',
      '',
    ]);
    const stamped = (await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ timestamps: true })))).split('\n');
    assert.equal(stamped[0], '2025-01-01T12:00:00Z mock web/app: started (image nginx:1.27, restart 0)');
    assert.equal(stamped[3], '2025-01-01T12:00:01Z mock web/app: tick 1');
    assert.equal(await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ tailLines: 2 }))), 'mock web/app: tick 4\nmock web/app: tick 5\n');
    assert.equal(await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ tailLines: 0 }))), '');
    assert.equal(
      await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ sinceTime: new Date(T0 + 3000) }))),
      'mock web/app: tick 3\nmock web/app: tick 4\nmock web/app: tick 5\n',
    );
    assert.equal(
      await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ sinceTime: new Date(T0 + 2500), tailLines: 1 }))),
      'mock web/app: tick 5\n',
    );
    assert.equal(await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ limitBytes: 10 }))), 'mock web/a');
  });

  test('errors: waiting to start, no previous instance, unknown container or pod', async (t) => {
    const { p } = clocked(t, { lifecycle: { runningDelayMs: 5000 } });
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    await assert.rejects(
      p.getContainerLogs('ns', 'web', 'app', logOptions()),
      (err: Error) =>
        err instanceof ContainerStateError &&
        err.code === 'VK_CONTAINER_STATE' &&
        err.message === 'container "app" in pod "web" is waiting to start: ContainerCreating',
    );
    await assert.rejects(
      p.getContainerLogs('ns', 'web', 'app', logOptions({ previous: true })),
      (err: Error) => err instanceof ContainerStateError && err.message === 'previous terminated container "app" in pod "web" not found',
    );
    await assert.rejects(
      p.getContainerLogs('ns', 'web', 'nope', logOptions()),
      (err: Error) => err instanceof NotFoundError && /container "nope" not found/.test(err.message),
    );
    await assert.rejects(p.getContainerLogs('ns', 'absent', 'app', logOptions()), NotFoundError);
  });

  test('after a restart, previous is the earlier instance, ended at its exit', async (t) => {
    const { p, advance } = clocked(t);
    await p.createPod({ pod: makePod({ annotations: { 'mock.vk.io/complete-after-ms': '3000', 'mock.vk.io/exit-code': '1' } }), volumes: new Map() }, call);
    advance(4_500);
    assert.equal(
      await text(await p.getContainerLogs('ns', 'web', 'app', logOptions())),
      'mock web/app: started (image nginx:1.27, restart 1)\nmock web/app: tick 1\n',
    );
    const previous = await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ previous: true, timestamps: true })));
    assert.equal(
      previous,
      [
        '2025-01-01T12:00:00Z mock web/app: started (image nginx:1.27, restart 0)',
        '2025-01-01T12:00:01Z mock web/app: tick 1',
        '2025-01-01T12:00:02Z mock web/app: tick 2',
        '2025-01-01T12:00:03Z mock web/app: tick 3',
        '',
      ].join('\n'),
    );
  });

  test('follow streams new lines as they come and stops when the client aborts', async (t) => {
    const p = real(t, { logIntervalMs: 20 });
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    const abort = new AbortController();
    const stream = await p.getContainerLogs('ns', 'web', 'app', logOptions({ follow: true, signal: abort.signal }));
    let seen = '';
    for await (const chunk of stream) {
      seen += chunk.toString();
      if (seen.includes('tick 3\n')) abort.abort();
    }
    assert.match(seen, /started[\s\S]*tick 1\n[\s\S]*tick 2\n[\s\S]*tick 3\n/);
  });

  test('follow ends by itself when the container exits', async (t) => {
    const p = real(t, { logIntervalMs: 20 });
    await p.createPod({ pod: makePod({ restartPolicy: 'Never', annotations: { 'mock.vk.io/complete-after-ms': '120' } }), volumes: new Map() }, call);
    const out = await text(await p.getContainerLogs('ns', 'web', 'app', logOptions({ follow: true })));
    const ticks = out.match(/tick \d+/g) ?? [];
    assert.ok(ticks.length >= 5 && ticks.length <= 6, `ticks until the exit at 120ms: ${ticks.join(', ')}`);
  });

  test('the log model indexes lines arithmetically', () => {
    const m = new LogModel('p', 'c', 'img', { startedAt: 1000, restartCount: 0 }, ['x'], 100);
    assert.equal(m.count(999), 0);
    assert.equal(m.count(1000), 2);
    assert.equal(m.count(1350), 5);
    assert.equal(m.indexAt(1000), 0);
    assert.equal(m.indexAt(1001), 2);
    assert.equal(m.indexAt(1200), 3);
    assert.deepEqual(m.line(3), { at: 1200, text: 'mock p/c: tick 2' });
    assert.equal(logTimestamp(Date.UTC(2025, 0, 1, 0, 0, 1, 500)), '2025-01-01T00:00:01.5Z');
  });
});

describe('stats', () => {
  test('steady per-container figures, CPU time growing at the reported rate, within limits', async (t) => {
    const { p, advance } = clocked(t);
    await p.createPod(
      {
        pod: makePod({
          containers: [
            { name: 'app', image: 'a' },
            { name: 'small', image: 'b', resources: { limits: { cpu: '10m', memory: '8Mi' } } },
          ],
        }),
        volumes: new Map(),
      },
      call,
    );
    advance(10_000);
    const [first] = await p.getStats();
    assert.equal(first?.uid, 'uid-1');
    const app = first!.containers.find((c) => c.name === 'app')!;
    assert.ok(app.cpuUsageNanoCores! >= 2e6 && app.cpuUsageNanoCores! <= 200e6);
    assert.equal(app.cpuUsageCoreNanoSeconds, app.cpuUsageNanoCores! * 10);
    const small = first!.containers.find((c) => c.name === 'small')!;
    assert.ok(small.cpuUsageNanoCores! <= 8e6, 'under 80% of the 10m limit');
    assert.ok(small.memoryWorkingSetBytes! <= 8 * 1024 * 1024 * 0.8);
    advance(10_000);
    const [later] = await p.getStats();
    const app2 = later!.containers.find((c) => c.name === 'app')!;
    assert.equal(app2.cpuUsageNanoCores, app.cpuUsageNanoCores, 'steady rate');
    assert.equal(app2.cpuUsageCoreNanoSeconds, app.cpuUsageNanoCores! * 20);
    assert.deepEqual(syntheticStats('uid-1', { name: 'app', image: 'a' }, 10_000), app, 'deterministic');
  });

  test('pods that are not running report nothing', async (t) => {
    const { p } = clocked(t, { lifecycle: { runningDelayMs: 1000 } });
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    assert.deepEqual(await p.getStats(), []);
  });
});

/** Runs the shell with a string as stdin; returns what it wrote. */
async function sh(
  argv: string[],
  o: { stdin?: string | Readable; tty?: boolean; signal?: AbortSignal } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _e, done) {
        append(chunk.toString());
        done();
      },
    });
  const io: ShellIO = {
    stdin: typeof o.stdin === 'string' ? Readable.from([Buffer.from(o.stdin)]) : o.stdin,
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    tty: o.tty ?? false,
    signal: o.signal ?? new AbortController().signal,
    env: { GREETING: 'hello', EMPTY: '' },
    hostname: 'web-1',
  };
  const code = await new MockShell(io).run(argv);
  return { code, stdout, stderr };
}

describe('exec shell', () => {
  test('echo, quoting, expansion, sequences, && and ||, $?, stderr redirection', async () => {
    assert.deepEqual(await sh(['sh', '-c', `echo "$GREETING world"; echo 'no $GREETING'; echo -n x; echo y >&2`]), {
      code: 0,
      stdout: 'hello world\nno $GREETING\nx',
      stderr: 'y\n',
    });
    assert.deepEqual(await sh(['sh', '-c', 'false && echo no || echo yes; echo $?']), { code: 0, stdout: 'yes\n0\n', stderr: '' });
    assert.deepEqual(await sh(['sh', '-c', 'hostname; printenv GREETING; printenv MISSING; echo $?']), { code: 0, stdout: 'web-1\nhello\n1\n', stderr: '' });
    assert.deepEqual(await sh(['/bin/sh', '-c', 'echo before; exit 3; echo after']), { code: 3, stdout: 'before\n', stderr: '' });
    assert.deepEqual(await sh(['sh', '-c', 'nosuchcmd arg']), { code: 127, stdout: '', stderr: 'sh: nosuchcmd: not found\n' });
    assert.deepEqual(await sh(['sh', '-c', 'echo "unterminated']), { code: 2, stdout: '', stderr: 'sh: unterminated quoted string\n' });
    assert.deepEqual(await sh(['echo', 'a  b', '$GREETING']), { code: 0, stdout: 'a  b $GREETING\n', stderr: '' }, 'argv without a shell is not parsed');
    assert.deepEqual(await sh(['nosuch']), { code: 127, stdout: '', stderr: 'sh: nosuch: not found\n' });
  });

  test('cat copies stdin to stdout until EOF', async () => {
    assert.deepEqual(await sh(['cat'], { stdin: 'line 1\nline 2\n' }), { code: 0, stdout: 'line 1\nline 2\n', stderr: '' });
    assert.deepEqual(await sh(['sh', '-c', 'cat; echo done'], { stdin: 'abc' }), { code: 0, stdout: 'abcdone\n', stderr: '' });
    assert.deepEqual(await sh(['cat']), { code: 0, stdout: '', stderr: '' }, 'no stdin: EOF at once');
  });

  test('sleep ends early when the session is aborted', async () => {
    const abort = new AbortController();
    const started = Date.now();
    setTimeout(() => abort.abort(), 50);
    const result = await sh(['sh', '-c', 'sleep 30; echo never'], { signal: abort.signal });
    assert.equal(result.code, 130);
    assert.equal(result.stdout, '');
    assert.ok(Date.now() - started < 5000);
  });

  test('a script the shell cannot parse is a ShellSyntaxError (VK_INVALID_REQUEST)', () => {
    assert.throws(
      () => tokenize('echo "open'),
      (err: unknown) => err instanceof ShellSyntaxError && err.code === 'VK_INVALID_REQUEST' && err.message === 'unterminated quoted string',
    );
  });

  test('sh without -c reads commands from stdin; with a TTY it prompts, echoes and maps newlines', async () => {
    assert.deepEqual(await sh(['sh'], { stdin: 'echo one\necho two >&2\nexit 4\necho never\n' }), { code: 4, stdout: 'one\n', stderr: 'two\n' });
    const tty = await sh(['sh'], { stdin: 'echo hi\rexit 2\r', tty: true });
    assert.equal(tty.code, 2);
    assert.equal(tty.stdout, '$ echo hi\r\nhi\r\n$ exit 2\r\n');
    const input = new PassThrough();
    const pending = sh(['sh'], { stdin: input, tty: true });
    input.write('ech\x7fho x\r');
    input.write('\x04');
    const done = await pending;
    assert.equal(done.stdout, '$ ech\b \bho x\r\nx\r\n$ exit\r\n');
  });
});

describe('exec, attach and port-forward through the provider', () => {
  function streams(o: { stdin?: Readable; tty?: boolean; signal?: AbortSignal } = {}) {
    const out = { stdout: '', stderr: '' };
    const sink = (key: 'stdout' | 'stderr') =>
      new Writable({
        write(chunk: Buffer, _e, done) {
          out[key] += chunk.toString();
          done();
        },
      });
    const s: ExecStreams = {
      stdin: o.stdin,
      stdout: sink('stdout'),
      stderr: sink('stderr'),
      tty: o.tty ?? false,
      signal: o.signal ?? new AbortController().signal,
    };
    return { s, out };
  }

  test('runInContainer runs the shell with the container env and the pod name as hostname; not-running containers are refused', async (t) => {
    const { p } = clocked(t);
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    const { s, out } = streams();
    assert.equal(await p.runInContainer('ns', 'web', 'app', ['sh', '-c', 'echo $GREETING from $(hostname); hostname; printenv HOSTNAME'], s), 2);
    assert.match(out.stderr, /syntax error/);
    const second = streams();
    assert.equal(await p.runInContainer('ns', 'web', 'app', ['sh', '-c', 'echo $GREETING; hostname; printenv HOSTNAME'], second.s), 0);
    assert.equal(second.out.stdout, 'hello\nweb\nweb\n');
    await assert.rejects(p.runInContainer('ns', 'web', 'nope', ['true'], streams().s), NotFoundError);
    const pending = clocked(t, { lifecycle: { runningDelayMs: 1000 } });
    await pending.p.createPod({ pod: makePod(), volumes: new Map() }, call);
    await assert.rejects(
      pending.p.runInContainer('ns', 'web', 'app', ['true'], streams().s),
      (err: Error) => err instanceof ContainerStateError && err.message === 'container "app" in pod "web" is not running',
    );
  });

  test('attach prints the main process output and echoes stdin; with stdinOnce it ends at stdin EOF', async (t) => {
    const p = real(t, { logIntervalMs: 20 });
    await p.createPod({ pod: makePod({ containers: [{ name: 'app', image: 'busybox', stdin: true, stdinOnce: true }] }), volumes: new Map() }, call);
    const stdin = new PassThrough();
    const { s, out } = streams({ stdin });
    const attached = p.attachToContainer('ns', 'web', 'app', s);
    stdin.write('typed text\n');
    await waitFor('the echo and a log line', () => out.stdout.includes('typed text\n') && /tick \d+/.test(out.stdout), { timeoutMs: 5000, intervalMs: 5 });
    stdin.end();
    await attached;
    assert.match(out.stdout, /typed text\n/);
    assert.match(out.stdout, /mock web\/app: tick \d+\n/);
    assert.doesNotMatch(out.stdout, /started/, 'only new output, not the history');
  });

  test('attach without stdinOnce lasts until the session is aborted', async (t) => {
    const p = real(t, { logIntervalMs: 20 });
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    const abort = new AbortController();
    const stdin = Readable.from([]);
    const stdinEnded = new Promise((resolve) => stdin.once('end', resolve));
    const { s, out } = streams({ stdin, signal: abort.signal });
    let ended = false;
    const attached = p.attachToContainer('ns', 'web', 'app', s).then(() => (ended = true));
    // Proof that stdin's end did not end the session: output that came after it (a session that
    // ended stops its output too).
    await stdinEnded;
    const before = out.stdout.length;
    await waitFor('a log line after stdin ended', () => /tick \d+\n/.test(out.stdout.slice(before)), { timeoutMs: 5000, intervalMs: 5 });
    assert.equal(ended, false);
    abort.abort();
    await attached;
  });

  test('port-forward echoes on any port and answers HTTP on port 80', async (t) => {
    const { p } = clocked(t);
    await p.createPod({ pod: makePod(), volumes: new Map() }, call);
    const [ours, theirs] = duplexPair();
    const served = p.portForward('ns', 'web', 8080, theirs);
    ours.write('ping');
    ours.end();
    assert.equal(await text(ours), 'ping');
    await served;

    const [client, server] = duplexPair();
    const http = p.portForward('ns', 'web', 80, server);
    client.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const response = await text(client);
    assert.match(response, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(response, /\r\n\r\nhello from web\n$/);
    client.end();
    await http;
    await assert.rejects(p.portForward('ns', 'absent', 80, duplexPair()[1]), NotFoundError);
  });
});
