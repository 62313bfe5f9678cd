// exec, attach and port-forward to a remote provider: one WebSocket per session, framed with
// the Kubernetes channel protocol (v5.channel.k8s.io: a channel byte per message, [255, n]
// half-closes channel n), with the framing of src/protocol/channel-websocket.ts.
//   exec/attach:   0 stdin, 1 stdout, 2 stderr, 3 status (a metav1.Status as JSON), 4 resize
//   port-forward:  0 data, 1 error (text, when forwarding fails)
import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { WebSocket } from 'ws';
import { ProtocolError, ProviderUnavailableError, VkError, errorMessage } from '../../errors.ts';
import { ChannelConnection, channelProtocol, forwardChannel, type WebSocketChannel } from '../../protocol/channel-websocket.ts';
import { decodeError } from '../../protocol/errors.ts';
import { ERROR_CODE_CAUSE } from '../../protocol/remote-command.ts';
import { encodeCommandQuery, type Query } from '../../protocol/query.ts';
import { STREAM_PROTOCOLS } from '../../protocol/wire.ts';
import type { ExecStreams } from '../provider.ts';
import type { RemoteTransport } from './transport.ts';

/** Sessions idle this long are closed (the kubelet's stream idle timeout). */
const IDLE_TIMEOUT_MS = 4 * 3600_000;

interface Session {
  ws: WebSocket;
  conn: ChannelConnection;
  closed: Promise<void>;
}

/** Opens the WebSocket; a refused handshake becomes the server's error (NotFound, Unsupported, ...). */
export function openSession(transport: RemoteTransport, path: string, query: Query, channels: number, signal: AbortSignal): Promise<Session> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(transport.aborted('GET', path, signal));
    const ws = new WebSocket(transport.webSocketUrl(path, query), STREAM_PROTOCOLS, transport.webSocketOptions());
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      ws.terminate();
      reject(err);
    };
    const onAbort = () => fail(transport.aborted('GET', path, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= 64 << 10) chunks.push(chunk);
      });
      res.on('error', () => {});
      res.on('end', () => fail(transport.errorFor('GET', path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
      res.on('close', () => fail(transport.errorFor('GET', path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
    });
    ws.on('error', (err) => fail(new ProviderUnavailableError(`remote provider at ${transport.origin} is unreachable: ${errorMessage(err)}`, { cause: err })));
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      const conn = new ChannelConnection(ws, channelProtocol(ws.protocol || STREAM_PROTOCOLS[0]!), channels, IDLE_TIMEOUT_MS);
      for (const channel of conn.channels) channel.on('error', () => {});
      const closed = new Promise<void>((done) => ws.once('close', () => done()));
      signal.addEventListener('abort', () => conn.close(), { once: true });
      resolve({ ws, conn, closed });
    });
  });
}

function sendInput(input: Readable, channel: WebSocketChannel): void {
  input.on('error', () => channel.end());
  input.pipe(channel);
}

interface StreamStatus {
  status?: string;
  reason?: string;
  message?: string;
  code?: number;
  details?: { causes?: { reason?: string; message?: string }[] };
}

/** The Status a session ended with: its exit code, or the failure as the error class it stands for. */
function outcome(transport: RemoteTransport, text: string, what: string, signal: AbortSignal): number {
  if (!text) {
    if (signal.aborted) throw transport.aborted('GET', what, signal);
    throw new ProtocolError(`remote provider closed the ${what} session without a status`);
  }
  let status: StreamStatus;
  try {
    status = JSON.parse(text) as StreamStatus;
  } catch {
    throw new ProtocolError(`remote provider sent a malformed ${what} status: ${text.slice(0, 200)}`);
  }
  if (status.status === 'Success') return 0;
  const causes = status.details?.causes ?? [];
  if (status.reason === 'NonZeroExitCode') {
    const code = Number(causes.find((c) => c.reason === 'ExitCode')?.message);
    if (Number.isInteger(code)) return code;
  }
  const message = typeof status.message === 'string' ? status.message : `${what} failed`;
  // Version 2 servers name the VkError code; version 1 servers only the reason NotFound/Unsupported/ProviderError.
  const code = causes.find((c) => c.reason === ERROR_CODE_CAUSE)?.message ?? status.reason;
  throw decodeError(typeof status.code === 'number' ? status.code : 500, { code, message });
}

/** exec (command given) or attach (command undefined); resolves with the exit code. */
export async function remoteCommand(transport: RemoteTransport, path: string, command: string[] | undefined, streams: ExecStreams): Promise<number> {
  const tty = streams.tty;
  const query = encodeCommandQuery(command, { stdin: Boolean(streams.stdin), stdout: Boolean(streams.stdout), stderr: Boolean(streams.stderr), tty });
  const what = command ? 'exec' : 'attach';
  const { ws, conn, closed } = await openSession(transport, path, query, 5, streams.signal);
  const [stdin, stdout, stderr, status, resize] = conn.channels as [WebSocketChannel, WebSocketChannel, WebSocketChannel, WebSocketChannel, WebSocketChannel];
  if (streams.stdout) forwardChannel(stdout, streams.stdout, ws);
  if (streams.stderr && !tty) forwardChannel(stderr, streams.stderr, ws);
  let statusText = '';
  status.on('data', (chunk: Buffer) => {
    if (statusText.length < 64 << 10) statusText += chunk.toString('utf8');
  });
  if (streams.stdin) sendInput(streams.stdin, stdin);
  if (tty && streams.resize) {
    const sizes = streams.resize;
    void (async () => {
      try {
        for await (const size of sizes) {
          if (ws.readyState !== ws.OPEN) break;
          resize.write(JSON.stringify({ Width: size.width, Height: size.height }));
        }
      } catch {
        // The resize stream ended with the client.
      }
    })();
  }
  await closed;
  if (streams.stdin) streams.stdin.unpipe(stdin);
  return outcome(transport, statusText, what, streams.signal);
}

/** Port-forward of one connection: `stream` to `port` of the pod until either side closes. */
export async function remotePortForward(transport: RemoteTransport, path: string, port: number, stream: Duplex): Promise<void> {
  const abort = new AbortController();
  const onGone = () => abort.abort();
  stream.once('close', onGone);
  try {
    const { ws, conn, closed } = await openSession(transport, path, { port: String(port) }, 2, abort.signal);
    const [data, error] = conn.channels as [WebSocketChannel, WebSocketChannel];
    let errorText = '';
    error.on('data', (chunk: Buffer) => {
      if (errorText.length < 64 << 10) errorText += chunk.toString('utf8');
    });
    forwardChannel(data, stream, ws);
    // The remote side half-closed: so do we.
    data.once('end', () => {
      if (!stream.writableEnded && !stream.destroyed) stream.end();
    });
    stream.on('error', () => conn.close());
    stream.pipe(data);
    await closed;
    stream.unpipe(data);
    if (errorText) throw new VkError('VK_PROVIDER', errorText);
  } finally {
    stream.off('close', onGone);
  }
}
