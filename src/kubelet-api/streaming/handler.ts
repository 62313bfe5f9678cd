// Dispatches authorized exec/attach/portForward upgrades to the SPDY or WebSocket protocol.
import type { Duplex } from 'node:stream';
import type { Logger } from '../../log.ts';
import type { Provider } from '../../providers/provider.ts';
import type { UpgradeHandler, UpgradeRequest } from '../server.ts';
import { parseCommandOptions } from './remote-command.ts';
import { servePortForwardSpdy, serveRemoteCommandSpdy } from './spdy.ts';
import { isWebSocketUpgrade, servePortForwardWebSocket, serveRemoteCommandWebSocket, type StreamTimeouts } from './websocket.ts';

/** The kubelet's defaults: streams idle for 4 hours close; clients have 30 s to open their streams. */
export const DEFAULT_STREAM_TIMEOUTS: StreamTimeouts = { idleTimeoutMs: 4 * 3600_000, creationTimeoutMs: 30_000 };

function badRequest(socket: Duplex, message: string): void {
  socket.end(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}

/** Ports from ?port=80&port=443 or ?port=80,443; undefined when one is invalid. */
export function parsePorts(query: URLSearchParams): number[] | undefined {
  const ports = query
    .getAll('port')
    .flatMap((value) => value.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
  const parsed = ports.map(Number);
  return parsed.every((p) => Number.isInteger(p) && p >= 1 && p <= 65535) ? parsed : undefined;
}

export function createStreamingHandler(provider: Provider, log: Logger, timeouts: StreamTimeouts = DEFAULT_STREAM_TIMEOUTS): UpgradeHandler {
  return (request: UpgradeRequest) => {
    const upgrade = { req: request.req, socket: request.socket, head: request.head };
    const websocket = isWebSocketUpgrade(request.req);
    const done = (promise: Promise<void> | void) =>
      Promise.resolve(promise).catch((err: unknown) => {
        log.warn({ route: request.route, pod: `${request.namespace}/${request.pod}`, err: (err as Error).message }, 'streaming session failed');
        request.socket.destroy();
      });
    if (request.route === 'portForward') {
      if (websocket) {
        const ports = parsePorts(request.query);
        if (!ports || ports.length === 0) return badRequest(request.socket, 'query parameter "port" is required and must hold ports between 1 and 65535');
        return void done(servePortForwardWebSocket(provider, request, ports, upgrade, timeouts));
      }
      return void done(servePortForwardSpdy(provider, request, upgrade, timeouts));
    }
    const options = parseCommandOptions(request.query);
    if (!options.stdin && !options.stdout && !options.stderr) return badRequest(request.socket, 'you must specify at least 1 of stdin, stdout, stderr');
    const command = request.route === 'exec' ? request.query.getAll('command') : undefined;
    if (command && command.length === 0) return badRequest(request.socket, 'missing command: at least one "command" query parameter is required');
    const target = { namespace: request.namespace, pod: request.pod, container: request.container ?? '' };
    const serve = websocket ? serveRemoteCommandWebSocket : serveRemoteCommandSpdy;
    void done(serve(provider, target, command, options, upgrade, timeouts));
  };
}
