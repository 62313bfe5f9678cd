// exec/attach (channel.k8s.io v1-v5) and port-forward (portforward.k8s.io) over SPDY/3.1,
// the protocols kube-apiserver speaks to kubelets, following k8s.io/cri-streaming.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Provider } from '../../providers/provider.ts';
import { upgradeToSpdy, type SpdyConnection, type SpdyStream } from '../spdy/index.ts';
import { terminalSizes, type StreamStatus } from '../../protocol/remote-command.ts';
import { encodeStatus, runRemoteCommand, type RemoteCommandOptions, type RemoteCommandTarget } from './remote-command.ts';
import type { StreamTimeouts } from './websocket.ts';

// v5 over SPDY is handled as v4: its close signal exists only on WebSocket.
export const REMOTE_COMMAND_SPDY_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
export const PORT_FORWARD_SPDY_PROTOCOLS = ['portforward.k8s.io'];

type Upgrade = { req: IncomingMessage; socket: Duplex; head: Buffer };

/** Collects the client's streams until `expected` arrived, or fails after the creation timeout. */
function waitForStreams(connection: SpdyConnection, expected: number, timeoutMs: number): Promise<Map<string, SpdyStream>> {
  return new Promise((resolve, reject) => {
    const streams = new Map<string, SpdyStream>();
    const timer = setTimeout(() => {
      connection.off('stream', onStream);
      reject(new Error('timed out waiting for client to create streams'));
    }, timeoutMs);
    const onStream = (stream: SpdyStream) => {
      const type = stream.headers.streamtype ?? '';
      if (!['error', 'stdin', 'stdout', 'stderr', 'resize'].includes(type)) {
        stream.destroy(); // the kubelet rejects unexpected stream types
        return;
      }
      streams.set(type, stream);
      if (streams.size === expected) {
        clearTimeout(timer);
        connection.off('stream', onStream);
        resolve(streams);
      }
    };
    connection.on('stream', onStream);
    connection.once('close', () => {
      clearTimeout(timer);
      reject(new Error('connection closed while waiting for streams'));
    });
  });
}

export async function serveRemoteCommandSpdy(
  provider: Provider,
  target: RemoteCommandTarget,
  command: string[] | undefined,
  options: RemoteCommandOptions,
  upgrade: Upgrade,
  timeouts: StreamTimeouts,
): Promise<void> {
  const upgraded = upgradeToSpdy(upgrade.req, upgrade.socket, upgrade.head, REMOTE_COMMAND_SPDY_PROTOCOLS, { idleTimeoutMs: timeouts.idleTimeoutMs });
  if (!upgraded) return;
  const { connection, protocol } = upgraded;
  connection.on('error', () => {}); // the stream ends; nothing to report beyond the closed connection
  const versioned = protocol.startsWith('v4.') || protocol.startsWith('v5.');
  const resizeSupported = protocol !== 'v2.channel.k8s.io' && protocol !== 'channel.k8s.io';
  const expected = 1 + Number(options.stdin) + Number(options.stdout) + Number(options.stderr) + Number(options.tty && resizeSupported);
  let streams: Map<string, SpdyStream>;
  try {
    streams = await waitForStreams(connection, expected, timeouts.creationTimeoutMs);
  } catch {
    connection.close();
    return;
  }
  const abort = new AbortController();
  connection.once('close', () => abort.abort());
  const errorStream = streams.get('error')!;
  const resize = streams.get('resize');
  await runRemoteCommand(provider, target, command, options, {
    stdin: streams.get('stdin'),
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    resize: resize ? terminalSizes(resize) : undefined,
    signal: abort.signal,
    writeStatus: (status: StreamStatus) => new Promise<void>((resolve) => errorStream.end(encodeStatus(status, versioned) ?? '', () => resolve())),
    close: () => connection.close(),
  });
}

/** Port-forward: the client opens an error and a data stream per connection, paired by requestid. */
export function servePortForwardSpdy(provider: Provider, target: { namespace: string; pod: string }, upgrade: Upgrade, timeouts: StreamTimeouts): void {
  const upgraded = upgradeToSpdy(upgrade.req, upgrade.socket, upgrade.head, PORT_FORWARD_SPDY_PROTOCOLS, { idleTimeoutMs: timeouts.idleTimeoutMs });
  if (!upgraded) return;
  const { connection } = upgraded;
  connection.on('error', () => {});
  const pending = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>();
  connection.on('stream', (stream: SpdyStream) => {
    const type = stream.headers.streamtype;
    // Old clients send no requestid: derive it from the stream id as the kubelet does.
    const requestId = stream.headers.requestid ?? String(type === 'data' ? stream.id - 2 : stream.id);
    if (type !== 'data' && type !== 'error') {
      stream.destroy();
      return;
    }
    let pair = pending.get(requestId);
    if (!pair) {
      // A pair not completed within the creation timeout is abandoned (the Go virtual-kubelet swaps this with the idle timeout).
      const timer = setTimeout(() => {
        pending.get(requestId)?.data?.destroy();
        pending.get(requestId)?.error?.destroy();
        pending.delete(requestId);
      }, timeouts.creationTimeoutMs);
      pair = { timer };
      pending.set(requestId, pair);
    }
    pair[type] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pending.delete(requestId);
      void forward(provider, target, pair.data, pair.error);
    }
  });
}

async function forward(provider: Provider, target: { namespace: string; pod: string }, data: SpdyStream, error: SpdyStream): Promise<void> {
  const port = Number(data.headers.port);
  try {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid port ${JSON.stringify(data.headers.port ?? '')}`);
    await provider.portForward!(target.namespace, target.pod, port, data);
    if (!data.writableEnded) data.end();
    error.end();
  } catch (err) {
    error.end(`error forwarding port ${data.headers.port} to pod ${target.pod}: ${(err as Error).message}`);
    data.destroy();
  }
}
