// kubectl exec through ACI's exec API: a POST gives a WebSocket URI and a password; the socket's
// first message is the password, then stdin goes up and the terminal's output comes down until
// ACI closes it. ACI takes the command as one string and reports neither a separate stderr nor
// an exit code, so the argv is joined with shell quoting and the exit code is 0 when the socket
// closes normally.
import WebSocket from 'ws';
import { ProviderUnavailableError } from '../../errors.ts';
import type { ExecStreams } from '../provider.ts';

/** argv as one command string: arguments with anything but safe characters are single-quoted. */
export function joinArgv(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface ExecSession {
  webSocketUri: string;
  password: string;
}

/** Runs the session: resolves 0 when ACI closes the socket normally, rejects when it cannot connect. */
export function runExecSession(session: ExecSession, streams: ExecStreams, ca: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(session.webSocketUri, { ...(ca && { ca }) });
    let opened = false;
    const onAbort = () => socket.terminate();
    streams.signal.addEventListener('abort', onAbort, { once: true });
    socket.on('open', () => {
      opened = true;
      socket.send(session.password);
      streams.stdin?.on('data', (chunk: Buffer) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(chunk);
      });
    });
    socket.on('message', (data: Buffer) => streams.stdout?.write(data));
    socket.on('error', (err) => {
      if (!opened) reject(new ProviderUnavailableError(`exec WebSocket ${new URL(session.webSocketUri).host}: ${err.message}`, { cause: err }));
    });
    socket.on('close', (code) => {
      streams.signal.removeEventListener('abort', onAbort);
      if (opened) resolve(code === 1000 || code === 1005 ? 0 : 1);
    });
  });
}
