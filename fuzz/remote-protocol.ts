// Fuzzing the remote provider protocol both ways. Server side: the provider SDK server
// (fuzz/provider-sdk-server.ts, in a child process) gets malformed requests (methods, paths,
// version headers, content types, malformed JSON, wrong types, truncated bodies) and raw bytes:
// every answer must be a 4xx (or a success) with a JSON error naming the problem, never a 5xx,
// and the process must stay up and keep answering GET /v1/ping. Client side: RemoteProvider,
// in this process, talks to a fake server whose answers are malformed, wrong-typed, truncated or
// cut off, and whose status stream carries bad lines: every call must resolve or reject with a
// VkError (a clear error), within its timeout, with no uncaught exception.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { VkError } from '../src/errors.ts';
import type { Pod } from '../src/kube/types.ts';
import { silentLogger } from '../src/log.ts';
import { RemoteProvider } from '../src/providers/remote/remote-provider.ts';
import { checkProperty, type PropertyResult } from './property.ts';
import { TargetProcess } from './target-process.ts';

export interface RemoteProtocolFuzzOptions {
  runs: number;
  seed: number;
}

export interface RemoteProtocolFuzzResult {
  target: 'remote-protocol';
  properties: PropertyResult[];
  crashed: boolean;
  exit?: string;
  /** Uncaught exceptions and unhandled rejections in this process (the client side) during the run. */
  clientUncaught: string[];
  serverRssMiB: { start: number; peak: number; end: number };
}

const SERVER = path.join(import.meta.dirname, 'provider-sdk-server.ts');

class SdkTarget extends TargetProcess {
  static async start(): Promise<SdkTarget> {
    const { child, port } = await TargetProcess.spawn(SERVER);
    return new SdkTarget(child, port);
  }

  async check(): Promise<void> {
    if (!this.alive) throw new Error(`the provider SDK server process died: ${this.exit}`);
    const res = await fetch(`http://127.0.0.1:${this.port}/v1/ping`, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /v1/ping answered ${res.status}`);
  }
}

/** Sends a raw HTTP/1.1 request; the status and body of the answer (body cut after `waitMs` for streams). */
async function rawRequest(port: number, head: string, body: Buffer, waitMs = 300): Promise<{ status: number; body: string; raw: string }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(head);
  socket.write(body);
  await Promise.race([closed, sleep(waitMs)]);
  socket.destroy();
  const raw = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
  const at = raw.indexOf('\r\n\r\n');
  return { status, body: at >= 0 ? raw.slice(at + 4) : '', raw };
}

// --- generators ---

const anyText = fc.string({ unit: 'binary', maxLength: 200 });
const VALID_BODY = {
  pod: { metadata: { namespace: 'ns', name: 'fuzz', uid: 'uid-fuzz' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
  volumes: [{ name: 'v', type: 'emptyDir', medium: '' }],
  reason: 'deleted',
};
const FIELD_PATHS: (string | number)[][] = [
  [],
  ['pod'],
  ['pod', 'metadata'],
  ['pod', 'metadata', 'name'],
  ['pod', 'metadata', 'namespace'],
  ['pod', 'metadata', 'uid'],
  ['pod', 'spec'],
  ['pod', 'spec', 'containers'],
  ['pod', 'spec', 'containers', 0],
  ['pod', 'spec', 'containers', 0, 'name'],
  ['pod', 'status'],
  ['volumes'],
  ['volumes', 0],
  ['volumes', 0, 'type'],
  ['pullSecrets'],
  ['reason'],
  ['items'],
];

/** `base` with the value at `at` replaced (a wrong type, most of the time). */
function withField(base: unknown, at: (string | number)[], value: unknown): unknown {
  if (at.length === 0) return value;
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let node = copy;
  for (const key of at.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string | number, unknown>;
  }
  node[at.at(-1)!] = value;
  return copy;
}

const wrongTyped = (base: unknown) =>
  fc
    .tuple(fc.constantFrom(...FIELD_PATHS), fc.oneof(fc.jsonValue(), fc.constantFrom(null, '', 0, -1, 1e308, [], {}, 'x'.repeat(10_000))))
    .map(([at, value]) => JSON.stringify(withField(base, at, value)));

/** A body: malformed JSON, any JSON, a valid body with a wrong-typed field, a truncated valid body, or raw bytes. */
const badBody = (valid: unknown) =>
  fc.oneof(
    fc.constantFrom('', '{', '{"pod":', 'null', '[]', '"', '{"pod":{"metadata":{"namespace":"ns","name":"x","uid":"u"}}}garbage', '\u0000'),
    fc.json({ maxDepth: 4 }),
    wrongTyped(valid),
    fc.integer({ min: 0, max: 200 }).map((n) => JSON.stringify(valid).slice(0, n)),
    anyText,
  );

const SERVER_PATHS = [
  '/v1/capabilities',
  '/v1/ping',
  '/v1/node',
  '/v1/stats',
  '/v1/pods',
  '/v1/pods/watch',
  '/v1/pods/ns/web',
  '/v1/pods/ns/fuzz',
  '/v1/pods/ns/web/status',
  '/v1/pods/ns/web/resolved',
  '/v1/pods/ns/web/containers/app/logs?tailLines=x&follow=maybe',
  '/v1/pods/ns/web/containers/app/exec?command=ls',
  '/v1/pods/ns/web/portforward?port=99999',
  '/v2/pods',
  '/v1/pods/%zz/web',
  '/v1/pods/ns/web/containers/%/logs',
];

const badRequest = fc.record({
  // Methods Node's HTTP parser knows (others get its bare 400 before the server sees them; the raw-bytes property covers those).
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND'),
  path: fc.oneof(
    fc.constantFrom(...SERVER_PATHS),
    fc.webPath().map((p) => `/v1${p}`),
  ),
  version: fc.option(fc.constantFrom('1', '2', '3', '0', 'x', '', '2, 1', '-1', '99999999999999999999')),
  contentType: fc.option(fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', '', 'application/jsonx')),
  body: badBody(VALID_BODY),
  lieAboutLength: fc.constantFrom(0, 0, 0, 1, -1),
});

// --- the client side: a fake server ---

type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const badAnswer = fc.record({
  status: fc.oneof(fc.constantFrom(200, 201, 204, 400, 404, 409, 413, 500, 503), fc.integer({ min: 100, max: 599 })),
  contentType: fc.constantFrom('application/json', 'text/plain', ''),
  version: fc.option(fc.constantFrom('1', '2', '3', 'x')),
  body: fc.oneof(
    badBody({ metadata: { namespace: 'ns', name: 'web', uid: 'u' }, status: { phase: 'Running' }, items: [] }),
    fc.constantFrom('{"code":"VK_NOT_FOUND","message":"gone"}', '{"error":{"code":5,"message":null}}', '{"kind":"Status","code":"x"}'),
  ),
  cutAfter: fc.option(fc.integer({ min: 0, max: 100 })),
});

const watchLine = fc.oneof(
  fc.constantFrom(
    '{"type":"HEARTBEAT"}',
    '{"type":"READY"}',
    '{"type":"POD"}',
    '{"type":"POD","pod":null}',
    '{"type":"EVENT","event":{}}',
    '{"type":1}',
    '',
    '{',
  ),
  wrongTyped({ type: 'POD', pod: { metadata: { namespace: 'ns', name: 'web', uid: 'u' }, status: { phase: 'Running' } } }),
  fc.json({ maxDepth: 3 }),
  anyText,
);

const CALLS = ['getPod', 'getPodStatus', 'listPods', 'createPod', 'deletePod', 'ping'] as const;

async function callProvider(provider: RemoteProvider, which: (typeof CALLS)[number]): Promise<unknown> {
  const signal = AbortSignal.timeout(10_000);
  const pod: Pod = { metadata: { namespace: 'ns', name: 'web', uid: 'u' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
  switch (which) {
    case 'getPod':
      return provider.getPod('ns', 'web', { signal });
    case 'getPodStatus':
      return provider.getPodStatus('ns', 'web', { signal });
    case 'listPods':
      return provider.listPods({ signal });
    case 'createPod':
      return provider.createPod({ pod, volumes: new Map() }, { signal });
    case 'deletePod':
      return provider.deletePod(pod, { signal, reason: 'deleted' });
    case 'ping':
      return provider.ping(signal);
  }
}

async function fuzzClient(options: RemoteProtocolFuzzOptions, uncaught: string[]): Promise<PropertyResult[]> {
  // The capabilities of a real server (the mock behind serveProvider, in version 2), answered as they are.
  const capabilities = JSON.stringify({
    protocol: 'v2',
    versions: [1, 2],
    name: 'fake',
    capabilities: ['notifyPods', 'ping'],
    heartbeatIntervalMs: 1000,
  });
  let answer: Answer = (_req, res) => res.writeHead(404).end();
  let watchLines: string[] = [];
  let watchConnections = 0;
  const server = http.createServer((req, res) => {
    res.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/v1/capabilities')
      return void res.writeHead(200, { 'Content-Type': 'application/json', 'vk-provider-protocol': '2' }).end(capabilities);
    if (url.pathname === '/v1/pods/watch') {
      watchConnections++;
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'vk-provider-protocol': '2' });
      res.end(['{"type":"READY"}', ...watchLines].join('\n'));
      return;
    }
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = await RemoteProvider.connect({ endpoint, timeoutMs: 1_000, connectTimeoutMs: 2_000, retries: 0 }, { log: silentLogger });
  const results: PropertyResult[] = [];
  const noUncaught = () => {
    if (uncaught.length > 0) throw new Error(`uncaught in the client: ${uncaught.join('; ')}`);
  };
  try {
    results.push(
      await checkProperty(
        'client: malformed, wrong-typed, truncated and cut-off answers to unary calls',
        fc.record({ call: fc.constantFrom(...CALLS), answer: badAnswer }),
        async ({ call, answer: a }) => {
          answer = (_req, res) => {
            const body = Buffer.from(a.body, 'latin1');
            const headers: Record<string, string | number> = {
              'Content-Length': body.length,
              ...(a.contentType && { 'Content-Type': a.contentType }),
              ...(a.version !== null && { 'vk-provider-protocol': a.version }),
            };
            res.writeHead(a.status, headers);
            if (a.cutAfter !== null && a.cutAfter < body.length) {
              res.write(body.subarray(0, a.cutAfter));
              setTimeout(() => res.destroy(), 10);
            } else res.end(body);
          };
          try {
            await callProvider(provider, call);
          } catch (err) {
            if (!(err instanceof VkError))
              throw new Error(`${call} rejected with a ${(err as Error)?.constructor?.name}, not a VkError: ${(err as Error)?.message}`, { cause: err });
            if (!err.message) throw new Error(`${call} rejected with an empty message`, { cause: err });
          }
          noUncaught();
        },
        { numRuns: options.runs, seed: options.seed },
      ),
    );
    const received: Pod[] = [];
    provider.notifyPods!((pod) => received.push(pod));
    answer = (_req, res) => void res.writeHead(200, { 'Content-Type': 'application/json', 'vk-provider-protocol': '2' }).end('{"items":[]}');
    results.push(
      await checkProperty(
        'client: bad lines on the status stream (malformed, wrong types, truncated)',
        fc.array(watchLine, { minLength: 1, maxLength: 10 }),
        async (lines) => {
          received.length = 0;
          watchLines = lines;
          const before = watchConnections;
          // The stream ends after the lines; the client reconnects (after a jittered backoff) and reads them again.
          const deadline = performance.now() + 5_000;
          while (watchConnections < before + 2 && performance.now() < deadline) await sleep(10);
          if (watchConnections < before + 2) throw new Error('the status stream did not reconnect within 5 s');
          for (const pod of received)
            if (typeof pod.metadata?.namespace !== 'string' || typeof pod.metadata?.name !== 'string')
              throw new Error(`a pod without namespace/name reached the listener: ${JSON.stringify(pod)}`);
          await provider.listPods({ signal: AbortSignal.timeout(5_000) });
          noUncaught();
        },
        { numRuns: Math.max(5, Math.ceil(options.runs / 5)), seed: options.seed },
      ),
    );
  } finally {
    await provider.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return results;
}

export async function fuzzRemoteProtocol(options: RemoteProtocolFuzzOptions): Promise<RemoteProtocolFuzzResult> {
  const uncaught: string[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const target = await SdkTarget.start();
  const start = target.rssMiB();
  try {
    await target.check();
    const properties: PropertyResult[] = [];
    properties.push(
      await checkProperty(
        'server: malformed requests (methods, paths, versions, content types, malformed JSON, wrong types, truncated bodies)',
        badRequest,
        async (r) => {
          const body = Buffer.from(r.body, 'utf8');
          const head = [
            `${r.method} ${r.path} HTTP/1.1`,
            'Host: 127.0.0.1',
            'Connection: close',
            ...(r.version !== null ? [`vk-provider-protocol: ${r.version}`] : []),
            ...(r.contentType !== null ? [`Content-Type: ${r.contentType}`] : []),
            `Content-Length: ${Math.max(0, body.length + r.lieAboutLength)}`,
            '',
            '',
          ].join('\r\n');
          const answer = await rawRequest(target.port, head, body);
          if (answer.status >= 500 && answer.status !== 501) throw new Error(`answered ${answer.status}: ${answer.body.slice(0, 300)}`);
          // With an honest Content-Length the answer is the server's own, a JSON error. A body longer than declared is
          // a second, malformed request on the connection: Node's parser answers that with a bare 400 and closes,
          // which may go out first; a shorter one leaves the server waiting for the rest (no answer in time).
          if (answer.status >= 400 && r.method !== 'HEAD' && r.lieAboutLength === 0) {
            let parsed: unknown;
            try {
              parsed = JSON.parse(answer.body);
            } catch {
              throw new Error(`answered ${answer.status} without a JSON error: ${JSON.stringify(answer.raw.slice(0, 300))}`);
            }
            if (!JSON.stringify(parsed).includes('message'))
              throw new Error(`answered ${answer.status} with an error that names no problem: ${answer.body.slice(0, 300)}`);
          }
          await target.check();
        },
        { numRuns: options.runs, seed: options.seed },
      ),
    );
    properties.push(
      await checkProperty(
        'server: raw bytes',
        fc.uint8Array({ maxLength: 2048 }),
        async (data) => {
          await rawRequest(target.port, '', Buffer.from(data), 150);
          await target.check();
        },
        { numRuns: options.runs, seed: options.seed },
      ),
    );
    properties.push(...(await fuzzClient(options, uncaught)));
    return {
      target: 'remote-protocol',
      properties,
      crashed: !target.alive,
      ...(target.exit !== undefined && { exit: target.exit }),
      clientUncaught: uncaught,
      serverRssMiB: { start: Math.round(start), peak: Math.round(target.peakRssMiB), end: Math.round(target.rssMiB()) },
    };
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
    await target.stop();
  }
}
