// GET /containerLogs/{namespace}/{pod}/{container}: the container's log from the provider,
// streamed with backpressure; with follow, every chunk goes out as it comes (Node writes each
// chunk to the socket at once, with Nagle off) until the provider ends the stream or the client
// goes away (then the provider's stream is aborted).
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidRequestError, UnsupportedError } from '../../errors.ts';
import type { LogOptions } from '../../providers/provider.ts';
import { boolParam, errorStatus, intParam, sendError, type RouteContext } from '../http.ts';
import { findTarget } from '../target.ts';

export type LogRequest = Omit<LogOptions, 'signal'>;

// RFC 3339 as Go's time.RFC3339 parses it: optional fraction, Z or an offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Reads and validates the kubelet's log query parameters (v1 PodLogOptions). */
export function parseLogOptions(query: URLSearchParams, now: Date = new Date()): LogRequest {
  // "tail" is the kubelet's legacy name for tailLines; "all" means no limit.
  const tail = query.get('tail');
  const tailLines = tail === 'all' ? undefined : tail !== null && tail !== '' ? intParam(new URLSearchParams({ tailLines: tail }), 'tailLines') : intParam(query, 'tailLines');
  const limitBytes = intParam(query, 'limitBytes');
  const sinceSeconds = intParam(query, 'sinceSeconds');
  const sinceTimeText = query.get('sinceTime');
  if (tailLines !== undefined && tailLines < 0) throw new InvalidRequestError(`invalid tailLines ${tailLines}: must be greater than or equal to 0`);
  if (limitBytes !== undefined && limitBytes < 1) throw new InvalidRequestError(`invalid limitBytes ${limitBytes}: must be greater than 0`);
  if (sinceSeconds !== undefined && sinceSeconds < 1) throw new InvalidRequestError(`invalid sinceSeconds ${sinceSeconds}: must be greater than 0`);
  if (sinceSeconds !== undefined && sinceTimeText) throw new InvalidRequestError('at most one of sinceTime or sinceSeconds may be specified');
  let sinceTime: Date | undefined;
  if (sinceTimeText) {
    const parsed = Date.parse(sinceTimeText);
    if (!RFC3339.test(sinceTimeText) || Number.isNaN(parsed)) throw new InvalidRequestError(`invalid sinceTime ${JSON.stringify(sinceTimeText)}: expected an RFC 3339 time such as 2025-01-02T15:04:05Z`);
    sinceTime = new Date(parsed);
  } else if (sinceSeconds !== undefined) {
    sinceTime = new Date(now.getTime() - sinceSeconds * 1000);
  }
  const stream = query.get('stream');
  if (stream !== null && stream !== '' && !['All', 'Stdout', 'Stderr'].includes(stream)) throw new InvalidRequestError(`invalid stream ${JSON.stringify(stream)}: must be one of All, Stdout, Stderr`);
  return {
    follow: boolParam(query, 'follow'),
    previous: boolParam(query, 'previous'),
    timestamps: boolParam(query, 'timestamps'),
    ...(tailLines !== undefined && { tailLines }),
    ...(limitBytes !== undefined && { limitBytes }),
    ...(sinceTime && { sinceTime }),
  };
}

/** Passes at most `limit` bytes, then ends the stream (cutting mid-line, as the kubelet does). */
class ByteLimit extends Transform {
  private left: number;
  constructor(limit: number) {
    super();
    this.left = limit;
  }
  override _transform(chunk: Buffer | string, _encoding: BufferEncoding, done: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.left <= 0) return done();
    const out = buf.length > this.left ? buf.subarray(0, this.left) : buf;
    this.left -= out.length;
    this.push(out);
    if (this.left <= 0) this.push(null);
    done();
  }
}

export async function containerLogs(ctx: RouteContext): Promise<void> {
  const { namespace, pod, container } = ctx.params as { namespace: string; pod: string; container: string };
  const options = parseLogOptions(ctx.url.searchParams);
  const { provider } = ctx;
  await findTarget(provider, namespace, pod, { container, signal: ctx.signal });
  if (!provider.getContainerLogs) throw new UnsupportedError(`provider ${provider.name} does not support container logs`);
  const abort = new AbortController();
  const onClose = () => abort.abort();
  ctx.res.on('close', onClose);
  let stream;
  try {
    stream = await provider.getContainerLogs(namespace, pod, container, { ...options, signal: abort.signal });
  } catch (err) {
    ctx.res.off('close', onClose);
    const { status, message } = errorStatus(err);
    sendError(ctx.res, status, message);
    return;
  }
  ctx.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  // A follower sees the status line at once, before the first log line arrives.
  if (options.follow) ctx.res.flushHeaders();
  try {
    if (options.limitBytes !== undefined) await pipeline(stream, new ByteLimit(options.limitBytes), ctx.res);
    else await pipeline(stream, ctx.res);
  } catch (err) {
    // The client went away (premature close), or the provider's stream failed midway: the
    // response is already under way, so all that is left is to cut it.
    if (!abort.signal.aborted) ctx.log.debug({ err: (err as Error).message, namespace, pod, container }, 'log stream ended with an error');
    ctx.res.destroy();
  } finally {
    abort.abort();
  }
}
