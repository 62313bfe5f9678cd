// exec, attach and port-forward to a target pod over SPDY/3.1, for a target API server that
// refuses the WebSocket upgrade (before Kubernetes 1.30 for exec/attach, 1.31 for port-forward),
// as client-go's SPDY executor and port forwarder speak them:
// - exec/attach, v4.channel.k8s.io: an `error` stream first, then stdin/stdout/stderr/resize as
//   asked (header streamType); the error stream carries the final Status as JSON (empty: success);
// - port-forward, portforward.k8s.io: per connection an `error` and a `data` stream with the
//   same port and requestID headers; our side of the error stream is closed at once.
import type { Duplex, Writable } from 'node:stream';
import { VkError } from '../../errors.ts';
import { dialSpdy, type SpdyClientStream } from '../../protocol/spdy/client.ts';
import type { ExecStreams } from '../provider.ts';

export const EXEC_SPDY_PROTOCOLS = ['v4.channel.k8s.io'];
export const PORT_FORWARD_SPDY_PROTOCOLS = ['portforward.k8s.io'];

export interface SpdyTarget {
  headers: Record<string, string>;
  tls: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  timeoutMs: number;
}

/** Runs the session; resolves with the text of the error stream (the final Status, empty on success). */
export async function remoteCommandSpdy(url: URL, target: SpdyTarget, streams: ExecStreams, what: string): Promise<string> {
  const { connection } = await dialSpdy(url, { ...target, protocols: EXEC_SPDY_PROTOCOLS, signal: streams.signal, what });
  const onAbort = () => connection.close();
  streams.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const open = (streamType: string) => connection.openStream({ streamType });
    const error = await open('error');
    // Our side of the error stream carries nothing.
    error.end();
    const stdin = streams.stdin ? await open('stdin') : undefined;
    const stdout = streams.stdout ? await open('stdout') : undefined;
    const stderr = streams.stderr && !streams.tty ? await open('stderr') : undefined;
    const resize = streams.tty ? await open('resize') : undefined;
    let statusText = '';
    error.on('data', (chunk: Buffer) => {
      if (statusText.length < 64 << 10) statusText += chunk.toString('utf8');
    });
    const done = [ended(error)];
    if (stdout && streams.stdout) done.push(copy(stdout, streams.stdout));
    if (stderr && streams.stderr) done.push(copy(stderr, streams.stderr));
    if (stdin && streams.stdin) {
      const input = streams.stdin;
      input.on('error', () => stdin.end());
      input.pipe(stdin);
    }
    if (resize && streams.resize) void sendSizes(streams.resize, resize);
    await Promise.all(done);
    if (stdin) streams.stdin?.unpipe(stdin);
    return statusText;
  } finally {
    streams.signal.removeEventListener('abort', onAbort);
    connection.close();
  }
}

/** One forwarded connection: `stream` to `port` of the pod until either side closes; a message on the error stream is thrown. */
export async function portForwardSpdy(url: URL, target: SpdyTarget, port: number, stream: Duplex, signal: AbortSignal, what: string): Promise<void> {
  const { connection } = await dialSpdy(url, { ...target, protocols: PORT_FORWARD_SPDY_PROTOCOLS, signal, what });
  const onAbort = () => connection.close();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const headers = { port: String(port), requestID: '0' };
    const error = await connection.openStream({ ...headers, streamType: 'error' });
    error.end();
    const data = await connection.openStream({ ...headers, streamType: 'data' });
    let errorText = '';
    error.on('data', (chunk: Buffer) => {
      if (errorText.length < 64 << 10) errorText += chunk.toString('utf8');
    });
    const closed = new Promise<void>((resolve) => connection.once('close', resolve));
    stream.on('error', () => connection.close());
    stream.pipe(data);
    data.pipe(stream);
    await Promise.race([Promise.all([ended(data), ended(error)]), closed]);
    stream.unpipe(data);
    if (errorText) throw new VkError('VK_PROVIDER', `${what}: ${errorText}`);
  } finally {
    signal.removeEventListener('abort', onAbort);
    connection.close();
  }
}

/** Resolves when the stream's read side has ended or the stream is gone. */
function ended(stream: SpdyClientStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) return resolve();
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/** Copies a server stream into the caller's writable, with backpressure; resolves at its end. */
function copy(from: SpdyClientStream, to: Writable): Promise<void> {
  from.pipe(to, { end: false });
  return ended(from);
}

async function sendSizes(sizes: AsyncIterable<{ width: number; height: number }>, resize: SpdyClientStream): Promise<void> {
  try {
    for await (const size of sizes) {
      if (resize.destroyed || resize.writableEnded) break;
      resize.write(JSON.stringify({ Width: size.width, Height: size.height }));
    }
  } catch {
    // The resize stream ended with the session.
  }
}
