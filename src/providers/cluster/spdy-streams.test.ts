// exec and port-forward to a target that refuses the WebSocket upgrade: `auto` falls back to
// SPDY/3.1, `websocket` does not, `spdy` never tries WebSocket. The far end is a small HTTP
// server: WebSocket upgrades answered 400 (as an API server without WebSocket streaming does),
// SPDY upgrades served by the kubelet API's own SPDY handlers (src/kubelet-api/streaming/spdy.ts)
// over a provider whose exec echoes stdin and exits 3 and whose port-forward echoes bytes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { servePortForwardSpdy, serveRemoteCommandSpdy } from '../../kubelet-api/streaming/spdy.ts';
import { KubeClient } from '../../kube/client.ts';
import type { ExecStreams, Provider } from '../provider.ts';
import { TargetStreams } from './streams.ts';

const TIMEOUTS = { idleTimeoutMs: 60_000, creationTimeoutMs: 10_000 };

/** exec: stdin to stdout, "done" on stderr, exit 3. port-forward: the bytes back, upper-cased. */
const provider = {
  name: 'echo',
  async runInContainer(_ns: string, _pod: string, _container: string, _command: string[], streams: ExecStreams): Promise<number> {
    for await (const chunk of streams.stdin!) streams.stdout!.write(chunk);
    streams.stderr?.write('done\n');
    return 3;
  },
  async portForward(_ns: string, _pod: string, _port: number, stream: Duplex): Promise<void> {
    for await (const chunk of stream) stream.write(Buffer.from(String(chunk).toUpperCase()));
    stream.end();
  },
} as unknown as Provider;

async function farEnd(t: { after(fn: () => unknown): void }): Promise<{ url: string; upgrades: string[] }> {
  const upgrades: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const kind = String(req.headers.upgrade).toLowerCase();
    upgrades.push(kind);
    if (kind === 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nUpgrade request required');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.endsWith('/portforward')) servePortForwardSpdy(provider, { namespace: 'ns', pod: 'p' }, { req, socket, head }, TIMEOUTS);
    else
      void serveRemoteCommandSpdy(
        provider,
        { namespace: 'ns', pod: 'p', container: 'c' },
        ['cat'],
        { stdin: true, stdout: true, stderr: true, tty: false },
        { req, socket, head },
        TIMEOUTS,
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  server.unref();
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, upgrades };
}

async function clientFor(t: { after(fn: () => unknown): void }, server: string): Promise<KubeClient> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-spdy-streams-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server } }],
      users: [{ name: 'u', user: { token: 'secret' } }],
      contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'c',
    }),
  );
  const client = await KubeClient.load({ kubeconfig });
  t.after(() => client.close());
  return client;
}

async function exec(streams: TargetStreams, input: Buffer): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await streams.remoteCommand({ namespace: 'ns', name: 'p' }, 'c', ['cat'], {
    stdin: new PassThrough().end(input),
    stdout,
    stderr,
    tty: false,
    signal: new AbortController().signal,
  });
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() };
}

test('auto: a target that refuses the WebSocket upgrade gets exec over SPDY (stdin, stdout, stderr, exit code), and SPDY from then on', async (t) => {
  const end = await farEnd(t);
  const streams = new TargetStreams(await clientFor(t, end.url), 5000, 'auto');
  t.after(() => streams.close());
  const input = Buffer.alloc(300_000, 'x');
  const first = await exec(streams, input);
  assert.equal(first.code, 3);
  assert.ok(first.stdout.equals(input), `stdout: ${first.stdout.length} bytes, expected ${input.length}`);
  assert.equal(first.stderr, 'done\n');
  assert.deepEqual(end.upgrades, ['websocket', 'spdy/3.1']);
  await exec(streams, Buffer.from('again'));
  assert.deepEqual(end.upgrades, ['websocket', 'spdy/3.1', 'spdy/3.1'], 'after one refusal, no more WebSocket attempts');
});

test('auto: port-forward falls back to SPDY (portforward.k8s.io) and carries bytes both ways', async (t) => {
  const end = await farEnd(t);
  const streams = new TargetStreams(await clientFor(t, end.url), 5000, 'auto');
  t.after(() => streams.close());
  // The local client's connection as the kubelet API hands it over: it sends "hello" and ends; what comes back is collected.
  const received: Buffer[] = [];
  const conn = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      received.push(chunk);
      done();
    },
  });
  conn.push('hello from the source');
  conn.push(null);
  await streams.portForward({ namespace: 'ns', name: 'p' }, 8080, conn);
  assert.equal(Buffer.concat(received).toString(), 'HELLO FROM THE SOURCE');
  assert.deepEqual(end.upgrades, ['websocket', 'spdy/3.1']);
});

test('websocket: a refused upgrade is an error naming the answer, and SPDY is not tried', async (t) => {
  const end = await farEnd(t);
  const streams = new TargetStreams(await clientFor(t, end.url), 5000, 'websocket');
  t.after(() => streams.close());
  await assert.rejects(exec(streams, Buffer.from('x')), /400.*Upgrade request required|Upgrade request required/);
  assert.deepEqual(end.upgrades, ['websocket']);
});

test('spdy: no WebSocket attempt at all', async (t) => {
  const end = await farEnd(t);
  const streams = new TargetStreams(await clientFor(t, end.url), 5000, 'spdy');
  t.after(() => streams.close());
  const result = await exec(streams, Buffer.from('hello'));
  assert.equal(result.stdout.toString(), 'hello');
  assert.deepEqual(end.upgrades, ['spdy/3.1']);
});
