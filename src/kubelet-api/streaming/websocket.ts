// exec/attach and port-forward over WebSocket, as the kubelet serves them, plus
// v5.channel.k8s.io (half-close of stdin), which the kubelet proxies but the Go
// virtual-kubelet does not speak.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Provider } from '../../providers/provider.ts';
import { ChannelConnection, channelProtocol, type WebSocketChannel } from '../../protocol/channel-websocket.ts';
import { terminalSizes, type StreamStatus } from '../../protocol/remote-command.ts';
import { acceptWebSocket } from '../../protocol/websocket.ts';
import { encodeStatus, runRemoteCommand, type RemoteCommandOptions, type RemoteCommandTarget } from './remote-command.ts';

export const REMOTE_COMMAND_WS_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io', 'base64.channel.k8s.io'];
export const PORT_FORWARD_WS_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];

// Channel numbers of the remote-command protocols: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize.
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

export interface StreamTimeouts {
  /** Streams with no traffic for this long are closed (kubelet default 4 h). */
  idleTimeoutMs: number;
  /** How long a client has to open its streams after the upgrade (kubelet default 30 s). */
  creationTimeoutMs: number;
}

export async function serveRemoteCommandWebSocket(
  provider: Provider,
  target: RemoteCommandTarget,
  command: string[] | undefined,
  options: RemoteCommandOptions,
  upgrade: { req: IncomingMessage; socket: Duplex; head: Buffer },
  timeouts: StreamTimeouts,
): Promise<void> {
  const accepted = await acceptWebSocket(upgrade.req, upgrade.socket, upgrade.head, REMOTE_COMMAND_WS_PROTOCOLS);
  if (!accepted) return;
  const { ws, protocol } = accepted;
  const conn = new ChannelConnection(ws, channelProtocol(protocol), 5, timeouts.idleTimeoutMs);
  const [stdin, stdout, stderr, errorChannel, resize] = conn.channels as [
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
    WebSocketChannel,
  ];
  conn.open(options.stdout ? STDOUT : options.stderr ? STDERR : ERROR);
  const versioned = protocol.startsWith('v4.') || protocol.startsWith('v5.');
  const abort = new AbortController();
  ws.once('close', () => abort.abort());
  await runRemoteCommand(provider, target, command, options, {
    stdin: options.stdin ? stdin : undefined,
    stdout: options.stdout ? stdout : undefined,
    stderr: options.stderr ? stderr : undefined,
    resize: options.tty ? terminalSizes(resize) : undefined,
    signal: abort.signal,
    writeStatus: (status: StreamStatus) =>
      new Promise<void>((resolve) => {
        const encoded = encodeStatus(status, versioned);
        if (encoded === undefined) return resolve();
        errorChannel.write(encoded, () => resolve());
      }),
    close: () => conn.close(),
  });
}

/** Port-forward over WebSocket: two channels per requested port (data, error), each announced with the port as uint16 LE. */
export async function servePortForwardWebSocket(
  provider: Provider,
  target: { namespace: string; pod: string },
  ports: number[],
  upgrade: { req: IncomingMessage; socket: Duplex; head: Buffer },
  timeouts: StreamTimeouts,
): Promise<void> {
  const accepted = await acceptWebSocket(upgrade.req, upgrade.socket, upgrade.head, PORT_FORWARD_WS_PROTOCOLS);
  if (!accepted) return;
  const conn = new ChannelConnection(accepted.ws, channelProtocol(accepted.protocol), ports.length * 2, timeouts.idleTimeoutMs);
  await Promise.all(
    ports.map(async (port, i) => {
      const data = conn.channels[i * 2]!;
      const error = conn.channels[i * 2 + 1]!;
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port);
      data.write(portBytes);
      error.write(portBytes);
      try {
        await provider.portForward!(target.namespace, target.pod, port, data);
      } catch (err) {
        error.write(`error forwarding port ${port} to pod ${target.pod}: ${(err as Error).message}`);
      }
    }),
  );
  conn.close();
}
