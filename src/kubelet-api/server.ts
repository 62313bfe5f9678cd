// The kubelet API on port 10250: HTTPS, every request authenticated and authorized (auth.ts),
// then routed by the kubelet's paths. Exec, attach and port-forward arrive as HTTP Upgrade
// requests (SPDY or WebSocket); once the caller may and the pod/container exist, they are handed
// to the upgrade handler the streaming code registers with setUpgradeHandler.
//
// The HTTPS server is created on the first connection: a plain TCP listener holds the port until
// then. Its TLS context is ~34 KiB of native memory, and most of a process's 1,000 virtual nodes
// are never called (34 MiB of RSS for nothing).
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { AbortedError, InvalidRequestError, UnsupportedError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Provider } from '../providers/provider.ts';
import { requestAttributes, type KubeletAuth, type UserInfo } from './auth.ts';
import { ConnectionLimit } from './connection-limit.ts';
import { errorStatus, sendError, writeSocketError, type RouteContext } from './http.ts';
import { healthz, type HealthCheck } from './routes/healthz.ts';
import { containerLogs } from './routes/logs.ts';
import { processMetrics, resourceMetrics } from './routes/metrics.ts';
import { pods } from './routes/pods.ts';
import { run } from './routes/run.ts';
import { statsSummary } from './routes/stats.ts';
import { StatsSource } from './stats.ts';
import { findTarget } from './target.ts';
import { checkClientCA, checkServingPair } from './x509.ts';
import { ATTR, tracer, type SpanAttributes } from '../tracing/tracer.ts';

export { findTarget, type Target } from './target.ts';
export type { HealthCheck } from './routes/healthz.ts';

export type UpgradeRoute = 'exec' | 'attach' | 'portForward';

export interface UpgradeRequest {
  route: UpgradeRoute;
  namespace: string;
  pod: string;
  container?: string;
  uid?: string;
  query: URLSearchParams;
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
}

export type UpgradeHandler = (request: UpgradeRequest) => void;

/** Request metrics the server reports (VkMetrics.kubeletServer() implements them). */
export interface KubeletServerMetrics {
  request(method: string, path: string, code: number, seconds: number): void;
  auth(result: 'allowed' | 'unauthenticated' | 'forbidden' | 'error'): void;
}

export interface KubeletServerOptions {
  nodeName: string;
  provider: Provider;
  log: Logger;
  /** Listen address; default 0.0.0.0. */
  address?: string;
  /** 0 picks a free port; `port` tells which. */
  port: number;
  /** PEM serving certificate (chain) and key. */
  cert: string;
  key: string;
  /** PEM CA bundle client certificates must chain to; without it only bearer tokens authenticate. */
  clientCA?: string;
  /** Undefined: no authentication or authorization at all (--kubelet-auth=none, local development only). */
  auth?: KubeletAuth;
  /** The registry served on /metrics, asked for on each scrape. */
  registry?: () => Registry;
  metrics?: KubeletServerMetrics;
  healthChecks?: Record<string, HealthCheck>;
  stats?: StatsSource;
  /** Open connections before the oldest idle one is closed (see connection-limit.ts). */
  maxConnections?: number;
}

interface Route {
  pattern: RegExp;
  methods: string[];
  handler?: (ctx: RouteContext) => Promise<void> | void;
  upgrade?: UpgradeRoute;
}

function route(template: string, methods: string[], handler: Route['handler'], upgrade?: UpgradeRoute): Route {
  // {name} → a named path segment; a trailing slash is optional.
  const source = template.replace(/\{(\w+)\}/g, (_m, name: string) => `(?<${name}>[^/]+)`).replace(/\/$/, '');
  return { pattern: new RegExp(`^${source}/?$`), methods, handler, upgrade };
}

const CAPABILITY: Record<UpgradeRoute, { method: 'runInContainer' | 'attachToContainer' | 'portForward'; what: string }> = {
  exec: { method: 'runInContainer', what: 'exec' },
  attach: { method: 'attachToContainer', what: 'attach' },
  portForward: { method: 'portForward', what: 'port forwarding' },
};

const POD_ROOTS = new Set(['containerLogs', 'exec', 'attach', 'portForward', 'run']);

/** The pod a kubelet API path names (/exec/<ns>/<pod>[/<uid>]/<container>, ...), as span attributes. */
export function podOfPath(path: string): SpanAttributes {
  const parts = path.split('/').filter(Boolean);
  if (!POD_ROOTS.has(parts[0] ?? '') || parts.length < 3) return {};
  const withUid = parts[0] === 'portForward' ? parts.length === 4 : parts[0] !== 'containerLogs' && parts.length === 5;
  return { [ATTR.namespace]: parts[1], [ATTR.pod]: parts[2], [ATTR.uid]: withUid ? parts[3] : undefined };
}

const KNOWN_ROOTS = new Set(['containerLogs', 'exec', 'attach', 'portForward', 'run', 'pods', 'runningpods', 'healthz', 'stats', 'metrics', 'configz', 'logs']);

/** The metrics label for a path: its first segment (metrics/<x> for /metrics/*), or "other". */
export function pathBucket(path: string): string {
  const parts = path.split('/').filter(Boolean);
  const root = parts[0] ?? '';
  if (!KNOWN_ROOTS.has(root)) return 'other';
  return root === 'metrics' && parts[1] ? `metrics/${parts[1]}` : root;
}

export class KubeletServer {
  private readonly options: KubeletServerOptions;
  private readonly log: Logger;
  /** Holds the port; hands every connection to the HTTPS server. */
  private readonly listener: net.Server;
  /** Created on the first connection (see the top of the file). */
  private server: https.Server | undefined;
  /** The cap on open connections (evicting idle ones first). */
  readonly connections: ConnectionLimit;
  /** Built with the HTTPS server: nothing routes before a connection comes. */
  private routes: Route[] = [];
  private upgradeHandler: UpgradeHandler | undefined;
  private readonly upgraded = new Set<Duplex>();
  private cert: string;
  private key: string;
  private clientCA: string | undefined;

  private constructor(options: KubeletServerOptions) {
    // Checked now, as the TLS context that would refuse a bad pair is created only later.
    checkServingPair(options.cert, options.key);
    if (options.clientCA !== undefined) checkClientCA(options.clientCA);
    this.options = options;
    this.log = options.log.child({ component: 'kubelet-api' });
    this.cert = options.cert;
    this.key = options.key;
    this.clientCA = options.clientCA;
    this.connections = new ConnectionLimit(options.maxConnections);
    // noDelay as https.Server's own listener sets it.
    this.listener = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    let server: https.Server;
    try {
      server = this.httpsServer();
    } catch (err) {
      // A client CA bundle OpenSSL refuses: no connection can be served until it is replaced.
      this.log.warn({ err: errorMessage(err) }, 'kubelet API: cannot create the TLS server; connection closed');
      socket.destroy();
      return;
    }
    server.emit('connection', socket);
  }

  /** The HTTPS server, created on first use. */
  private httpsServer(): https.Server {
    if (this.server) return this.server;
    const server = https.createServer(this.tlsOptions());
    // http.Server tracks connections (closeAllConnections, request and header timeouts) from its
    // 'listening' event on; this one never listens itself.
    server.emit('listening');
    this.connections.watch(server);
    server.on(
      'request',
      (req: IncomingMessage, res: ServerResponse) =>
        void this.traced(
          req,
          () => this.onRequest(req, res),
          () => res.statusCode,
        ),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.traced(req, () => this.onUpgrade(req, socket, head)));
    server.on('tlsClientError', (err, socket) => {
      this.log.debug({ err: err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
    });
    server.on('clientError', (err, socket) => {
      this.log.debug({ err: err.message }, 'bad HTTP request');
      writeSocketError(socket, 400, 'Bad Request');
    });
    this.routes = this.buildRoutes();
    this.server = server;
    return server;
  }

  private buildRoutes(): Route[] {
    const stats = this.options.stats ?? new StatsSource(this.options.provider, this.options.nodeName);
    const checks = this.options.healthChecks ?? { ping: () => undefined };
    const GET = ['GET', 'HEAD'];
    const STREAM = ['GET', 'POST'];
    return [
      route('/containerLogs/{namespace}/{pod}/{container}', GET, containerLogs),
      route('/exec/{namespace}/{pod}/{container}', STREAM, undefined, 'exec'),
      route('/exec/{namespace}/{pod}/{uid}/{container}', STREAM, undefined, 'exec'),
      route('/attach/{namespace}/{pod}/{container}', STREAM, undefined, 'attach'),
      route('/attach/{namespace}/{pod}/{uid}/{container}', STREAM, undefined, 'attach'),
      route('/portForward/{namespace}/{pod}', STREAM, undefined, 'portForward'),
      route('/portForward/{namespace}/{pod}/{uid}', STREAM, undefined, 'portForward'),
      route('/run/{namespace}/{pod}/{container}', ['POST'], run),
      route('/run/{namespace}/{pod}/{uid}/{container}', ['POST'], run),
      route('/pods', GET, pods),
      route('/runningpods/', GET, pods),
      route('/healthz', GET, healthz(checks)),
      route('/healthz/{check}', GET, healthz(checks)),
      route('/metrics', GET, processMetrics(this.options.registry)),
      route('/metrics/resource', GET, resourceMetrics(stats)),
      route('/stats/summary', ['GET', 'HEAD', 'POST'], statsSummary(stats)),
    ];
  }

  /** Listens; resolves once bound (port 0: `port` tells the one picked). */
  static async start(options: KubeletServerOptions): Promise<KubeletServer> {
    const server = new KubeletServer(options);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => reject(err);
      server.listener.once('error', onError);
      server.listener.listen(options.port, options.address ?? '0.0.0.0', () => {
        server.listener.off('error', onError);
        resolve();
      });
    });
    server.log.info(
      { address: options.address ?? '0.0.0.0', port: server.port, auth: options.auth ? 'webhook' : 'none', clientCerts: Boolean(options.clientCA) },
      'kubelet API listening',
    );
    return server;
  }

  get port(): number {
    return (this.listener.address() as AddressInfo).port;
  }

  /** Where exec, attach and port-forward upgrades go once authorized and checked. */
  setUpgradeHandler(handler: UpgradeHandler): void {
    this.upgradeHandler = handler;
  }

  /** Whether a connection has come yet (and with it the HTTPS server and its TLS context). */
  get tlsReady(): boolean {
    return this.server !== undefined;
  }

  /** Swaps the serving certificate (new connections use it). */
  setCertificate(cert: string, key: string): void {
    checkServingPair(cert, key);
    this.cert = cert;
    this.key = key;
    this.server?.setSecureContext(this.tlsOptions());
  }

  /** Swaps the client CA bundle (after the cluster's CA ConfigMap changed). */
  setClientCA(clientCA: string | undefined): void {
    if (clientCA !== undefined) checkClientCA(clientCA);
    this.clientCA = clientCA;
    this.server?.setSecureContext(this.tlsOptions());
  }

  /** Stops listening and closes open connections, upgraded ones included. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    // Not listening itself, it answers close() with ERR_SERVER_NOT_RUNNING, but stops its timeout checks.
    this.server?.close(() => undefined);
    this.server?.closeAllConnections();
    for (const socket of this.upgraded) socket.destroy();
    this.upgraded.clear();
    await closed;
  }

  private tlsOptions(): https.ServerOptions {
    // Client certificates are verified against the client CA only (ca replaces the default
    // roots), but a missing or bad one does not fail the handshake: it just does not
    // authenticate, and the request gets a 401 it can read.
    const withCerts = Boolean(this.options.auth && this.clientCA);
    return {
      cert: this.cert,
      key: this.key,
      minVersion: 'TLSv1.2',
      requestCert: withCerts,
      rejectUnauthorized: false,
      ...(withCerts && { ca: this.clientCA }),
    };
  }

  /** 401/403/500 as status and message, or the user. Without auth everyone is allowed. */
  private async check(req: IncomingMessage, path: string): Promise<{ user?: UserInfo; error?: { status: number; message: string } }> {
    const auth = this.options.auth;
    if (!auth) return {};
    let user: UserInfo | undefined;
    try {
      user = await auth.authenticate(req);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'authentication failed');
    }
    if (!user) {
      this.options.metrics?.auth('unauthenticated');
      return { error: { status: 401, message: 'Unauthorized' } };
    }
    const decision = await auth.authorize(user, requestAttributes(req.method ?? '', path));
    if (!decision.allowed) {
      this.options.metrics?.auth(decision.status === 403 ? 'forbidden' : 'error');
      this.log.debug({ user: user.username, method: req.method, path }, decision.message);
      return { user, error: { status: decision.status, message: decision.message } };
    }
    this.options.metrics?.auth('allowed');
    return { user };
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | { status: number; message: string } {
    let methodMismatch = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      if (!r.methods.includes(method)) {
        methodMismatch = true;
        continue;
      }
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.groups ?? {})) {
        try {
          params[k] = decodeURIComponent(v);
        } catch {
          return { status: 400, message: `malformed path segment ${JSON.stringify(v)}` };
        }
      }
      return { route: r, params };
    }
    return methodMismatch ? { status: 405, message: `Method ${method} not allowed on ${path}` } : { status: 404, message: '404 page not found' };
  }

  /** A span per request when tracing is on: a child of the caller's traceparent (kube-apiserver sends one when it traces). */
  private traced(req: IncomingMessage, handle: () => Promise<void>, status?: () => number): Promise<void> {
    const tracing = tracer();
    if (!tracing.enabled) return handle();
    const path = new URL(req.url ?? '/', 'https://kubelet.invalid').pathname;
    const traceparent = typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined;
    return tracing.inSpan(
      `kubelet API ${req.method ?? ''} ${pathBucket(path)}`,
      { 'http.request.method': req.method, 'url.path': path },
      async (span) => {
        await handle();
        if (status) span.setAttribute('http.response.status_code', status());
      },
      // The pod's attributes go on the provider calls the request makes too.
      { kind: 'server', remoteParent: traceparent, inherited: podOfPath(path) },
    );
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'https://kubelet.invalid');
    const path = url.pathname;
    res.on('finish', () => this.options.metrics?.request(req.method ?? '', pathBucket(path), res.statusCode, (performance.now() - started) / 1000));
    try {
      const { error } = await this.check(req, path);
      if (error) return sendError(res, error.status, error.message);
      const found = this.match(req.method ?? '', path);
      if (!('route' in found)) return sendError(res, found.status, found.message);
      const { route: r, params } = found;
      // The kubelet's streaming handlers answer a plain request this way.
      if (r.upgrade || !r.handler) throw new InvalidRequestError('Upgrade request required');
      const gone = new AbortController();
      res.once('close', () => gone.abort(new AbortedError(`${req.method} ${path}: client went away`)));
      await r.handler({ req, res, url, params, provider: this.options.provider, nodeName: this.options.nodeName, log: this.log, signal: gone.signal });
    } catch (err) {
      const { status, message } = errorStatus(err);
      // 501 answers for a capability the provider lacks: not a failure worth a warning.
      if (status >= 500 && status !== 501) this.log.warn({ err: message, method: req.method, path }, 'kubelet API request failed');
      if (res.headersSent) res.destroy();
      else sendError(res, status, message);
    }
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'https://kubelet.invalid');
    const path = url.pathname;
    const method = req.method ?? '';
    const refuse = (status: number, message: string) => {
      this.options.metrics?.request(method, pathBucket(path), status, (performance.now() - started) / 1000);
      writeSocketError(socket, status, message, req.headers.accept);
    };
    socket.on('error', (err) => this.log.debug({ err: err.message, path }, 'upgrade socket error'));
    // Upgraded sockets are not the HTTP server's to close any more: close() destroys them.
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    try {
      const { error } = await this.check(req, path);
      if (error) return refuse(error.status, error.message);
      const found = this.match(method, path);
      if (!('route' in found)) return refuse(found.status, found.message);
      const { route: r, params } = found;
      if (!r.upgrade) throw new InvalidRequestError(`${path} does not support upgrade requests`);
      const { namespace = '', pod = '', container, uid } = params;
      const gone = new AbortController();
      socket.once('close', () => gone.abort(new AbortedError(`${method} ${path}: client went away`)));
      await findTarget(this.options.provider, namespace, pod, { container, uid, signal: gone.signal });
      const capability = CAPABILITY[r.upgrade];
      if (typeof this.options.provider[capability.method] !== 'function')
        throw new UnsupportedError(`provider ${this.options.provider.name} does not support ${capability.what}`);
      const handler = this.upgradeHandler;
      if (!handler) throw new UnsupportedError(`${capability.what} is not available on this virtual kubelet (no streaming handler registered)`);
      if (socket.destroyed) return;
      this.options.metrics?.request(method, pathBucket(path), 101, (performance.now() - started) / 1000);
      handler({
        route: r.upgrade,
        namespace,
        pod,
        ...(container !== undefined && { container }),
        ...(uid !== undefined && { uid }),
        query: url.searchParams,
        req,
        socket,
        head,
      });
    } catch (err) {
      const { status, message } = errorStatus(err);
      if (status >= 500 && status !== 501) this.log.warn({ err: message, method, path }, 'kubelet API upgrade request failed');
      refuse(status, message);
    }
  }
}
