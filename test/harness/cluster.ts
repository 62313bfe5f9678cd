// What every end-to-end test uses: the shared control plane, kubectl, one namespace per test,
// condition waits with deadlines, and diagnostics dumped when a test fails.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, type TestContext } from 'node:test';
import type { ClusterInfo } from '../../src/cluster/local.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { waitFor } from './wait.ts';

export function clusterInfo(): ClusterInfo {
  const file = process.env.VK_TEST_CLUSTER_INFO;
  if (!file) throw new Error('no test control plane: run tests through `npm test` (it sets --test-global-setup)');
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterInfo;
}

export function kubeconfigPath(): string {
  return clusterInfo().kubeconfig;
}

let sharedClient: Promise<KubeClient> | undefined;
export function adminClient(): Promise<KubeClient> {
  sharedClient ??= KubeClient.load({ kubeconfig: kubeconfigPath() });
  return sharedClient;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the pinned kubectl against the test cluster. Rejects on non-zero exit unless allowFailure. */
export function kubectl(args: string[], options: { input?: string; allowFailure?: boolean; timeoutMs?: number } = {}): Promise<KubectlResult> {
  const binary = process.env.VK_TEST_KUBECTL;
  if (!binary) throw new Error('VK_TEST_KUBECTL is not set');
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      args,
      { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        if (code !== 0 && !options.allowFailure) reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr || stdout}`));
        else resolve({ stdout, stderr, code });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A long-running kubectl (logs -f, attach, port-forward): its output so far; the scope's end kills it. */
export function spawnKubectl(t: Scope, args: string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.env.VK_TEST_KUBECTL!, args, { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  t.after(() => child.kill());
  return { child, out: () => out };
}

export { waitFor, type WaitOptions } from './wait.ts';

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** Where cleanups go: a test's context, or a fileScope() shared by a whole file. */
export type Scope = Pick<TestContext, 'after'>;

/** A scope for setup shared by all tests of a file: cleanups run, last first, when the file's tests are done. */
export function fileScope(): Scope {
  const cleanups: (() => unknown)[] = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  return { after: (fn: () => unknown) => void cleanups.push(fn) } as Scope;
}

/** A fresh namespace (with its default ServiceAccount) for one test, deleted afterwards; on failure its state and the control-plane log tails are printed. */
export async function newNamespace(t: Scope, prefix = 'vk-test'): Promise<string> {
  const namespace = randomName(prefix);
  await kubectl(['create', 'namespace', namespace]);
  await waitFor(
    `ServiceAccount default in ${namespace}`,
    async () => (await kubectl(['-n', namespace, 'get', 'serviceaccount', 'default'], { allowFailure: true })).code === 0,
  );
  t.after(async () => {
    // `passed` exists at run time in Node 24 but is missing from @types/node 24; a file scope has none.
    if ((t as { passed?: boolean }).passed === false) await dumpDiagnostics(namespace);
    await kubectl(['delete', 'namespace', namespace, '--wait=false'], { allowFailure: true });
  });
  return namespace;
}

export async function dumpDiagnostics(namespace: string): Promise<void> {
  const out: string[] = [`----- diagnostics for namespace ${namespace} -----`];
  for (const args of [
    ['get', 'nodes', '-o', 'wide'],
    ['-n', namespace, 'get', 'all,events', '-o', 'wide'],
    ['-n', namespace, 'get', 'pods', '-o', 'yaml'],
  ]) {
    const result = await kubectl(args, { allowFailure: true });
    out.push(`$ kubectl ${args.join(' ')}`, result.stdout, result.stderr);
  }
  const info = clusterInfo();
  for (const [component, file] of Object.entries(info.logs)) {
    try {
      const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
      out.push(`----- last lines of ${component} log (${file}) -----`, ...lines.slice(-30));
    } catch {
      // A component that never started has no log.
    }
  }
  process.stderr.write(`${out.join('\n')}\n`);
}
