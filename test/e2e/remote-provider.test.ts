// `vk run --provider remote` end to end: a real vk process, a real provider server process,
// the real control plane. The provider server dies and comes back; bad input arrives from both
// directions; neither side crashes, and every problem is reported where an operator looks.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { Node, Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { serveProvider } from '../../src/provider-sdk/server.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider, readMockState } from '../../src/providers/mock/mock-provider.ts';
import { kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { tempDir } from '../harness/temp.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const VK = path.join(ROOT, 'bin/vk.js');
const PYTHON_PROVIDER = path.join(ROOT, 'examples/python-provider/provider.py');
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');

interface Proc {
  child: ChildProcess;
  output: () => string;
  alive: () => boolean;
  kill9: () => Promise<void>;
}

/** A child process whose stdout+stderr are kept; resolves once `ready` matches a stdout line (if given). */
async function start(command: string, args: string[], ready?: RegExp): Promise<Proc> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => (output += `${line}\n`));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  if (ready) {
    await new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => ready.test(line) && resolve());
      void exit.then(() => reject(new Error(`${command} ${args.join(' ')} exited before it was ready:\n${output}`)));
    });
  }
  return {
    child,
    output: () => output,
    alive: () => !exited,
    kill9: async () => {
      if (exited) return;
      child.kill('SIGKILL');
      await exit;
    },
  };
}

const startProviderServer = (args: string[]) => start(process.execPath, [VK, 'provider-server', ...args], /^serving provider \S+ at http/);

function startVk(nodeName: string, providerConfig: string, kubeletPort: number): Promise<Proc> {
  return start(process.execPath, [
    VK,
    'run',
    '--kubeconfig',
    kubeconfigPath(),
    '--node-name',
    nodeName,
    '--node-ip',
    '127.0.0.1',
    '--kubelet-port',
    String(kubeletPort),
    '--kubelet-address',
    '127.0.0.1',
    '--provider',
    'remote',
    '--provider-config',
    providerConfig,
    '--ping-interval',
    '300ms',
    '--ping-timeout',
    '2s',
    '--lease-renew-interval',
    '1s',
    '--resync-interval',
    '5s',
    '--shutdown',
    'delete',
    '--kubelet-serving-cert',
    'self-signed',
    '--log-level',
    'info',
  ]);
}

async function apiPod(namespace: string, name: string): Promise<Pod | undefined> {
  const result = await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'], { allowFailure: true });
  return result.code === 0 ? (JSON.parse(result.stdout) as Pod) : undefined;
}

async function readyCondition(nodeName: string) {
  const node = JSON.parse((await kubectl(['get', 'node', nodeName, '-o', 'json'])).stdout) as Node;
  return node.status?.conditions?.find((c) => c.type === 'Ready');
}

function podManifest(name: string, nodeName: string, extra: { annotations?: Record<string, string>; restartPolicy?: string } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, annotations: extra.annotations ?? {} },
    spec: {
      nodeName,
      restartPolicy: extra.restartPolicy ?? 'Always',
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 5,
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'c', image: 'busybox' }],
    },
  };
}

async function createPod(namespace: string, manifest: unknown): Promise<void> {
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
}

const running = (pod: Pod | undefined) => pod?.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

test('killing the remote provider process turns the node NotReady with the reason; restarting it brings the statuses back without duplicates', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-remote');
  const dir = tempDir(t, 'vk-remote-');
  const stateFile = path.join(dir, 'state.json');
  const port = await freePort();
  writeFileSync(path.join(dir, 'mock.yaml'), `stateFile: ${stateFile}\n`);
  writeFileSync(path.join(dir, 'remote.yaml'), `endpoint: http://127.0.0.1:${port}\ntimeoutMs: 5000\n`);
  const serverArgs = [
    '--provider',
    'mock',
    '--provider-config',
    path.join(dir, 'mock.yaml'),
    '--port',
    String(port),
    '--heartbeat-interval',
    '1000',
    '--log-level',
    'warn',
  ];
  let server = await startProviderServer(serverArgs);
  const vk = await startVk(nodeName, path.join(dir, 'remote.yaml'), await freePort());
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false)
      process.stderr.write(`----- vk output -----\n${vk.output().slice(-6000)}\n----- provider server output -----\n${server.output().slice(-3000)}\n`);
    await vk.kill9();
    await server.kill9();
    await kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true });
  });

  await waitFor('the node Ready', async () => (await readyCondition(nodeName).catch(() => undefined))?.status === 'True');
  await createPod(namespace, podManifest('survivor', nodeName));
  await createPod(namespace, podManifest('doomed', nodeName));
  await createPod(namespace, podManifest('finisher', nodeName, { restartPolicy: 'Never', annotations: { 'mock.vk.io/complete-after-ms': '6000' } }));
  await waitFor('three pods Running', async () => (await Promise.all(['survivor', 'doomed', 'finisher'].map((n) => apiPod(namespace, n)))).every(running));
  const survivorUid = (await apiPod(namespace, 'survivor'))?.metadata?.uid;
  const finisherStart = Date.parse((await apiPod(namespace, 'finisher'))?.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? '');
  assert.ok(Number.isFinite(finisherStart));

  await server.kill9();
  const notReady = await waitFor('the node NotReady', async () => {
    const ready = await readyCondition(nodeName);
    return ready?.status === 'False' ? ready : undefined;
  });
  assert.equal(notReady.reason, 'ProviderUnhealthy');
  assert.match(
    notReady.message ?? '',
    new RegExp(`provider mock is unhealthy: remote provider at http://127\\.0\\.0\\.1:${port} is unreachable: connect ECONNREFUSED`),
  );

  // While it is down: a new pod waits for the provider (and says so), and so does a deleted one.
  await createPod(namespace, podManifest('created-while-down', nodeName));
  const waiting = await waitFor(
    'created-while-down to say why it waits',
    async () => (await apiPod(namespace, 'created-while-down'))?.status?.containerStatuses?.[0]?.state?.waiting,
  );
  assert.equal(waiting.reason, 'ProviderUnavailable');
  assert.match(waiting.message ?? '', new RegExp(`provider mock is unavailable: remote provider at http://127\\.0\\.0\\.1:${port} is unreachable`));
  await kubectl(['-n', namespace, 'delete', 'pod', 'doomed', '--wait=false']);
  // The finisher's run ends in the backend while no provider process runs.
  await waitFor("the finisher's completion time to pass", () => Date.now() > finisherStart + 6_500, { timeoutMs: 20_000 });
  assert.ok(vk.alive(), 'vk is still running');

  server = await startProviderServer(serverArgs);
  await waitFor('the node Ready again', async () => (await readyCondition(nodeName))?.status === 'True');
  const finished = await waitFor('the finisher Succeeded (its status came back after the restart)', async () => {
    const pod = await apiPod(namespace, 'finisher');
    return pod?.status?.phase === 'Succeeded' ? pod : undefined;
  });
  assert.equal(finished.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0);
  await waitFor('created-while-down Running', async () => running(await apiPod(namespace, 'created-while-down')), { timeoutMs: 60_000 });
  await waitFor('doomed gone from the API', async () => (await apiPod(namespace, 'doomed')) === undefined);
  const survivor = await apiPod(namespace, 'survivor');
  assert.ok(running(survivor));
  assert.equal(survivor?.metadata?.uid, survivorUid);
  const backend = await waitFor('the backend to hold exactly the two live pods', () => {
    const pods = readMockState(stateFile).pods.filter((p) => p.namespace === namespace);
    return pods.length === 2 ? pods : undefined;
  });
  assert.deepEqual(backend.map((p) => p.name).sort(), ['created-while-down', 'survivor']);
  assert.equal(backend.find((p) => p.name === 'survivor')?.uid, survivorUid, 'adopted, not re-created');
  assert.ok(vk.alive(), 'vk is still running');
  await waitFor('vk to log the resync after the status stream reconnected', () =>
    /status stream reconnected; handing every pod to the core again/.test(vk.output()),
  );
});

test('bad input on the wire (garbage status lines, malformed JSON, another protocol version, oversize messages) gets clear errors and never crashes vk', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-remote-bad');
  const dir = tempDir(t, 'vk-remote-bad-');
  const mock = new MockProvider(parseMockConfig({}), { nodeName, log });
  const upstream = await serveProvider(mock, { port: 0, maxRequestBytes: 64 << 10, heartbeatIntervalMs: 1_000, log });

  // A proxy in front of the real server that can replace any answer, and salts the status stream.
  type Fault = (res: http.ServerResponse) => void;
  const faults = new Map<string, Fault>();
  const watches = new Set<http.ServerResponse>();
  const proxy = http.createServer((req, res) => {
    const key = `${req.method} ${new URL(req.url ?? '/', 'http://x').pathname}`;
    const fault = faults.get(key);
    if (fault) {
      req.resume();
      return fault(res);
    }
    const forward = http.request({ host: '127.0.0.1', port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (key === 'GET /v1/pods/watch') {
        watches.add(res);
        res.once('close', () => watches.delete(res));
        up.once('data', () =>
          res.write('this is not json\n{"type":"POD","pod":{"metadata":{}}}\n{"type":7}\n[1,2,3]\n\u0000\u00ff\n{"type":"FROM_THE_FUTURE"}\n'),
        );
      }
      up.pipe(res);
    });
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  writeFileSync(path.join(dir, 'remote.yaml'), `endpoint: http://127.0.0.1:${proxyPort}\ntimeoutMs: 5000\nretries: 1\nmaxResponseBytes: 200000\n`);
  const vk = await startVk(nodeName, path.join(dir, 'remote.yaml'), await freePort());
  t.after(async () => {
    if ((t as { passed?: boolean }).passed === false) process.stderr.write(`----- vk output -----\n${vk.output().slice(-8000)}\n`);
    await vk.kill9();
    proxy.closeAllConnections();
    proxy.close();
    await upstream.close();
    await mock.close();
    await kubectl(['delete', 'node', nodeName, '--wait=false'], { allowFailure: true });
  });

  // Garbage on the status stream is skipped: pods still run on pushed statuses.
  await waitFor('the node Ready', async () => (await readyCondition(nodeName).catch(() => undefined))?.status === 'True');
  await createPod(namespace, podManifest('steady', nodeName));
  await waitFor('steady Running', async () => running(await apiPod(namespace, 'steady')));
  await waitFor(
    'vk to log the skipped lines',
    () => /skipping a malformed line \(not JSON/.test(vk.output()) && /a POD event needs .{1,2}pod.{1,2} with metadata/.test(vk.output()),
  );

  // Malformed JSON in an answer: the pod waits with the reason, and runs once answers are sane again.
  faults.set('POST /v1/pods', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"oops'));
  await createPod(namespace, podManifest('garbled', nodeName));
  const garbled = await waitFor('garbled to report the malformed answer', async () => {
    const waiting = (await apiPod(namespace, 'garbled'))?.status?.containerStatuses?.[0]?.state?.waiting;
    return waiting?.reason === 'ProviderCreateFailed' ? waiting : undefined;
  });
  assert.match(garbled.message ?? '', /remote provider sent malformed JSON for POST \/v1\/pods: /);
  faults.delete('POST /v1/pods');
  await waitFor('garbled Running once the answers are sane', async () => running(await apiPod(namespace, 'garbled')), { timeoutMs: 60_000 });

  // Another protocol version: the node turns NotReady saying so, and Ready when it is over.
  faults.set('GET /v1/ping', (res) => res.writeHead(200, { 'content-type': 'application/json', 'vk-provider-protocol': '3' }).end('{"ok":true}'));
  const wrongVersion = await waitFor('the node NotReady over the protocol version', async () => {
    const ready = await readyCondition(nodeName);
    return ready?.status === 'False' ? ready : undefined;
  });
  assert.equal(wrongVersion.reason, 'ProviderUnhealthy');
  assert.match(wrongVersion.message ?? '', /speaks protocol version 3; this client speaks 2/);
  faults.delete('GET /v1/ping');
  await waitFor('the node Ready again', async () => (await readyCondition(nodeName))?.status === 'True');

  // An oversize answer (the resync after a dropped status stream lists the pods): refused, logged, survived.
  faults.set('GET /v1/pods', (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], padding: 'x'.repeat(300_000) })),
  );
  for (const res of watches) res.destroy();
  await waitFor('vk to log the oversize answer', () => /larger than 200000 bytes \(maxResponseBytes\)/.test(vk.output()));
  faults.delete('GET /v1/pods');

  // An oversize request: the server answers 413 and the pod says so.
  const big = podManifest('oversize', nodeName, { annotations: { blob: 'x'.repeat(100_000) } });
  await createPod(namespace, big);
  const oversize = await waitFor('oversize to report the 413', async () => {
    const waiting = (await apiPod(namespace, 'oversize'))?.status?.containerStatuses?.[0]?.state?.waiting;
    return waiting?.reason === 'ProviderCreateFailed' ? waiting : undefined;
  });
  assert.match(oversize.message ?? '', /HTTP 413 PayloadTooLarge: request body of \d+ bytes exceeds the limit of 65536 bytes/);
  assert.equal(mock.resolvedPod(namespace, 'oversize'), undefined, 'the oversize pod never reached the provider');

  assert.ok(vk.alive(), 'vk is still running');
  assert.ok(running(await apiPod(namespace, 'steady')));
  assert.equal((await readyCondition(nodeName))?.status, 'True');
});

interface Answer {
  status: number;
  body: { error?: { code?: string; message?: string } };
}

function request(port: number, method: string, urlPath: string, options: { body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: { 'content-type': 'application/json', ...options.headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Answer['body']) : {} });
        } catch {
          reject(new Error(`not a JSON answer (${res.statusCode}): ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The checks both provider servers must pass: every bad request gets a clear JSON error, and the server keeps serving. */
async function assertRobustServer(port: number, token: string, limit: number, alive: () => boolean): Promise<void> {
  const auth = { authorization: `Bearer ${token}` };
  const noToken = await request(port, 'GET', '/v1/pods');
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.error?.code, 'Unauthorized');
  const v2 = await request(port, 'GET', '/v2/pods', { headers: auth });
  assert.equal(v2.status, 400);
  assert.equal(v2.body.error?.code, 'UnsupportedVersion');
  assert.match(v2.body.error?.message ?? '', /protocol version v2 is not supported by this server; it speaks v1/);
  const header = await request(port, 'GET', '/v1/pods', { headers: { ...auth, 'vk-provider-protocol': '3' } });
  assert.equal(header.status, 400);
  assert.equal(header.body.error?.code, 'UnsupportedVersion');
  const malformed = await request(port, 'POST', '/v1/pods', { headers: auth, body: '{"pod": {"metadata": ' });
  assert.equal(malformed.status, 400);
  assert.match(malformed.body.error?.message ?? '', /^malformed JSON in request body: /);
  const invalid = await request(port, 'POST', '/v1/pods', { headers: auth, body: JSON.stringify({ pod: { metadata: { namespace: 'a', name: 'b' } } }) });
  assert.equal(invalid.status, 400);
  assert.match(invalid.body.error?.message ?? '', /pod\.metadata\.uid: required/);
  const oversize = await request(port, 'POST', '/v1/pods', {
    headers: auth,
    body: JSON.stringify({ pod: { metadata: { namespace: 'a', name: 'b', uid: 'u', annotations: { blob: 'x'.repeat(limit) } } } }),
  });
  assert.equal(oversize.status, 413);
  assert.equal(oversize.body.error?.code, 'PayloadTooLarge');
  assert.equal((await request(port, 'GET', '/v1/nothing-here', { headers: auth })).body.error?.code, 'UnknownPath');
  assert.equal((await request(port, 'GET', '/v1/pods/a/missing', { headers: auth })).status, 404);
  assert.ok(alive(), 'the server is still running');
  const pods = await request(port, 'GET', '/v1/pods', { headers: auth });
  assert.equal(pods.status, 200);
}

test('vk provider-server and the Python example answer bad requests with clear errors and keep serving', async (t) => {
  const dir = tempDir(t, 'vk-remote-servers-');
  writeFileSync(path.join(dir, 'token'), 'server-token\n');
  const ts = await startProviderServer([
    '--provider',
    'mock',
    '--port',
    '0',
    '--token-file',
    path.join(dir, 'token'),
    '--max-request-bytes',
    '4096',
    '--log-level',
    'warn',
  ]);
  t.after(() => ts.kill9());
  const tsPort = Number(/at http:\/\/127\.0\.0\.1:(\d+)/.exec(ts.output())?.[1]);
  await assertRobustServer(tsPort, 'server-token', 4096, ts.alive);

  const py = await start(
    'python3',
    [PYTHON_PROVIDER, '--port', '0', '--token', 'py-token', '--max-request-bytes', '4096'],
    /^serving provider python-example at http/,
  );
  t.after(() => py.kill9());
  const pyPort = Number(/at http:\/\/127\.0\.0\.1:(\d+)/.exec(py.output())?.[1]);
  await assertRobustServer(pyPort, 'py-token', 4096, py.alive);
  const caps = await request(pyPort, 'GET', '/v1/capabilities', { headers: { authorization: 'Bearer py-token' } });
  assert.equal(caps.status, 200);
});

function vkOnce(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VK, ...args], { timeout: 60_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

function assertOneLine(result: { code: number; stderr: string }, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
}

test('a bad remote provider config or an unreachable endpoint is a one-line error', async (t) => {
  const dir = tempDir(t, 'vk-remote-cli-');
  const run = (config: string) => {
    writeFileSync(path.join(dir, 'remote.yaml'), config);
    return vkOnce([
      'run',
      '--kubeconfig',
      kubeconfigPath(),
      '--node-name',
      randomName('vk-remote-cli'),
      '--kubelet-port',
      '0',
      '--provider',
      'remote',
      '--provider-config',
      path.join(dir, 'remote.yaml'),
      '--log-level',
      'error',
    ]);
  };
  assertOneLine(await run('endpoint: ftp://example\n'), 2, /^vk: provider config: endpoint: expected an http:\/\/ or https:\/\/ URL/);
  assertOneLine(await run('endpoint: http://127.0.0.1:1\ntimeoutMs: soon\n'), 2, /^vk: provider config: timeoutMs: expected a number/);
  assertOneLine(
    await run('endpoint: https://127.0.0.1:1\ncaFile: /nonexistent/ca.crt\n'),
    2,
    /^vk: provider config: caFile: cannot read \/nonexistent\/ca\.crt: ENOENT/,
  );
  const port = await freePort();
  assertOneLine(
    await run(`endpoint: http://127.0.0.1:${port}\nconnectTimeoutMs: 500\n`),
    1,
    new RegExp(`^vk: remote provider at http://127\\.0\\.0\\.1:${port} is unreachable: connect ECONNREFUSED .*\\(gave up after 500 ms\\)$`),
  );
  assertOneLine(await vkOnce(['provider-server', '--port', '0', '--token', 'a', '--token-file', 'b']), 2, /^vk: --token and --token-file: give one, not both$/);
});
