// logs, exec, attach and port-forward of a burst pod, all through the target's API server
// (pods/log, pods/exec, pods/attach, pods/portforward), so `kubectl` on the source cluster
// reaches the real processes exactly as on the target. exec/attach speak v5.channel.k8s.io
// (v4 accepted) over WebSocket, framed by src/protocol/channel-websocket.ts; port-forward speaks
// the kubelet's v4.channel.k8s.io port-forward protocol (data and error channel, each first
// carrying the port as uint16 LE), which the API server passes through to the target's kubelet.
// A target that refuses the WebSocket upgrade gets SPDY/3.1 instead (spdy-streams.ts), by
// config (`streams.protocol: spdy`) or on the first refusal (`auto`, the default).
import https from 'node:https';
import http, { type IncomingMessage } from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { WebSocket, type ClientOptions } from 'ws';
import { ContainerStateError, NotFoundError, ProviderUnavailableError, VkError, errorMessage } from '../../errors.ts';
import type { KubeClient } from '../../kube/client.ts';
import type { Status } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import { SpdyUpgradeRefusedError } from '../../protocol/spdy/client.ts';
import { ChannelConnection, channelProtocol, forwardChannel, type WebSocketChannel } from '../../protocol/channel-websocket.ts';
import type { ExecStreams, LogOptions } from '../provider.ts';
import type { ClusterConfig } from './config.ts';
import type { TargetRef } from './names.ts';
import { portForwardSpdy, remoteCommandSpdy, type SpdyTarget } from './spdy-streams.ts';

const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io'];
/** Sessions idle this long are closed (the kubelet's stream idle timeout). */
const IDLE_TIMEOUT_MS = 4 * 3600_000;
/** Answers to a WebSocket upgrade that mean the same over SPDY (credentials, RBAC, no such pod): no fallback. */
const NOT_A_REFUSAL = new Set([401, 403, 404]);
/** The HTTP status with which the target answered a WebSocket upgrade, for errors made from such an answer. */
const upgradeAnswers = new WeakMap<object, number>();

export class TargetStreams {
  private readonly client: KubeClient;
  private readonly agent: http.Agent;
  private readonly handshakeTimeoutMs: number;
  private readonly protocol: ClusterConfig['streams']['protocol'];
  private readonly log: Logger | undefined;
  /** `auto` after the target refused a WebSocket upgrade: SPDY from then on. */
  private spdyOnly = false;

  constructor(client: KubeClient, handshakeTimeoutMs: number, protocol: ClusterConfig['streams']['protocol'] = 'auto', log?: Logger) {
    this.client = client;
    this.handshakeTimeoutMs = handshakeTimeoutMs;
    this.protocol = protocol;
    this.log = log;
    const { ca, cert, key, rejectUnauthorized, servername } = client.config.tls;
    this.agent =
      client.server.protocol === 'http:'
        ? new http.Agent({ keepAlive: true })
        : new https.Agent({ keepAlive: true, ca, cert, key, rejectUnauthorized, servername });
  }

  close(): void {
    this.agent.destroy();
  }

  /** The container's log from the target's pods/log, streamed as it arrives. */
  async logs(target: TargetRef, container: string, options: LogOptions): Promise<Readable> {
    const url = this.url(target, 'log');
    url.searchParams.set('container', container);
    if (options.follow) url.searchParams.set('follow', 'true');
    if (options.previous) url.searchParams.set('previous', 'true');
    if (options.timestamps) url.searchParams.set('timestamps', 'true');
    if (options.tailLines !== undefined) url.searchParams.set('tailLines', String(options.tailLines));
    if (options.limitBytes !== undefined) url.searchParams.set('limitBytes', String(options.limitBytes));
    if (options.sinceTime) url.searchParams.set('sinceTime', options.sinceTime.toISOString().replace(/\.\d+Z$/, 'Z'));
    const headers: Record<string, string> = { Accept: '*/*', 'User-Agent': 'virtual-kubelet-ts' };
    const auth = await this.client.config.authorization();
    if (auth) headers.Authorization = auth;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'http:' ? http : https).request(url, { headers, agent: this.agent, signal: options.signal }, resolve);
      req.on('error', (err) =>
        reject(err.name === 'AbortError' ? err : new ProviderUnavailableError(`target cluster ${this.client.server.origin}: ${err.message}`, { cause: err })),
      );
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (status !== 200) throw streamError(status, await readText(res), `logs of ${target.namespace}/${target.name}/${container}`);
    const out = new PassThrough();
    res.on('error', (err) => out.destroy(err));
    res.pipe(out);
    options.signal.addEventListener('abort', () => res.destroy(), { once: true });
    return out;
  }

  /** exec (command given) or attach (undefined); resolves with the exit code. */
  async remoteCommand(target: TargetRef, container: string, command: string[] | undefined, streams: ExecStreams): Promise<number> {
    const url = this.url(target, command ? 'exec' : 'attach');
    url.searchParams.set('container', container);
    for (const arg of command ?? []) url.searchParams.append('command', arg);
    if (streams.stdin) url.searchParams.set('stdin', 'true');
    if (streams.stdout) url.searchParams.set('stdout', 'true');
    if (streams.stderr && !streams.tty) url.searchParams.set('stderr', 'true');
    if (streams.tty) url.searchParams.set('tty', 'true');
    const what = `${command ? 'exec' : 'attach'} in ${target.namespace}/${target.name}/${container}`;
    if (this.useSpdy()) return await this.remoteCommandSpdy(url, streams, what);
    let opened;
    try {
      opened = await this.open(url, EXEC_PROTOCOLS, 5, streams.signal, what);
    } catch (err) {
      if (!this.fallBack(err, what)) throw err;
      return await this.remoteCommandSpdy(url, streams, what);
    }
    const { ws, conn, closed } = opened;
    const [stdin, stdout, stderr, statusChannel, resize] = conn.channels as [
      WebSocketChannel,
      WebSocketChannel,
      WebSocketChannel,
      WebSocketChannel,
      WebSocketChannel,
    ];
    if (streams.stdout) forwardChannel(stdout, streams.stdout, ws);
    if (streams.stderr && !streams.tty) forwardChannel(stderr, streams.stderr, ws);
    let statusText = '';
    statusChannel.on('data', (chunk: Buffer) => {
      if (statusText.length < 64 << 10) statusText += chunk.toString('utf8');
    });
    if (streams.stdin) {
      streams.stdin.on('error', () => stdin.end());
      streams.stdin.pipe(stdin);
    }
    if (streams.tty && streams.resize) void sendSizes(streams.resize, resize, ws);
    await closed;
    streams.stdin?.unpipe(stdin);
    return exitCode(statusText, what, streams.signal);
  }

  private async remoteCommandSpdy(url: URL, streams: ExecStreams, what: string): Promise<number> {
    const text = await remoteCommandSpdy(url, await this.spdyTarget(), streams, what).catch((err: unknown) => {
      throw spdyError(err, what);
    });
    // Over SPDY (v4) an empty error stream is success.
    return text ? exitCode(text, what, streams.signal) : 0;
  }

  private useSpdy(): boolean {
    return this.protocol === 'spdy' || (this.protocol === 'auto' && this.spdyOnly);
  }

  /** Whether a failed WebSocket upgrade should be tried again over SPDY (auto, and a refusal that is no auth/not-found answer). */
  private fallBack(err: unknown, what: string): boolean {
    const status = typeof err === 'object' && err !== null ? upgradeAnswers.get(err) : undefined;
    if (this.protocol !== 'auto' || status === undefined || NOT_A_REFUSAL.has(status)) return false;
    if (!this.spdyOnly) this.log?.info({ status, what }, 'the target refused the WebSocket upgrade; using SPDY for streams from now on');
    this.spdyOnly = true;
    return true;
  }

  private async spdyTarget(): Promise<SpdyTarget> {
    const headers: Record<string, string> = { 'User-Agent': 'virtual-kubelet-ts' };
    const auth = await this.client.config.authorization();
    if (auth) headers.Authorization = auth;
    const { ca, cert, key, rejectUnauthorized, servername } = this.client.config.tls;
    return { headers, tls: { ca, cert, key, rejectUnauthorized, ...(servername && { servername }) }, timeoutMs: this.handshakeTimeoutMs };
  }

  /** One forwarded connection: `stream` to `port` of the target pod until either side closes. */
  async portForward(target: TargetRef, port: number, stream: Duplex): Promise<void> {
    const abort = new AbortController();
    const onGone = () => abort.abort();
    stream.once('close', onGone);
    try {
      const url = this.url(target, 'portforward');
      url.searchParams.set('ports', String(port));
      const what = `port-forward to ${target.namespace}/${target.name}:${port}`;
      const spdy = async () =>
        await portForwardSpdy(url, await this.spdyTarget(), port, stream, abort.signal, what).catch((err: unknown) => {
          throw spdyError(err, what);
        });
      if (this.useSpdy()) return await spdy();
      let opened;
      try {
        opened = await this.open(url, PORT_FORWARD_PROTOCOLS, 2, abort.signal, what);
      } catch (err) {
        if (!this.fallBack(err, what)) throw err;
        return await spdy();
      }
      const { ws, conn, closed } = opened;
      const [data, error] = conn.channels as [WebSocketChannel, WebSocketChannel];
      let errorText = '';
      error.on('data', (chunk: Buffer) => {
        if (errorText.length < 64 << 10) errorText += chunk.toString('latin1');
      });
      // Each channel's first two bytes are the port: skip them on the way in.
      let prefix = 2;
      data.on('data', (chunk: Buffer) => {
        if (prefix > 0) {
          const skip = Math.min(prefix, chunk.length);
          prefix -= skip;
          chunk = chunk.subarray(skip);
          if (chunk.length === 0) return;
        }
        if (stream.destroyed || stream.writableEnded) return;
        if (!stream.write(chunk) && !ws.isPaused) {
          ws.pause();
          stream.once('drain', () => ws.resume());
        }
      });
      data.once('end', () => {
        if (!stream.writableEnded && !stream.destroyed) stream.end();
      });
      stream.on('error', () => conn.close());
      stream.on('end', () => conn.close());
      stream.pipe(data);
      await closed;
      stream.unpipe(data);
      const message = errorText.slice(2);
      if (message) throw new VkError('VK_PROVIDER', `${what}: ${message}`);
    } finally {
      stream.off('close', onGone);
    }
  }

  private url(target: TargetRef, subresource: string): URL {
    return new URL(`/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.name)}/${subresource}`, this.client.server);
  }

  private async open(
    url: URL,
    protocols: string[],
    channels: number,
    signal: AbortSignal,
    what: string,
  ): Promise<{ ws: WebSocket; conn: ChannelConnection; closed: Promise<void> }> {
    const wsUrl = new URL(url);
    wsUrl.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const headers: Record<string, string> = { 'User-Agent': 'virtual-kubelet-ts' };
    const auth = await this.client.config.authorization();
    if (auth) headers.Authorization = auth;
    const { ca, cert, key, rejectUnauthorized, servername } = this.client.config.tls;
    const options: ClientOptions = {
      headers,
      handshakeTimeout: this.handshakeTimeoutMs,
      perMessageDeflate: false,
      maxPayload: 16 << 20,
      ca,
      cert,
      key,
      rejectUnauthorized,
      ...(servername && { servername }),
    };
    return await new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const ws = new WebSocket(wsUrl, protocols, options);
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        ws.terminate();
        reject(err);
      };
      const onAbort = () => fail(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        void readText(res).then((text) => {
          const err = streamError(res.statusCode ?? 0, text, what);
          upgradeAnswers.set(err, res.statusCode ?? 0);
          fail(err);
        });
      });
      ws.on('error', (err) => fail(new ProviderUnavailableError(`${what}: target cluster ${this.client.server.origin}: ${errorMessage(err)}`, { cause: err })));
      ws.once('open', () => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        const conn = new ChannelConnection(ws, channelProtocol(ws.protocol || protocols[0]!), channels, IDLE_TIMEOUT_MS);
        for (const channel of conn.channels) channel.on('error', () => {});
        const closed = new Promise<void>((done) => ws.once('close', () => done()));
        signal.addEventListener('abort', () => conn.close(), { once: true });
        resolve({ ws, conn, closed });
      });
    });
  }
}

async function sendSizes(sizes: AsyncIterable<{ width: number; height: number }>, channel: WebSocketChannel, ws: WebSocket): Promise<void> {
  try {
    for await (const size of sizes) {
      if (ws.readyState !== ws.OPEN) break;
      channel.write(JSON.stringify({ Width: size.width, Height: size.height }));
    }
  } catch {
    // The resize stream ended with the client.
  }
}

interface StreamStatus extends Status {
  details?: { causes?: { reason?: string; message?: string }[] };
}

/** The exit code from the session's final Status; a failure that is no exit code becomes an error. */
function exitCode(text: string, what: string, signal: AbortSignal): number {
  if (!text) {
    if (signal.aborted) throw signal.reason;
    // v4/v5 always end with a Status; a session cut without one is the target going away.
    throw new ProviderUnavailableError(`${what}: the target closed the session without a status`);
  }
  let status: StreamStatus;
  try {
    status = JSON.parse(text) as StreamStatus;
  } catch {
    throw new VkError('VK_PROTOCOL', `${what}: malformed status from the target: ${text.slice(0, 200)}`);
  }
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const code = Number(status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message);
    if (Number.isInteger(code)) return code;
  }
  throw new VkError('VK_PROVIDER', `${what}: ${status.message ?? 'failed'}`);
}

/** A failed SPDY session: a refused upgrade classified as a WebSocket one is; anything else is the target's trouble. */
function spdyError(err: unknown, what: string): unknown {
  if (err instanceof SpdyUpgradeRefusedError) return streamError(err.status, err.body, what);
  if (err instanceof VkError || (err as Error)?.name === 'AbortError') return err;
  return new ProviderUnavailableError(`${what}: target cluster over SPDY: ${errorMessage(err)}`, { cause: err });
}

/** A refused log/exec/attach/port-forward request as the error class the kubelet API maps back to the same status. */
function streamError(status: number, text: string, what: string): VkError {
  let message = text.trim().slice(0, 1000);
  try {
    message = (JSON.parse(text) as Status).message ?? message;
  } catch {
    // plain text
  }
  if (status === 404) return new NotFoundError(`${what}: ${message}`);
  if (status === 400) return new ContainerStateError(message);
  if (status === 401 || status === 403) return new VkError('VK_KUBE_API', `${what}: the target cluster refused us (${status}): ${message}`);
  if (status >= 500 || status === 0) return new ProviderUnavailableError(`${what}: target cluster answered ${status}: ${message}`);
  return new VkError('VK_PROVIDER', `${what}: target cluster answered ${status}: ${message}`);
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= 64 << 10) chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
