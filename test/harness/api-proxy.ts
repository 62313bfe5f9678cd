// A plain-HTTP proxy between a test's client and kube-apiserver that the test can cut: it stops
// passing watch requests on (the client's watch is down while the test changes things behind
// its back), then lets them through again, optionally from another resourceVersion (to force a
// real 410). Everything else passes straight through. It lets end-to-end tests break a client's
// watch from outside, so the production code carries no test hooks.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ClientConfig } from '../../src/kube/kubeconfig.ts';

interface HeldWatch {
  forward: (resourceVersion?: string) => void;
}

export class ApiProxy {
  /** A kubeconfig that reaches the API server through the proxy (no credentials needed: the proxy adds them). */
  readonly kubeconfig: string;
  private readonly server: http.Server;
  private readonly dir: string;
  private readonly upstream: ClientConfig;
  private readonly agent: https.Agent;
  private cut = false;
  private held: HeldWatch[] = [];
  private heldWaiters: (() => void)[] = [];

  private constructor(upstream: ClientConfig, server: http.Server, dir: string) {
    this.upstream = upstream;
    this.server = server;
    this.dir = dir;
    const { ca, cert, key, rejectUnauthorized, servername } = upstream.tls;
    this.agent = new https.Agent({ keepAlive: true, ca, cert, key, rejectUnauthorized, servername });
    const { port } = server.address() as AddressInfo;
    this.kubeconfig = path.join(dir, 'kubeconfig');
    writeFileSync(
      this.kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'proxy', cluster: { server: `http://127.0.0.1:${port}` } }],
        contexts: [{ name: 'proxy', context: { cluster: 'proxy' } }],
        'current-context': 'proxy',
      }),
    );
    server.on('request', (req, res) => this.onRequest(req, res));
  }

  /** Starts a proxy in front of the API server `upstream` describes (a KubeClient's `config`). */
  static async start(upstream: ClientConfig): Promise<ApiProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ApiProxy(upstream, server, mkdtempSync(path.join(os.tmpdir(), 'vk-api-proxy-')));
  }

  /** From now on watch requests wait at the proxy: the client's next watch never reaches the server. */
  cutWatches(): void {
    this.cut = true;
  }

  /** Resolves once a watch request is waiting at the proxy (the client's watch is down). */
  watchHeld(): Promise<void> {
    if (this.held.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.heldWaiters.push(resolve));
  }

  /** Lets watches through again; the waiting ones ask for `resourceVersion` instead of their own when given. */
  restoreWatches(options: { resourceVersion?: string } = {}): void {
    this.cut = false;
    const held = this.held;
    this.held = [];
    for (const watch of held) watch.forward(options.resourceVersion);
  }

  async close(): Promise<void> {
    this.restoreWatches();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.agent.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.upstream.server);
    const forward = (resourceVersion?: string) => {
      if (resourceVersion !== undefined) url.searchParams.set('resourceVersion', resourceVersion);
      void this.pass(req, res, url);
    };
    if (this.cut && url.searchParams.get('watch') === 'true') {
      const watch = { forward };
      this.held.push(watch);
      // A client that gives up waiting is simply forgotten.
      res.once('close', () => (this.held = this.held.filter((w) => w !== watch)));
      for (const resolve of this.heldWaiters.splice(0)) resolve();
      return;
    }
    forward();
  }

  private async pass(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (res.destroyed) return;
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: url.host };
    delete headers.connection;
    const auth = await this.upstream.authorization();
    if (auth) headers.authorization = auth;
    const upstream = https.request(url, { method: req.method, headers, agent: this.agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    // The client went away before the answer was complete (a watch it stopped): so does the request upstream.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}
