// Caps the kubelet API's open TLS connections. Node holds ~100 KB of native TLS state per
// connection (10,000 idle ones took the process to ~960 MiB in the fuzz run) and http.Server's
// maxConnections would refuse a legitimate client once idle ones fill the slots. So at the cap
// the oldest idle connection (no request in flight, not upgraded to a stream) is closed to make
// room; only when every connection is busy is the new one refused.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { Socket } from 'node:net';

/** Connections open at once before idle ones are closed; ~200 MiB of TLS state at the cap. */
export const DEFAULT_MAX_CONNECTIONS = 2048;

export class ConnectionLimit {
  readonly max: number;
  /** Connections closed (idle, evicted) or refused (all busy) because of the cap. */
  readonly counts = { evicted: 0, refused: 0 };
  /** Open connections, oldest first, with their requests in flight (Infinity once upgraded). */
  private readonly open = new Map<Socket, number>();

  constructor(max = DEFAULT_MAX_CONNECTIONS) {
    this.max = max;
  }

  /** Counts the server's connections and their requests against the cap. */
  watch(server: https.Server): void {
    server.on('secureConnection', (socket: Socket) => this.admit(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      const busy = this.open.get(socket);
      if (busy === undefined) return;
      this.open.set(socket, busy + 1);
      res.once('close', () => {
        const now = this.open.get(socket);
        if (now !== undefined) this.open.set(socket, now - 1);
      });
    });
    server.on('upgrade', (req: IncomingMessage) => {
      if (this.open.has(req.socket)) this.open.set(req.socket, Infinity);
    });
  }

  get size(): number {
    return this.open.size;
  }

  private admit(socket: Socket): void {
    if (this.open.size >= this.max && !this.evictIdle()) {
      this.counts.refused++;
      socket.destroy();
      return;
    }
    this.open.set(socket, 0);
    socket.once('close', () => this.open.delete(socket));
  }

  /** Closes the oldest idle connection; false when there is none. */
  private evictIdle(): boolean {
    for (const [socket, busy] of this.open) {
      if (busy > 0) continue;
      this.open.delete(socket);
      socket.destroy();
      this.counts.evicted++;
      return true;
    }
    return false;
  }
}
