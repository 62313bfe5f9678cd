// exec and attach independent of the wire protocol: run the provider call over the streams a
// protocol adapter (SPDY or WebSocket) set up, then report the outcome as the kubelet does,
// a metav1.Status on the error stream.
import type { Readable, Writable } from 'node:stream';
import { errorMessage } from '../../errors.ts';
import type { ExecStreams, Provider, TerminalSize } from '../../providers/provider.ts';
import { exitStatus, type StreamStatus } from '../../protocol/remote-command.ts';

export interface RemoteCommandOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface RemoteCommandTarget {
  namespace: string;
  pod: string;
  container: string;
}

/** The streams a protocol adapter hands over once the client has opened them. */
export interface CommandConnection {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize?: AsyncIterable<TerminalSize>;
  /** Writes the final Status (v4+: JSON; older: the message text on failure only). */
  writeStatus(status: StreamStatus): Promise<void>;
  close(): void;
  signal: AbortSignal;
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value === '1' || value === 'true';
}

export function parseCommandOptions(query: URLSearchParams): RemoteCommandOptions {
  const tty = flag(query, 'tty');
  // With a TTY, stderr is merged into stdout (the kubelet ignores the stderr stream).
  return { stdin: flag(query, 'input'), stdout: flag(query, 'output'), stderr: flag(query, 'error') && !tty, tty };
}

/** What goes on the error stream: v4+ the Status as JSON; before v4 only a failure's message text (undefined: write nothing). */
export function encodeStatus(status: StreamStatus, versioned: boolean): string | undefined {
  if (versioned) return JSON.stringify(status);
  return status.status === 'Success' ? undefined : (status.message ?? '');
}

export function internalError(err: unknown): StreamStatus {
  return { status: 'Failure', reason: 'InternalError', code: 500, message: `Internal error occurred: ${errorMessage(err)}` };
}

/** Runs exec (command given) or attach (no command) and always ends with a Status and a closed connection. */
export async function runRemoteCommand(
  provider: Provider,
  target: RemoteCommandTarget,
  command: string[] | undefined,
  options: RemoteCommandOptions,
  conn: CommandConnection,
): Promise<void> {
  const streams: ExecStreams = { stdin: conn.stdin, stdout: conn.stdout, stderr: conn.stderr, tty: options.tty, resize: conn.resize, signal: conn.signal };
  let status: StreamStatus;
  try {
    if (command) {
      const exitCode = await provider.runInContainer!(target.namespace, target.pod, target.container, command, streams);
      status = exitStatus(command, exitCode);
    } else {
      await provider.attachToContainer!(target.namespace, target.pod, target.container, streams);
      status = { status: 'Success' };
    }
  } catch (err) {
    status = internalError(command ? `error executing command in container: ${errorMessage(err)}` : `error attaching to container: ${errorMessage(err)}`);
  }
  try {
    await endStream(conn.stdout);
    await endStream(conn.stderr);
    await conn.writeStatus(status);
  } finally {
    conn.close();
  }
}

function endStream(stream: Writable | undefined): Promise<void> {
  if (!stream || stream.writableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => stream.end(resolve));
}
