// Small HTTP helpers shared by the kubelet API server and its routes. Errors are plain text
// with a trailing newline, like Go's http.Error (what the kubelet answers, and what
// kube-apiserver relays into its own errors for `kubectl logs`), except for clients that accept
// JSON (kubectl get --raw, client-go): they get a metav1.Status, whose message kubectl shows
// (for plain text it would show only a generic "the server could not find the requested resource").
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorMessage, httpStatus } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Provider } from '../providers/provider.ts';

/**
 * The status and message for an error a handler or provider threw. Handlers throw VkErrors
 * (NotFoundError, InvalidRequestError, UnsupportedError, ...) and the code decides the status,
 * by the one mapping in errors.ts: a container that is not running answers 400 as the kubelet's
 * does, a timeout 504, an unreachable backend 503, anything unnamed 500.
 */
export function errorStatus(err: unknown): { status: number; message: string } {
  return { status: httpStatus(err), message: errorMessage(err) };
}

export function sendText(res: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'Content-Type': contentType, 'X-Content-Type-Options': 'nosniff', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  500: 'InternalError',
  501: 'NotImplemented',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

function wantsJSON(accept: string | undefined): boolean {
  return /\bapplication\/json\b/i.test(accept ?? '');
}

/** A metav1.Status for an error. */
function statusBody(status: number, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: REASONS[status] ?? 'Unknown', code: status });
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  if (wantsJSON(res.req?.headers.accept)) sendText(res, status, statusBody(status, message), 'application/json');
  else sendText(res, status, `${message}\n`);
}

export function sendJSON(res: ServerResponse, body: unknown): void {
  sendText(res, 200, JSON.stringify(body), 'application/json');
}

/** Answers on a raw socket (an upgrade request that is refused) and closes it. */
export function writeSocketError(socket: Duplex, status: number, message: string, accept?: string, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const json = wantsJSON(accept);
  const body = json ? statusBody(status, message) : `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    `Content-Type: ${json ? 'application/json' : 'text/plain; charset=utf-8'}`,
    'X-Content-Type-Options: nosniff',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  // Closed a little after the answer is out, whatever the client does (a client that never closes its side would
  // otherwise hold the socket, and server.close(), forever).
  socket.once('finish', () => setTimeout(() => socket.destroy(), 5000).unref());
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  provider: Provider;
  nodeName: string;
  log: Logger;
  /** Aborted when the client goes away or the server closes. */
  signal: AbortSignal;
}
