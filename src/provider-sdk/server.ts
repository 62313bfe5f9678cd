// serveProvider(): any object implementing Provider, served over the remote provider protocol
// (src/providers/remote/protocol.ts, docs/remote-provider.md), so a virtual kubelet running
// `--provider remote` can use it from another process or machine.
//
//   const server = await serveProvider(myProvider, { port: 9443, token: 's3cr3t', tls: { cert, key } });
//   ...
//   await server.close();
//
// Bad input never reaches the provider: unknown versions, malformed JSON, invalid fields and
// oversize bodies are answered with a JSON error naming the problem (400/413/415), and nothing
// a client sends can make the server throw.
import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { InvalidRequestError, NotFoundError, UnsupportedError, errorMessage } from '../errors.ts';
import { parseLogOptions } from '../kubelet-api/routes/logs.ts';
import { silentLogger, type Logger } from '../log.ts';
import type { Pod } from '../kube/types.ts';
import { providerCapabilities, type Provider, type ResolvedPod } from '../providers/provider.ts';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_MAX_REQUEST_BYTES,
  ERROR_STATUS,
  PROTOCOL_PREFIX,
  PROTOCOL_VERSION,
  REMOTE_CAPABILITIES,
  type RemoteCapability,
  VERSION_HEADER,
  decodeResolvedPod,
  deleteBodySchema,
  describeZodError,
  encodeResolvedPod,
  wireResolvedPodSchema,
  type CapabilitiesResponse,
  type ErrorCode,
  type WireResolvedPod,
} from '../providers/remote/protocol.ts';
import { VK_VERSION } from '../version.ts';
import { serveCommandSession, servePortForwardSession, type Upgrade } from './sessions.ts';

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
  /** Stops listening and drops every connection (watches and sessions included). The provider is left as it is. */
  close(): Promise<void>;
}

class ProtocolError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

const POD_ROUTE = /^\/pods\/([^/]+)\/([^/]+)(?:\/(status|resolved|portforward|containers\/([^/]+)\/(logs|exec|attach)))?$/;

interface Route {
  kind: 'capabilities' | 'ping' | 'node' | 'stats' | 'pods' | 'watch' | 'pod' | 'status' | 'resolved' | 'logs' | 'exec' | 'attach' | 'portforward';
  namespace?: string;
  name?: string;
  container?: string;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ProtocolError('BadRequest', `malformed percent-encoding in path segment ${JSON.stringify(segment)}`);
  }
}

/** Checks version and matches the route; throws ProtocolError for unknown versions and paths. */
function matchRoute(pathname: string, versionHeader: string | string[] | undefined): Route {
  const version = /^\/v(\d+)(\/.*)?$/.exec(pathname);
  if (!version) throw new ProtocolError('UnknownPath', `no such endpoint ${pathname}: remote provider protocol paths start with ${PROTOCOL_PREFIX}/`);
  if (Number(version[1]) !== PROTOCOL_VERSION) throw new ProtocolError('UnsupportedVersion', `protocol version v${version[1]} is not supported by this server; it speaks v${PROTOCOL_VERSION}`);
  if (versionHeader !== undefined && String(versionHeader).trim() !== String(PROTOCOL_VERSION)) {
    throw new ProtocolError('UnsupportedVersion', `${VERSION_HEADER} header ${JSON.stringify(String(versionHeader))} is not supported by this server; it speaks ${PROTOCOL_VERSION}`);
  }
  const rest = version[2] ?? '/';
  switch (rest) {
    case '/capabilities':
      return { kind: 'capabilities' };
    case '/ping':
      return { kind: 'ping' };
    case '/node':
      return { kind: 'node' };
    case '/stats':
      return { kind: 'stats' };
    case '/pods':
      return { kind: 'pods' };
    case '/pods/watch':
      return { kind: 'watch' };
  }
  const m = POD_ROUTE.exec(rest);
  if (!m) throw new ProtocolError('UnknownPath', `no such endpoint ${pathname}`);
  const namespace = decode(m[1]!);
  const name = decode(m[2]!);
  if (m[4] !== undefined) return { kind: m[5] as 'logs' | 'exec' | 'attach', namespace, name, container: decode(m[4]) };
  return { kind: (m[3] as 'status' | 'resolved' | 'portforward' | undefined) ?? 'pod', namespace, name };
}

const ALLOWED: Record<Route['kind'], string[]> = {
  capabilities: ['GET'],
  ping: ['GET'],
  node: ['GET'],
  stats: ['GET'],
  pods: ['GET', 'POST'],
  watch: ['GET'],
  pod: ['GET', 'PUT', 'DELETE'],
  status: ['GET'],
  resolved: ['GET'],
  logs: ['GET'],
  exec: ['GET'],
  attach: ['GET'],
  portforward: ['GET'],
};

/** The protocol error code and message for anything a handler or the provider threw. */
function classify(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof ProtocolError) return { code: err.code, message: err.message };
  if (err instanceof InvalidRequestError) return { code: 'BadRequest', message: err.message };
  if (err instanceof NotFoundError) return { code: 'NotFound', message: err.message };
  if (err instanceof UnsupportedError) return { code: 'Unsupported', message: err.message };
  return { code: 'ProviderError', message: errorMessage(err) };
}

function flag(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && !['0', 'false', 'f', ''].includes(value.toLowerCase());
}

type ResolvedPodSource = { resolvedPod?: (namespace: string, name: string) => ResolvedPod | undefined | Promise<ResolvedPod | undefined> };

export async function serveProvider(provider: Provider, options: ServeProviderOptions): Promise<ProviderServer> {
  const log = options.log ?? silentLogger;
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  const maxWatchBuffer = options.maxWatchBufferBytes ?? 64 << 20;
  const tokenDigest = options.token !== undefined ? digest(options.token) : undefined;
  const capabilities = providerCapabilities(provider).filter((c): c is RemoteCapability => (REMOTE_CAPABILITIES as readonly string[]).includes(c));
  const has = (capability: RemoteCapability) => capabilities.includes(capability);
  const resolvedSource = provider as Provider & ResolvedPodSource;
  const extensions = typeof resolvedSource.resolvedPod === 'function' ? ['resolvedPod'] : [];
  const declared: CapabilitiesResponse = {
    protocol: `v${PROTOCOL_VERSION}`,
    name: provider.name,
    capabilities,
    extensions,
    maxRequestBytes,
    heartbeatIntervalMs,
    server: `vk-provider-sdk-ts/${VK_VERSION}`,
  };

  // --- Push: one listener on the provider, fanned out to every open watch.
  const watchers = new Set<ServerResponse>();
  const broadcast = (line: string) => {
    for (const res of watchers) {
      if (res.writableLength > maxWatchBuffer) {
        log.warn({ buffered: res.writableLength }, 'a watcher fell too far behind; disconnecting it (it resyncs when it reconnects)');
        watchers.delete(res);
        res.destroy();
        continue;
      }
      res.write(line);
    }
  };
  if (provider.notifyPods) {
    provider.notifyPods((pod: Pod) => {
      if (watchers.size === 0) return;
      let line: string;
      try {
        line = `${JSON.stringify({ type: 'POD', pod })}\n`;
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'cannot serialize a pod for the status stream');
        return;
      }
      broadcast(line);
    });
  }
  const heartbeat = setInterval(() => broadcast('{"type":"HEARTBEAT"}\n'), heartbeatIntervalMs);
  heartbeat.unref();

  const authorized = (req: IncomingMessage): boolean => {
    if (!tokenDigest) return true;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match !== null && timingSafeEqual(digest(match[1]!), tokenDigest);
  };

  /** Reads a JSON body within the size limit and validates it. */
  const readJson = async <S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> => {
    const type = req.headers['content-type'];
    if (type !== undefined && !/^application\/json\b/i.test(type)) throw new ProtocolError('UnsupportedMediaType', `request body must be application/json, not ${type}`);
    const declaredLength = Number(req.headers['content-length']);
    if (Number.isFinite(declaredLength) && declaredLength > maxRequestBytes) throw new ProtocolError('PayloadTooLarge', `request body of ${declaredLength} bytes exceeds the limit of ${maxRequestBytes} bytes`);
    // Read with events, not for-await: breaking out of the loop would destroy the socket before
    // the 413 goes out. After an error the rest of the body is drained (and dropped) by the server,
    // so the answer reaches the client and the connection stays usable.
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      let size = 0;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxRequestBytes) {
          req.off('data', onData);
          chunks.length = 0;
          reject(new ProtocolError('PayloadTooLarge', `request body exceeds the limit of ${maxRequestBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => resolve());
      req.once('error', reject);
    });
    const text = Buffer.concat(chunks).toString('utf8');
    if (text.trim() === '') throw new ProtocolError('BadRequest', 'request body is empty; expected JSON');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ProtocolError('BadRequest', `malformed JSON in request body: ${errorMessage(err)}`);
    }
    const result = schema.safeParse(parsed);
    if (!result.success) throw new ProtocolError('BadRequest', `invalid request body: ${describeZodError(result.error)}`);
    return result.data;
  };

  const sendJson = (res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), [VERSION_HEADER]: String(PROTOCOL_VERSION), ...extraHeaders });
    res.end(text);
  };

  const sendError = (res: ServerResponse, err: unknown) => {
    const { code, message } = classify(err);
    // A body left unread is drained by the server once the answer is out (bounded by requestTimeout).
    sendJson(res, ERROR_STATUS[code], { error: { code, message } });
    if (code === 'ProviderError' || code === 'Internal') log.debug({ code, message }, 'request failed');
  };

  const requireCapability = (capability: RemoteCapability) => {
    if (!has(capability)) throw new ProtocolError('Unsupported', `provider ${provider.name} does not implement ${capability}`);
  };

  const podPath = (route: Route) => `${route.namespace}/${route.name}`;

  const checkSamePod = (route: Route, pod: Pod) => {
    if (pod.metadata?.namespace !== route.namespace || pod.metadata?.name !== route.name) {
      throw new ProtocolError('BadRequest', `invalid request body: pod ${pod.metadata?.namespace}/${pod.metadata?.name} does not match the path's pod ${podPath(route)}`);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://provider');
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const call = { signal: gone.signal };
    if (!authorized(req)) {
      sendJson(res, 401, { error: { code: 'Unauthorized', message: 'missing or invalid bearer token' } }, { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    const route = matchRoute(url.pathname, req.headers[VERSION_HEADER]);
    const method = req.method ?? 'GET';
    if (!ALLOWED[route.kind].includes(method)) {
      sendJson(res, 405, { error: { code: 'MethodNotAllowed', message: `${method} is not allowed on ${url.pathname} (allowed: ${ALLOWED[route.kind].join(', ')})` } }, { Allow: ALLOWED[route.kind].join(', ') });
      return;
    }
    const ns = route.namespace ?? '';
    const name = route.name ?? '';
    switch (route.kind) {
      case 'capabilities':
        return sendJson(res, 200, declared);
      case 'ping': {
        if (provider.ping) {
          const abort = new AbortController();
          res.once('close', () => abort.abort());
          try {
            await provider.ping(AbortSignal.any([abort.signal, AbortSignal.timeout(30_000)]));
          } catch (err) {
            return sendJson(res, 503, { error: { code: 'Unhealthy', message: errorMessage(err) } });
          }
        }
        return sendJson(res, 200, { ok: true });
      }
      case 'node':
        requireCapability('nodeConfig');
        return sendJson(res, 200, provider.nodeConfig!());
      case 'stats':
        requireCapability('getStats');
        return sendJson(res, 200, { pods: await provider.getStats!() });
      case 'pods': {
        if (method === 'GET') return sendJson(res, 200, { items: await provider.listPods(call) });
        const body = (await readJson(req, wireResolvedPodSchema)) as WireResolvedPod;
        await provider.createPod(decodeResolvedPod(body), call);
        return sendJson(res, 201, {});
      }
      case 'watch': {
        requireCapability('notifyPods');
        res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache', [VERSION_HEADER]: String(PROTOCOL_VERSION) });
        res.socket?.setNoDelay(true);
        watchers.add(res);
        res.once('close', () => watchers.delete(res));
        res.write('{"type":"READY"}\n');
        return;
      }
      case 'pod': {
        if (method === 'GET') {
          const pod = await provider.getPod(ns, name, call);
          if (!pod) throw new NotFoundError(`pod ${ns}/${name} is not known to provider ${provider.name}`);
          return sendJson(res, 200, pod);
        }
        if (method === 'PUT') {
          const body = (await readJson(req, wireResolvedPodSchema)) as WireResolvedPod;
          checkSamePod(route, body.pod);
          await provider.updatePod(decodeResolvedPod(body), call);
          return sendJson(res, 200, {});
        }
        const body = (await readJson(req, deleteBodySchema)) as { pod: Pod };
        checkSamePod(route, body.pod);
        await provider.deletePod(body.pod, { ...call, reason: 'deleted' });
        return sendJson(res, 200, {});
      }
      case 'status': {
        const status = await provider.getPodStatus(ns, name, call);
        if (!status) throw new NotFoundError(`pod ${ns}/${name} is not known to provider ${provider.name}`);
        return sendJson(res, 200, status);
      }
      case 'resolved': {
        if (!resolvedSource.resolvedPod) throw new ProtocolError('Unsupported', `provider ${provider.name} does not implement the resolvedPod extension`);
        const resolved = await resolvedSource.resolvedPod(ns, name);
        if (!resolved) throw new NotFoundError(`pod ${ns}/${name} is not known to provider ${provider.name}`);
        return sendJson(res, 200, encodeResolvedPod(resolved));
      }
      case 'logs': {
        requireCapability('getContainerLogs');
        const options = parseLogOptions(url.searchParams);
        const abort = new AbortController();
        res.once('close', () => abort.abort());
        const stream = await provider.getContainerLogs!(ns, name, route.container ?? '', { ...options, signal: abort.signal });
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', [VERSION_HEADER]: String(PROTOCOL_VERSION) });
        if (options.follow) res.flushHeaders();
        try {
          await pipeline(stream, res);
        } catch {
          res.destroy(); // the client went away, or the provider's stream failed midway
        } finally {
          abort.abort();
        }
        return;
      }
      case 'exec':
      case 'attach':
      case 'portforward':
        throw new ProtocolError('BadRequest', `${url.pathname} is a WebSocket endpoint: send an Upgrade: websocket request with subprotocol v5.channel.k8s.io`);
    }
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    res.on('error', () => {});
    handle(req, res).catch((err: unknown) => {
      try {
        sendError(res, err);
      } catch {
        res.destroy();
      }
    });
  };

  // --- Upgrades: exec, attach and port-forward sessions.
  const sockets = new Set<Duplex>();
  const refuse = (socket: Duplex, err: unknown) => {
    const { code, message } = classify(err);
    const status = ERROR_STATUS[code];
    const body = JSON.stringify({ error: { code, message } });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\n${VERSION_HEADER}: ${PROTOCOL_VERSION}\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    try {
      if (!authorized(req)) throw new ProtocolError('Unauthorized', 'missing or invalid bearer token');
      const url = new URL(req.url ?? '/', 'http://provider');
      const route = matchRoute(url.pathname, req.headers[VERSION_HEADER]);
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw new ProtocolError('BadRequest', `unsupported upgrade ${JSON.stringify(req.headers.upgrade ?? '')}: only websocket`);
      const upgrade: Upgrade = { req, socket, head };
      const query = url.searchParams;
      const namespace = route.namespace ?? '';
      const pod = route.name ?? '';
      if (route.kind === 'portforward') {
        requireCapability('portForward');
        const ports = query.getAll('port');
        const port = Number(ports[0]);
        if (ports.length !== 1 || !Number.isInteger(port) || port < 1 || port > 65535) throw new ProtocolError('BadRequest', 'query parameter "port" is required once, with a port between 1 and 65535');
        void servePortForwardSession(provider, { namespace, pod, port }, upgrade, log).catch(() => socket.destroy());
        return;
      }
      if (route.kind === 'exec' || route.kind === 'attach') {
        requireCapability(route.kind === 'exec' ? 'runInContainer' : 'attachToContainer');
        const command = route.kind === 'exec' ? query.getAll('command') : undefined;
        if (command && command.length === 0) throw new ProtocolError('BadRequest', 'missing command: at least one "command" query parameter is required');
        const request = { namespace, pod, container: route.container ?? '', command, stdin: flag(query, 'input'), stdout: flag(query, 'output'), stderr: flag(query, 'error'), tty: flag(query, 'tty') };
        void serveCommandSession(provider, request, upgrade, log).catch(() => socket.destroy());
        return;
      }
      throw new ProtocolError('BadRequest', `${url.pathname} does not take an upgrade`);
    } catch (err) {
      refuse(socket, err);
    }
  };

  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key, ...(options.tls.ca && { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true }) }, onRequest)
    : http.createServer(onRequest);
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000; // receiving a whole request; responses (watch, logs) may last
  server.keepAliveTimeout = 65_000;
  server.on('upgrade', onUpgrade);
  server.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
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
        clearInterval(heartbeat);
        for (const res of watchers) res.destroy();
        watchers.clear();
        for (const socket of sockets) socket.destroy();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}
