// The HTTP side of a SPDY upgrade, as Kubernetes' kubelet does it: httpstream.Handshake picks
// the stream protocol from X-Stream-Protocol-Version, then the SPDY response upgrader checks
// Connection/Upgrade and answers 101. Same checks, order, statuses and messages.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpdyConnection } from './connection.ts';
import type { SpdyConnectionOptions } from './connection.ts';

export const SPDY_31 = 'SPDY/3.1';
export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';

/** The first protocol in the client's order of preference that the server supports. */
export function negotiateProtocol(clientProtocols: readonly string[], serverProtocols: readonly string[]): string | undefined {
  return clientProtocols.find((p) => serverProtocols.includes(p));
}

/** All values of a header, comma lists split, blanks dropped. */
function commaSeparatedValues(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function reject(socket: Duplex, status: 400 | 403, message: string, extraHeaders: Record<string, string> = {}): undefined {
  const body = `${message}\n`;
  const reason = status === 400 ? 'Bad Request' : 'Forbidden';
  const headers = {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    ...extraHeaders,
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  };
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  // The HTTP server no longer guards an upgraded socket; a reset while we answer must not crash.
  socket.on('error', () => {});
  socket.end(`HTTP/1.1 ${status} ${reason}\r\n${head}\r\n${body}`);
  return undefined;
}

/**
 * Answers an HTTP 'upgrade' event. On success writes 101 (Connection: Upgrade, Upgrade: SPDY/3.1,
 * X-Stream-Protocol-Version: <chosen>) and returns the SPDY connection over the socket.
 * Otherwise answers, closes the socket and returns undefined:
 * 400 without a usable X-Stream-Protocol-Version; 403 with X-Accepted-Stream-Protocol-Versions
 * (comma list) when no protocol matches; 400 when the request is not a SPDY/3.1 upgrade.
 * Protocols are negotiated before the upgrade headers are checked, as in the kubelet.
 */
export function upgradeToSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supportedProtocols: string[],
  options: Omit<SpdyConnectionOptions, 'head'> = {},
): { connection: SpdyConnection; protocol: string } | undefined {
  if (supportedProtocols.length === 0) throw new TypeError('upgradeToSpdy: supportedProtocols is required');
  const values = req.headersDistinct[HEADER_PROTOCOL_VERSION.toLowerCase()];
  if (!values || values.length === 0) {
    const count = Object.keys(req.headersDistinct).length;
    return reject(socket, 400, `unable to upgrade: header ${HEADER_PROTOCOL_VERSION} does not exist in request with ${count} headers`);
  }
  const clientProtocols = commaSeparatedValues(values);
  if (clientProtocols.length === 0) {
    return reject(socket, 400, `unable to upgrade: header ${HEADER_PROTOCOL_VERSION} contains [${values.join(' ')}], but no valid protocols`);
  }
  const protocol = negotiateProtocol(clientProtocols, supportedProtocols);
  if (protocol === undefined) {
    return reject(
      socket,
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${clientProtocols.join(' ')}], server accepts [${supportedProtocols.join(' ')}]`,
      { [HEADER_ACCEPTED_PROTOCOL_VERSIONS]: supportedProtocols.join(', ') },
    );
  }
  const connectionHeader = (req.headers.connection ?? '').toLowerCase();
  const upgradeHeader = (req.headers.upgrade ?? '').toLowerCase();
  if (!connectionHeader.includes('upgrade') || !upgradeHeader.includes(SPDY_31.toLowerCase())) {
    return reject(socket, 400, 'unable to upgrade: missing upgrade headers in request');
  }
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' + 'Connection: Upgrade\r\n' + `Upgrade: ${SPDY_31}\r\n` + `${HEADER_PROTOCOL_VERSION}: ${protocol}\r\n` + '\r\n',
  );
  return { connection: new SpdyConnection(socket, { ...options, head }), protocol };
}
