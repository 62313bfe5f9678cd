// The server side of exec, attach and port-forward sessions: the WebSocket handshake and the
// Kubernetes channel framing are the ones the kubelet API uses too (src/protocol/); what differs
// is the final Status, which keeps the error's kind (reason NotFound/Unsupported/ProviderError,
// and from version 2 the VkError code as a cause) so the client can rethrow the same class.
import type { IncomingMessage } from 'node:http';
import type { Duplex, Writable } from 'node:stream';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import { ChannelConnection, channelProtocol, type WebSocketChannel } from '../protocol/channel-websocket.ts';
import { encodeError } from '../protocol/errors.ts';
import { ERROR_CODE_CAUSE, exitStatus, terminalSizes, type StreamStatus } from '../protocol/remote-command.ts';
import { acceptWebSocket } from '../protocol/websocket.ts';
import { STREAM_PROTOCOLS } from '../protocol/wire.ts';
import type { ExecStreams, Provider } from '../providers/provider.ts';

const IDLE_TIMEOUT_MS = 4 * 3600_000;

export interface Upgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
}

export interface CommandRequest {
  namespace: string;
  pod: string;
  container: string;
  /** undefined: attach. */
  command: string[] | undefined;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** The Status of a failed session: version 1's reason (what older clients read), the status, and the VkError code. */
function failure(err: unknown): StreamStatus {
  const v1 = encodeError(err, 1).body.error;
  const v2 = encodeError(err, 2);
  return {
    status: 'Failure',
    reason: v1.code,
    code: v2.status,
    message: v1.message,
    details: { causes: [{ reason: ERROR_CODE_CAUSE, message: v2.body.error.code }] },
  };
}

function end(stream: Writable | undefined): Promise<void> {
  if (!stream || stream.writableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.end(resolve));
}

/** Runs one exec/attach session to its end: the provider call, then the Status on channel 3, then close. */
export async function serveCommandSession(provider: Provider, request: CommandRequest, upgrade: Upgrade, log: Logger): Promise<void> {
  const accepted = await acceptWebSocket(upgrade.req, upgrade.socket, upgrade.head, STREAM_PROTOCOLS);
  if (!accepted) return;
  const { ws, protocol } = accepted;
  const conn = new ChannelConnection(ws, channelProtocol(protocol), 5, IDLE_TIMEOUT_MS);
  const [stdin, stdout, stderr, statusChannel, resize] = conn.channels as [
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
  ];
  for (const channel of conn.channels) channel.on('error', () => {});
  const abort = new AbortController();
  ws.once('close', () => abort.abort());
  const streams: ExecStreams = {
    stdin: request.stdin ? stdin : undefined,
    stdout: request.stdout ? stdout : undefined,
    stderr: request.stderr && !request.tty ? stderr : undefined,
    tty: request.tty,
    resize: request.tty ? terminalSizes(resize) : undefined,
    signal: abort.signal,
  };
  if (!request.stdin) stdin.resume(); // nothing reads it: drop what a confused client sends
  let status: StreamStatus;
  try {
    if (request.command) {
      const code = await provider.runInContainer!(request.namespace, request.pod, request.container, request.command, streams);
      status = exitStatus(request.command, code);
    } else {
      await provider.attachToContainer!(request.namespace, request.pod, request.container, streams);
      status = { status: 'Success' };
    }
  } catch (err) {
    status = failure(err);
    log.debug(
      { pod: `${request.namespace}/${request.pod}`, container: request.container, err: errorMessage(err) },
      `${request.command ? 'exec' : 'attach'} failed`,
    );
  }
  try {
    await end(streams.stdout);
    await end(streams.stderr);
    if (!abort.signal.aborted) await new Promise<void>((resolve) => statusChannel.write(JSON.stringify(status), () => resolve()));
  } finally {
    conn.close();
  }
}

/** One forwarded connection: channel 0 carries the data both ways, channel 1 the error text if any. */
export async function servePortForwardSession(
  provider: Provider,
  target: { namespace: string; pod: string; port: number },
  upgrade: Upgrade,
  log: Logger,
): Promise<void> {
  const accepted = await acceptWebSocket(upgrade.req, upgrade.socket, upgrade.head, STREAM_PROTOCOLS);
  if (!accepted) return;
  const conn = new ChannelConnection(accepted.ws, channelProtocol(accepted.protocol), 2, IDLE_TIMEOUT_MS);
  const [data, error] = conn.channels as [WebSocketChannel, WebSocketChannel];
  for (const channel of conn.channels) channel.on('error', () => {});
  try {
    await provider.portForward!(target.namespace, target.pod, target.port, data);
    await end(data);
  } catch (err) {
    log.debug({ pod: `${target.namespace}/${target.pod}`, port: target.port, err: errorMessage(err) }, 'port-forward failed');
    await new Promise<void>((resolve) => error.write(`error forwarding port ${target.port} to pod ${target.pod}: ${errorMessage(err)}`, () => resolve()));
  } finally {
    conn.close();
  }
}
