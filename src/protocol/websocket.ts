// The server side of a WebSocket handshake with subprotocol negotiation, as the kubelet API and
// the provider SDK both accept exec/attach/port-forward sessions.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * Completes the WebSocket handshake with the first protocol the client offers that we support
 * ("" when it offers none). Returns undefined after answering 400 when nothing matches.
 */
export function acceptWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supported: string[],
): Promise<{ ws: WebSocket; protocol: string } | undefined> {
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const protocol = offered.length === 0 ? '' : offered.find((p) => supported.includes(p));
  if (protocol === undefined) {
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nnone of the requested WebSocket subprotocols (${offered.join(', ')}) is supported; supported: ${supported.join(', ')}\n`,
    );
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const handler = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 << 20, handleProtocols: () => protocol || false });
    handler.handleUpgrade(req, socket, head, (ws) => resolve({ ws, protocol }));
  });
}
