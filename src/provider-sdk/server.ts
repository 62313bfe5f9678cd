// serveProvider(): any object implementing Provider, served over the remote provider protocol
// (src/protocol/, docs/remote-provider.md), so a virtual kubelet running `--provider remote`
// can use it from another process or machine. Versions 1 and 2 are both served: each request
// is answered in the version its VK-Provider-Protocol header asks for.
//
//   const server = await serveProvider(myProvider, { port: 9443, token: 's3cr3t', tls: { cert, key } });
//   ...
//   await server.close();
//
// Bad input never reaches the provider: unknown versions, malformed JSON, invalid fields and
// oversize bodies are answered with a JSON error naming the problem (400/413/415), and nothing
// a client sends can make the server throw. This file: listening, auth, upgrades, shutdown;
// routes.ts matches paths, handlers.ts serves them, body.ts reads and writes JSON,
// watch-hub.ts fans out the status stream, sessions.ts runs exec/attach/port-forward.
import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { AbortedError, InvalidRequestError, errorMessage } from '../errors.ts';
import { silentLogger, type Logger } from '../log.ts';
import { WireStatusError, encodeError } from '../protocol/errors.ts';
import { parseCommandQuery } from '../protocol/query.ts';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_REQUEST_BYTES,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  VERSION_HEADER,
  isRemoteCapability,
  type ProtocolVersion,
  type RemoteExtension,
} from '../protocol/wire.ts';
import { providerCapabilities, type Provider } from '../providers/provider.ts';
import { VK_VERSION } from '../version.ts';
import { sendError } from './body.ts';
import { ATTR, tracer } from '../tracing/tracer.ts';
import { handle, requireCapability, traceparentOf, type HandlerContext, type ResolvedPodSource } from './handlers.ts';
import { ALLOWED, checkMethod, matchRoute, requestVersion } from './routes.ts';
import { serveCommandSession, servePortForwardSession, type Upgrade } from './sessions.ts';
import { WatchHub } from './watch-hub.ts';

export interface ProviderServerTls {
  /** PEM server certificate (chain) and key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mTLS). */
  ca?: string | Buffer;
}

export interface ServeProviderOptions {
  /** 0: any free port (see the returned port). */
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  tls?: ProviderServerTls;
  /** Larger request bodies get 413 (default 16 MiB). */
  maxRequestBytes?: number;
  /** The watch stream's heartbeat period (default 10 s). */
  heartbeatIntervalMs?: number;
  /** A watcher that falls this far behind is disconnected (it resyncs on reconnect). Default 64 MiB. */
  maxWatchBufferBytes?: number;
  log?: Logger;
}

export interface ProviderServer {
  port: number;
  /** e.g. https://127.0.0.1:9443 */
  url: string;
  /** Stops listening, aborts the provider calls in flight and drops every connection (watches and sessions included). The provider is left as it is. */
  close(): Promise<void>;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The version to answer a request in, before it is known to be valid: what it asks for if we speak it, else 1. */
function answerVersion(req: IncomingMessage): ProtocolVersion {
  try {
    return requestVersion(req.headers[VERSION_HEADER]);
  } catch {
    return 1;
  }
}

export async function serveProvider(provider: Provider, options: ServeProviderOptions): Promise<ProviderServer> {
  const log = options.log ?? silentLogger;
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  const tokenDigest = options.token !== undefined ? digest(options.token) : undefined;
  const capabilities = providerCapabilities(provider).filter(isRemoteCapability);
  const source = provider as Provider & ResolvedPodSource;
  const extensions: RemoteExtension[] = typeof source.resolvedPod === 'function' ? ['resolvedPod'] : [];
  const shutdown = new AbortController();
  const watches = new WatchHub(provider, { heartbeatIntervalMs, maxBufferBytes: options.maxWatchBufferBytes ?? 64 << 20, log });
  const ctx: HandlerContext = {
    provider: source,
    declared: {
      versions: [...PROTOCOL_VERSIONS],
      name: provider.name,
      capabilities,
      extensions,
      maxRequestBytes,
      heartbeatIntervalMs,
      server: `vk-provider-sdk-ts/${VK_VERSION}`,
    },
    watches,
    maxRequestBytes,
  };

  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenDigest) return true;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match !== null && timingSafeEqual(digest(match[1]!), tokenDigest);
  };
  const unauthorized = () => new WireStatusError('VK_INVALID_REQUEST', 'Unauthorized', 'missing or invalid bearer token');

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.on('error', () => {});
    let version = answerVersion(req);
    // The provider call is aborted when the client goes away (the response closes before it is
    // sent) or the server shuts down; after a normal answer the abort reaches nobody.
    const gone = new AbortController();
    res.once('close', () => gone.abort(new AbortedError('the client closed the connection')));
    const signal = AbortSignal.any([gone.signal, shutdown.signal]);
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://provider');
      if (!authorized(req)) throw unauthorized();
      const route = matchRoute(url.pathname);
      version = requestVersion(req.headers[VERSION_HEADER]);
      const method = req.method ?? 'GET';
      checkMethod(route, method, url.pathname);
      const exchange = { req, res, url, route, method, version, signal };
      const tracing = tracer();
      if (!tracing.enabled) return handle(ctx, exchange);
      // The provider process traces too: its span is the child of the core's (traceparent).
      const attributes = route.namespace ? { [ATTR.namespace]: route.namespace, [ATTR.pod]: route.name } : {};
      await tracing.inSpan(`provider-sdk ${method} ${route.kind}`, attributes, () => handle(ctx, exchange), {
        kind: 'server',
        remoteParent: traceparentOf(req),
      });
    })().catch((err: unknown) => {
      try {
        const extra: Record<string, string> = {};
        if (err instanceof WireStatusError && err.v1Code === 'Unauthorized') extra['WWW-Authenticate'] = 'Bearer';
        if (err instanceof WireStatusError && err.v1Code === 'MethodNotAllowed') {
          const route = matchRoute(new URL(req.url ?? '/', 'http://provider').pathname);
          extra.Allow = ALLOWED[route.kind].join(', ');
        }
        const { status } = sendError(res, version, err, extra);
        if (status >= 500) log.debug({ status, err: errorMessage(err) }, 'request failed');
      } catch {
        res.destroy();
      }
    });
  };

  // --- Upgrades: exec, attach and port-forward sessions.
  const sockets = new Set<Duplex>();
  const refuse = (socket: Duplex, version: ProtocolVersion, err: unknown) => {
    const { status, body } = encodeError(err, version);
    const text = JSON.stringify(body);
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n${VERSION_HEADER}: ${version}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let version = answerVersion(req);
    try {
      if (!authorized(req)) throw unauthorized();
      const url = new URL(req.url ?? '/', 'http://provider');
      const route = matchRoute(url.pathname);
      version = requestVersion(req.headers[VERSION_HEADER]);
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket')
        throw new InvalidRequestError(`unsupported upgrade ${JSON.stringify(req.headers.upgrade ?? '')}: only websocket`);
      const upgrade: Upgrade = { req, socket, head };
      const query = url.searchParams;
      const { namespace, name: pod } = route;
      if (route.kind === 'portforward') {
        requireCapability(provider, capabilities, 'portForward');
        const ports = query.getAll('port');
        const port = Number(ports[0]);
        if (ports.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535)
          throw new InvalidRequestError('query parameter "port" is required once, with a port between 1 and 65535');
        void servePortForwardSession(provider, { namespace, pod, port }, upgrade, log).catch(() => socket.destroy());
        return;
      }
      if (route.kind === 'exec' || route.kind === 'attach') {
        requireCapability(provider, capabilities, route.kind === 'exec' ? 'runInContainer' : 'attachToContainer');
        const command = route.kind === 'exec' ? query.getAll('command') : undefined;
        if (command && command.length === 0) throw new InvalidRequestError('missing command: at least one "command" query parameter is required');
        const request = { namespace, pod, container: route.container, command, ...parseCommandQuery(query) };
        void serveCommandSession(provider, request, upgrade, log).catch(() => socket.destroy());
        return;
      }
      throw new InvalidRequestError(`${url.pathname} does not take an upgrade`);
    } catch (err) {
      refuse(socket, version, err);
    }
  };

  const server = options.tls
    ? https.createServer(
        { cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca && { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }) },
        onRequest,
      )
    : http.createServer(onRequest);
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000; // receiving a whole request; responses (watch, logs) may last
  server.keepAliveTimeout = 65_000;
  server.on('upgrade', onUpgrade);
  server.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed'));
  // What Node's HTTP parser rejects never reaches onRequest: answer it as the protocol answers
  // every bad request (a JSON error body) instead of Node's bare 400.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    log.debug({ err: err.message, code: err.code }, 'malformed HTTP request');
    if (!socket.writable) return void socket.destroy();
    const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
    refuse(socket, PROTOCOL_VERSION, new InvalidRequestError(`malformed HTTP request (${err.code ?? err.message})${tooLarge ? ': headers too large' : ''}`));
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    watches.close();
    throw err;
  }
  server.on('error', (err) => log.error({ err: err.message }, 'provider server error'));
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  log.info({ url, provider: provider.name, capabilities, extensions }, 'serving provider');

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    url,
    close() {
      closing ??= (async () => {
        shutdown.abort(new AbortedError('the provider server is closing'));
        watches.close();
        for (const socket of sockets) socket.destroy();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
