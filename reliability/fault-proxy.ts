// A TCP proxy in front of kube-apiserver that the chaos run breaks on purpose: it drops every
// connection (watches included), resets them (RST), or stalls them (no bytes either way for a
// while, new connections held too). TLS passes through untouched: the client still verifies
// kube-apiserver's certificate, so the virtual kubelet under test carries no test hooks.
import net from 'node:net';

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export class FaultProxy {
  readonly port: number;
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  private stalledUntil = 0;
  private stallTimer: NodeJS.Timeout | undefined;

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
  }

  /** Listens on 127.0.0.1 (a free port, or `port`) and forwards to targetHost:targetPort. */
  static async start(targetHost: string, targetPort: number, port = 0): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    const proxy = new FaultProxy(server, (server.address() as net.AddressInfo).port);
    server.on('connection', (client) => proxy.accept(client, targetHost, targetPort));
    return proxy;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Closes every connection (FIN): the client's watches and in-flight requests end. */
  dropAll(): number {
    const n = this.pairs.size;
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    return n;
  }

  /** Resets every connection (RST to the client). */
  resetAll(): number {
    const n = this.pairs.size;
    for (const p of this.pairs) {
      p.client.resetAndDestroy();
      p.upstream.destroy();
    }
    return n;
  }

  /** No bytes pass either way for `ms` (connections stay open; new ones wait too). */
  stall(ms: number): void {
    this.stalledUntil = Date.now() + ms;
    for (const p of this.pairs) this.pause(p);
    clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      this.stalledUntil = 0;
      for (const p of this.pairs) this.resume(p);
    }, ms);
  }

  async close(): Promise<void> {
    clearTimeout(this.stallTimer);
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private get stalled(): boolean {
    return Date.now() < this.stalledUntil;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    const upstream = net.connect(port, host);
    const pair = { client, upstream };
    this.pairs.add(pair);
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    this.forward(client, upstream);
    this.forward(upstream, client);
    if (this.stalled) this.pause(pair);
  }

  /** Like pipe(), but a stall can hold the data (pipe() would resume its source on 'drain'). */
  private forward(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.stalled) from.resume();
    });
  }

  private pause(p: Pair): void {
    p.client.pause();
    p.upstream.pause();
  }

  private resume(p: Pair): void {
    p.client.resume();
    p.upstream.resume();
  }
}
