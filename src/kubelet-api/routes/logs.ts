// GET /containerLogs/{namespace}/{pod}/{container}: the container's log from the provider,
// streamed with backpressure; with follow, every chunk goes out as it comes (Node writes each
// chunk to the socket at once, with Nagle off) until the provider ends the stream or the client
// goes away (then the provider's stream is aborted).
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UnsupportedError } from '../../errors.ts';
import { parseLogOptions } from '../../kube/params.ts';
import { errorStatus, sendError, type RouteContext } from '../http.ts';
import { findTarget } from '../target.ts';

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
