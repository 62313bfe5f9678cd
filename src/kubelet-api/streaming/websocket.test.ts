import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import type { Duplex } from 'node:stream';
import type { ExecStreams, Provider } from '../../providers/provider.ts';
import { parseCommandOptions } from './remote-command.ts';
import { servePortForwardWebSocket, serveRemoteCommandWebSocket } from './websocket.ts';

// A provider whose exec understands `cat` (stdin to stdout), `fail N` and `err TEXT`; port-forward echoes.
const provider = {
  name: 'test',
  async runInContainer(_ns: string, _pod: string, _c: string, command: string[], streams: ExecStreams): Promise<number> {
    if (command[0] === 'cat') {
      for await (const chunk of streams.stdin!) streams.stdout!.write(chunk);
      return 0;
    }
    if (command[0] === 'err') {
      streams.stderr!.write(command.slice(1).join(' '));
      return 0;
    }
    return Number(command[1]);
  },
  async portForward(_ns: string, _pod: string, _port: number, stream: Duplex): Promise<void> {
    for await (const chunk of stream) stream.write(chunk);
  },
} as unknown as Provider;

let server: http.Server;
let base: string;
const timeouts = { idleTimeoutMs: 60_000, creationTimeoutMs: 30_000 };

before(async () => {
  server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/portForward') {
      void servePortForwardWebSocket(provider, { namespace: 'ns', pod: 'p' }, url.searchParams.getAll('port').map(Number), { req, socket, head }, timeouts);
    } else {
      void serveRemoteCommandWebSocket(
        provider,
        { namespace: 'ns', pod: 'p', container: 'c' },
        url.searchParams.getAll('command'),
        parseCommandOptions(url.searchParams),
        { req, socket, head },
        timeouts,
      );
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

interface Session {
  ws: WebSocket;
  received: Map<number, Buffer[]>;
  closed: Promise<void>;
}

function connect(path: string, protocol: string): Promise<Session> {
  const ws = new WebSocket(`${base}${path}`, protocol ? [protocol] : []);
  const received = new Map<number, Buffer[]>();
  const base64 = protocol.includes('base64');
  ws.on('message', (data: Buffer) => {
    const channel = base64 ? data[0]! - 0x30 : data[0]!;
    const payload = base64 ? Buffer.from(data.subarray(1).toString(), 'base64') : data.subarray(1);
    received.set(channel, [...(received.get(channel) ?? []), payload]);
  });
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  return new Promise((resolve, reject) => {
    ws.on('open', () => resolve({ ws, received, closed }));
    ws.on('error', reject);
  });
}

const text = (s: Session, channel: number) => Buffer.concat(s.received.get(channel) ?? []).toString();

test('v5: stdin flows to stdout, the [255, 0] close signal ends stdin, and Success arrives on the error channel', async () => {
  const s = await connect('/exec?command=cat&input=1&output=1', 'v5.channel.k8s.io');
  s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('hello ')]));
  s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('world')]));
  s.ws.send(Buffer.from([255, 0]));
  await s.closed;
  assert.equal(text(s, 1), 'hello world');
  assert.deepEqual(JSON.parse(text(s, 3)), { status: 'Success' });
});

test('v4: a non-zero exit code is a NonZeroExitCode Status with the code in its causes', async () => {
  const s = await connect('/exec?command=fail&command=3&output=1', 'v4.channel.k8s.io');
  await s.closed;
  const status = JSON.parse(text(s, 3));
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details.causes, [{ reason: 'ExitCode', message: '3' }]);
});

test('base64 protocol encodes channel and payload as text; stderr has its own channel', async () => {
  const s = await connect('/exec?command=err&command=oops&output=1&error=1', 'v4.base64.channel.k8s.io');
  await s.closed;
  assert.equal(text(s, 2), 'oops');
  assert.equal(JSON.parse(text(s, 3)).status, 'Success');
});

test('an unsupported subprotocol is refused with 400 naming the supported ones', async () => {
  const ws = new WebSocket(`${base}/exec?command=cat`, ['v9.channel.k8s.io']);
  const status = await new Promise<number>((resolve) => ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
  assert.equal(status, 400);
});

test('port-forward announces the port on both channels and round-trips data', async () => {
  const s = await connect('/portForward?port=8080', 'v4.channel.k8s.io');
  s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('ping')]));
  const deadline = Date.now() + 5000;
  while (text(s, 0).length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const data = Buffer.concat(s.received.get(0) ?? []);
  assert.equal(data.readUInt16LE(0), 8080);
  assert.equal(data.subarray(2).toString(), 'ping');
  assert.equal(Buffer.concat(s.received.get(1) ?? []).readUInt16LE(0), 8080);
  s.ws.close();
});
