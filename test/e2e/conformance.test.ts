// The provider conformance suite (conformance/) against the real control plane: the mock
// provider in-process, the mock behind the remote protocol (SDK server in this process, and
// `vk provider-server` in a child process driven by `npm run conformance`), and the Python
// example provider (examples/python-provider/, standard library only).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConformanceArgs } from '../../conformance/cli.ts';
import { formatReport, runConformance, type CaseResult, type ConformanceProfile, type ConformanceReport } from '../../conformance/suite.ts';
import { createLogger } from '../../src/log.ts';
import { serveProvider, type ProviderServer } from '../../src/provider-sdk/server.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import type { Provider } from '../../src/providers/provider.ts';
import { RemoteProvider } from '../../src/providers/remote/remote-provider.ts';
import { SandboxProvider } from '../../src/providers/sandbox/sandbox-provider.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { assertCases, assertNoFailures, CORE_CASES } from '../harness/conformance-expect.ts';
import { adminClient, kubeconfigPath } from '../harness/cluster.ts';
import { sandboxSkip } from '../harness/sandbox-host.ts';
import { freePort } from '../harness/net.ts';
import { tempDir } from '../harness/temp.ts';

/** Provider calls in these tests are never aborted. */
const call = { signal: new AbortController().signal };

const ROOT = path.resolve(import.meta.dirname, '../..');
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');

/**
 * Serves `provider` over the protocol on a fixed port. restart.stop makes the server "die" (its
 * port stops answering) while the backend keeps its pods; restart.start serves it again.
 */
async function restartableServer(provider: Provider, token: string) {
  const port = await freePort();
  const serve = () => serveProvider(provider, { port, token, heartbeatIntervalMs: 1_000, log });
  let server: ProviderServer | undefined = await serve();
  return {
    url: server.url,
    restart: {
      stop: async () => {
        await server?.close();
        server = undefined;
      },
      start: async () => {
        server = await serve();
      },
    },
    close: async () => server?.close(),
  };
}

/** `npm run conformance -- ...` as a child process; resolves with its JSON report. */
function conformanceCli(args: string[]): Promise<{ code: number; report: ConformanceReport | undefined; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(ROOT, 'conformance/run.ts'), ...args, '--json'],
      { cwd: ROOT, timeout: 400_000, maxBuffer: 16 << 20, env: { ...process.env, VK_TEST_KUBECONFIG: kubeconfigPath() } },
      (err, stdout, stderr) => {
        let report: ConformanceReport | undefined;
        try {
          report = JSON.parse(stdout) as ConformanceReport;
        } catch {
          report = undefined;
        }
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, report, stderr });
      },
    );
  });
}

/** Every case but provider-restart: the mock simulates each capability. */
const MOCK_PASSES = [
  ...CORE_CASES,
  'env-volume-delivery',
  'update',
  'restart-policy',
  'create-failure',
  'deletion-while-creating',
  'logs',
  'exec',
  'attach',
  'port-forward',
  'stats',
];

test('the mock provider passes the conformance suite in-process', async () => {
  const provider = new MockProvider(parseMockConfig({ logIntervalMs: 200 }), { nodeName: 'conformance', log });
  const report = await runConformance(
    { description: 'mock (in-process)', provider, simulated: true },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log },
  );
  assertNoFailures(report);
  assertCases(report, 'passed', MOCK_PASSES);
  assertCases(report, 'skipped', ['provider-restart']);
  assert.match(report.results.find((r) => r.name === 'provider-restart')?.detail ?? '', /cannot restart/);
  assert.deepEqual(report.capabilities, [
    'notifyPods',
    'nodeConfig',
    'ping',
    'getContainerLogs',
    'runInContainer',
    'attachToContainer',
    'portForward',
    'getStats',
  ]);
});

test('the mock provider passes the conformance suite behind the remote protocol (SDK server in this process), provider restart included', async (t) => {
  const mock = new MockProvider(parseMockConfig({ logIntervalMs: 200 }), { nodeName: 'conformance', log });
  const server = await restartableServer(mock, 'conformance-token');
  t.after(async () => {
    await server.close();
    await mock.close();
  });
  const provider = await RemoteProvider.connect({ endpoint: server.url, token: 'conformance-token', timeoutMs: 10_000 }, { log });
  const report = await runConformance(
    {
      description: `remote ${server.url} (SDK server in-process)`,
      provider,
      simulated: true,
      restart: server.restart,
    },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log },
  );
  assertNoFailures(report);
  assertCases(report, 'passed', [...MOCK_PASSES, 'provider-restart']);
  assert.equal(report.provider, 'mock');
});

test('npm run conformance: `vk provider-server --provider mock` in a child process, killed -9 and restarted for provider-restart', async (t) => {
  const dir = tempDir(t, 'vk-conformance-');
  const port = await freePort();
  writeFileSync(path.join(dir, 'mock.yaml'), `stateFile: ${path.join(dir, 'state.json')}\nlogIntervalMs: 200\n`);
  writeFileSync(path.join(dir, 'token'), 'child-token\n');
  writeFileSync(path.join(dir, 'remote.yaml'), `endpoint: http://127.0.0.1:${port}\ntokenFile: ${path.join(dir, 'token')}\ntimeoutMs: 10000\n`);
  const command = `${process.execPath} ${path.join(ROOT, 'bin/vk.js')} provider-server --provider mock --provider-config ${path.join(dir, 'mock.yaml')} --port ${port} --token-file ${path.join(dir, 'token')} --heartbeat-interval 1000 --log-level warn`;
  const { code, report, stderr } = await conformanceCli([
    '--provider',
    'remote',
    '--provider-config',
    path.join(dir, 'remote.yaml'),
    '--simulated',
    '--provider-command',
    command,
  ]);
  assert.ok(report, `no JSON report (exit ${code}): ${stderr}`);
  assertNoFailures(report);
  assert.equal(code, 0);
  assertCases(report, 'passed', ['provider-restart']);
  assert.equal(report.skipped, 0);
});

test('the Python example provider (standard library only) passes the core cases and declares what it lacks', async (t) => {
  const dir = tempDir(t, 'vk-conformance-py-');
  const port = await freePort();
  writeFileSync(path.join(dir, 'remote.yaml'), `endpoint: http://127.0.0.1:${port}\ntoken: py-token\ntimeoutMs: 10000\n`);
  const command = `python3 ${path.join(ROOT, 'examples/python-provider/provider.py')} --port ${port} --token py-token --state-file ${path.join(dir, 'pods.json')}`;
  const { code, report, stderr } = await conformanceCli([
    '--provider',
    'remote',
    '--provider-config',
    path.join(dir, 'remote.yaml'),
    '--simulated',
    '--provider-command',
    command,
  ]);
  assert.ok(report, `no JSON report (exit ${code}): ${stderr}`);
  assertNoFailures(report);
  assert.equal(report.provider, 'python-example');
  assertCases(report, 'passed', [
    ...CORE_CASES,
    'env-volume-delivery',
    'update',
    'restart-policy',
    'create-failure',
    'deletion-while-creating',
    'logs',
    'stats',
    'provider-restart',
  ]);
  for (const name of ['exec', 'attach', 'port-forward']) {
    const result: CaseResult | undefined = report.results.find((r) => r.name === name);
    assert.equal(result?.status, 'skipped', name);
    assert.match(result?.detail ?? '', /^skipped \(capability not declared: /);
  }
  assert.deepEqual(report.capabilities, ['notifyPods', 'nodeConfig', 'ping', 'getContainerLogs', 'getStats']);
});

test('the conformance command line names bad arguments', () => {
  assert.throws(() => parseConformanceArgs(['--provider', 'nope']), /--provider: unknown provider "nope" \(available: .*mock.*remote/);
  assert.throws(() => parseConformanceArgs(['--cases', 'ping,flying']), /--cases: unknown case\(s\) flying \(known: ping, create-delete, /);
  assert.throws(() => parseConformanceArgs(['--provider', 'mock', '--provider-command', 'x']), /--provider-command only goes with --provider remote/);
  assert.throws(() => parseConformanceArgs(['--bogus']), /Unknown option '--bogus'/);
  const args = parseConformanceArgs(['--provider', 'mock', '--cases', 'ping, exec']);
  assert.deepEqual(args.cases, ['ping', 'exec']);
  assert.equal(args.simulated, true, 'the mock always acts out the annotations');
});

// The sandbox provider: real pods in Linux namespaces, from busybox images pushed to a real
// registry on loopback (the suite's profile names them; the update case switches between two
// tags). Needs root, bubblewrap, catatonit and a static busybox, like test/e2e/sandbox.test.ts.
// A fast CrashLoopBackOff, so restart-policy sees restarts within its deadlines.
const SANDBOX_BACKOFF = { initialMs: 1000, maxMs: 4000, resetAfterMs: 600_000 };

async function sandboxProfile(t: TestContext): Promise<ConformanceProfile> {
  const registry = await startTestRegistry();
  t.after(() => registry.stop());
  const built = await buildBusyboxImage();
  const image = (await registry.pushImage('library/busybox', built, { tag: '1.36' })).reference;
  const updateImage = (await registry.pushImage('library/busybox', built, { tag: '1.37' })).reference;
  return { image, updateImage };
}

async function openSandbox(dataDir: string): Promise<SandboxProvider> {
  return SandboxProvider.open({ dataDir, crashLoopBackOff: SANDBOX_BACKOFF }, { nodeName: 'conformance', nodeIP: '127.0.0.1', log });
}

/** After the provider closed (its pods keep running detached): reopens the data directory, stops whatever a failed case left behind, removes it. */
async function sweepSandbox(dataDir: string): Promise<void> {
  const leftover = await openSandbox(dataDir);
  for (const pod of await leftover.listPods(call)) await leftover.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
  await leftover.close();
  rmSync(dataDir, { recursive: true, force: true });
}

const SANDBOX_PASSES = [...CORE_CASES, 'update', 'restart-policy', 'deletion-while-creating', 'logs', 'exec', 'attach', 'port-forward', 'stats'];

function assertSandboxSkips(report: ConformanceReport, skipped: Record<string, RegExp>): void {
  for (const [name, reason] of Object.entries(skipped)) {
    const result = report.results.find((r) => r.name === name);
    assert.equal(result?.status, 'skipped', name);
    assert.match(result?.detail ?? '', reason, name);
  }
  assert.equal(report.skipped, Object.keys(skipped).length, formatReport(report));
}

test('the sandbox provider passes the conformance suite in-process', { skip: sandboxSkip }, async (t) => {
  const profile = await sandboxProfile(t);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vk-conformance-sbx-'));
  t.after(() => sweepSandbox(dataDir));
  // The virtual kubelet closes it when the suite ends.
  const provider = await openSandbox(dataDir);
  const report = await runConformance(
    { description: 'sandbox (in-process)', provider },
    { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log, profile },
  );
  t.diagnostic(formatReport(report));
  assertNoFailures(report);
  assertCases(report, 'passed', SANDBOX_PASSES);
  assertSandboxSkips(report, {
    'env-volume-delivery': /no resolvedPod extension/,
    'create-failure': /simulated backend/,
    'provider-restart': /cannot restart/,
  });
  assert.equal(report.provider, 'sandbox');
});

test(
  'the sandbox provider passes the conformance suite behind the remote protocol (SDK server in this process), provider restart included',
  { skip: sandboxSkip },
  async (t) => {
    const profile = await sandboxProfile(t);
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vk-conformance-sbx-'));
    const sandbox = await openSandbox(dataDir);
    const server = await restartableServer(sandbox, 'sandbox-token');
    t.after(async () => {
      await server.close();
      await sandbox.close();
      await sweepSandbox(dataDir);
    });
    const provider = await RemoteProvider.connect({ endpoint: server.url, token: 'sandbox-token', timeoutMs: 10_000 }, { log });
    const report = await runConformance(
      {
        description: `remote ${server.url} (sandbox behind the SDK server in-process)`,
        provider,
        restart: server.restart,
      },
      { client: await adminClient(), kubectl: process.env.VK_TEST_KUBECTL!, kubeconfig: kubeconfigPath(), log, profile },
    );
    t.diagnostic(formatReport(report));
    assertNoFailures(report);
    assertCases(report, 'passed', [...SANDBOX_PASSES, 'provider-restart']);
    assertSandboxSkips(report, { 'env-volume-delivery': /no resolvedPod extension/, 'create-failure': /simulated backend/ });
    assert.equal(report.provider, 'sandbox');
  },
);

test('the conformance command line takes the profile images', () => {
  assert.deepEqual(parseConformanceArgs(['--provider', 'sandbox']).profile, {});
  const args = parseConformanceArgs(['--provider', 'sandbox', '--image', 'reg:5000/busybox:a', '--update-image', 'reg:5000/busybox:b']);
  assert.deepEqual(args.profile, { image: 'reg:5000/busybox:a', updateImage: 'reg:5000/busybox:b' });
});
