// POST /run/{namespace}/{pod}[/{uid}]/{container}?cmd=...: runs a command without streams and
// answers with its combined output (the kubelet's legacy non-streaming exec).
import { Writable } from 'node:stream';
import { InvalidRequestError, UnsupportedError } from '../../errors.ts';
import { sendError, sendText, type RouteContext } from '../http.ts';
import { findTarget } from '../target.ts';

const MAX_OUTPUT = 4 << 20;

export async function run(ctx: RouteContext): Promise<void> {
  const { namespace, pod, container, uid } = ctx.params as { namespace: string; pod: string; container: string; uid?: string };
  const cmd = (ctx.url.searchParams.get('cmd') ?? '').split(' ').filter((part) => part !== '');
  if (cmd.length === 0) throw new InvalidRequestError('missing cmd: pass the command as ?cmd=word+word');
  await findTarget(ctx.provider, namespace, pod, { container, uid, signal: ctx.signal });
  if (!ctx.provider.runInContainer) throw new UnsupportedError(`provider ${ctx.provider.name} does not support exec`);
  const chunks: Buffer[] = [];
  let size = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (size + chunk.length > MAX_OUTPUT) return done(new Error(`output exceeds ${MAX_OUTPUT} bytes`));
      size += chunk.length;
      chunks.push(chunk);
      done();
    },
  });
  const abort = new AbortController();
  ctx.res.on('close', () => abort.abort());
  const code = await ctx.provider.runInContainer(namespace, pod, container, cmd, { stdout: sink, stderr: sink, tty: false, signal: abort.signal });
  const output = Buffer.concat(chunks).toString('utf8');
  // The command ran; its failure is the answer (500, as the kubelet gives it), not an error of this server.
  if (code !== 0) sendError(ctx.res, 500, `command terminated with non-zero exit code: ${code}\n${output}`.trimEnd());
  else sendText(ctx.res, 200, output);
}
