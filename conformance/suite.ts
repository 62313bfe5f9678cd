// The provider conformance suite: runs a provider under a real virtual kubelet against a real
// control plane and checks, case by case, that pods behave as Kubernetes users expect. Works for
// any Provider object: the in-process mock, or `remote` in front of a server in any language.
//
// Pods carry both a busybox command (what a real backend runs) and mock.vk.io/* annotations
// (what simulated backends, the mock and examples/python-provider, act out), so the same cases
// fit both. The image references are the profile's (ConformanceProfile): a real backend is
// given images it can pull, e.g. a busybox pushed to a local registry. Cases needing an optional capability the provider does not declare are skipped,
// and so are those needing something of the target it cannot do (restart its backend, show
// the pods it received, or act out injected failures).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../src/errors.ts';
import type { KubeClient } from '../src/kube/client.ts';
import type { Node } from '../src/kube/types.ts';
import { approveCsr } from '../src/kubelet-api/certificates.ts';
import { silentLogger, type Logger } from '../src/log.ts';
import { providerCapabilities, type Capability, type Provider, type ResolvedPod } from '../src/providers/provider.ts';
import { VirtualKubelet, type VirtualKubeletOptions } from '../src/virtual-kubelet.ts';
import { waitFor } from '../test/harness/wait.ts';
import { CASES } from './cases.ts';
import { DEFAULT_PROFILE, type CaseContext, type ConformanceCase, type ConformanceProfile, type KubectlResult } from './support.ts';

export type { ConformanceProfile } from './support.ts';

export interface ConformanceTarget {
  /** e.g. "mock (in-process)" or "remote http://127.0.0.1:9443". */
  description: string;
  provider: Provider;
  /** The pod exactly as the backend received it (env, volumes): needed by env-volume-delivery. */
  inspect?: (namespace: string, name: string) => Promise<ResolvedPod | undefined>;
  /** Stops (kills) the provider's backend and starts it again: needed by provider-restart. */
  restart?: { stop(): Promise<void>; start(): Promise<void> };
  /** The backend acts out the mock.vk.io/* failure injection annotations (the mock and the Python example do). */
  simulated?: boolean;
  /** Cases this target cannot meet though it declares what they need, with the reason (reported as skipped). */
  skip?: Record<string, string>;
}

export interface ConformanceOptions {
  client: KubeClient;
  /** kubectl binary and the kubeconfig it uses. */
  kubectl: string;
  kubeconfig: string;
  /** Case names to run (default: all). */
  cases?: string[];
  log?: Logger;
  /** Called as each case finishes. */
  onResult?: (result: CaseResult) => void;
  /** Per case (default 120 s). */
  caseTimeoutMs?: number;
  /** The images the pods use (default DEFAULT_PROFILE). */
  profile?: ConformanceProfile;
}

export type CaseStatus = 'passed' | 'failed' | 'skipped';

export interface CaseResult {
  name: string;
  tier: ConformanceCase['tier'];
  status: CaseStatus;
  /** Failure message or skip reason. */
  detail?: string;
  durationMs: number;
}

export interface ConformanceReport {
  target: string;
  provider: string;
  nodeName: string;
  /** The optional capabilities the provider declares. */
  capabilities: Capability[];
  results: CaseResult[];
  passed: number;
  failed: number;
  skipped: number;
}

export const CASE_NAMES = CASES.map((c) => c.name);

function runKubectl(binary: string, kubeconfig: string, args: string[], input?: string, timeoutMs = 60_000): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { env: { ...process.env, KUBECONFIG: kubeconfig }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ stdout, stderr: `${stderr}${err.message}`, code: 127 });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? 1 });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Timings that make a test node react within about a second. */
const FAST = {
  podWorkers: 4,
  resyncIntervalMs: 10_000,
  statusPollIntervalMs: 500,
  leaseDurationSeconds: 40,
  leaseRenewIntervalMs: 2_000,
  statusUpdateIntervalMs: 10_000,
  pingIntervalMs: 250,
  pingTimeoutMs: 2_000,
};

/**
 * Runs the cases against `target` on a fresh virtual node (deleted afterwards, with its
 * namespace). The virtual kubelet stops at the end, which closes the target's provider.
 */
export async function runConformance(target: ConformanceTarget, options: ConformanceOptions): Promise<ConformanceReport> {
  const log = options.log ?? silentLogger;
  const { client } = options;
  const provider = target.provider;
  const capabilities = providerCapabilities(provider).filter((c) => c !== 'close');
  const suffix = randomBytes(3).toString('hex');
  const nodeName = `vk-conformance-${suffix}`;
  const namespace = `vk-conformance-${suffix}`;
  const unknown = (options.cases ?? []).filter((name) => !CASE_NAMES.includes(name));
  if (unknown.length > 0) throw new Error(`unknown conformance case(s): ${unknown.join(', ')} (known: ${CASE_NAMES.join(', ')})`);
  const profile: Required<ConformanceProfile> = { ...DEFAULT_PROFILE, ...options.profile };
  if (profile.image === profile.updateImage) throw new Error(`conformance profile: updateImage must differ from image (both ${profile.image})`);

  const approve = async (name: string) => {
    try {
      await approveCsr(client, name, 'approved by the vk conformance suite');
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'could not approve the serving certificate CSR; the node serves a self-signed certificate');
    }
  };
  const vkOptions: VirtualKubeletOptions = {
    nodeName,
    nodeIP: '127.0.0.1',
    kubeletPort: 0,
    labels: {},
    shutdownMode: 'delete',
    ...FAST,
    kubeletApi: { address: '127.0.0.1', auth: 'webhook', servingCert: 'csr', csrTimeoutMs: 15_000, approveCsr: approve },
  };
  let vk: VirtualKubelet;
  try {
    vk = await VirtualKubelet.start(client, provider, vkOptions, log);
  } catch (err) {
    await provider.close?.();
    throw err;
  }
  const results: CaseResult[] = [];
  try {
    await client.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await waitFor(
      `ServiceAccount default in ${namespace}`,
      async () => (await client.get(`/api/v1/namespaces/${namespace}/serviceaccounts/default`)) !== undefined,
      { timeoutMs: 30_000 },
    );
    await waitFor(
      `Node ${nodeName} Ready`,
      async () => (await client.get<Node>(`/api/v1/nodes/${nodeName}`)).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      { timeoutMs: 30_000 },
    );
    const kubectl = (args: string[], input?: string, timeoutMs?: number) =>
      runKubectl(options.kubectl, options.kubeconfig, ['-n', namespace, ...args], input, timeoutMs);
    const inspect = target.inspect ?? inspector(provider);

    for (const c of CASES) {
      if (options.cases && !options.cases.includes(c.name)) continue;
      const started = Date.now();
      const skip =
        (target.skip?.[c.name] && `skipped (${target.skip[c.name]})`) ||
        skipReason(c, capabilities, { inspect: inspect !== undefined, restart: target.restart !== undefined, simulated: target.simulated === true });
      let result: CaseResult;
      if (skip) {
        result = { name: c.name, tier: c.tier, status: 'skipped', detail: skip, durationMs: 0 };
      } else {
        const abort = new AbortController();
        const ctx: CaseContext = {
          client,
          provider,
          namespace,
          nodeName,
          kubectl,
          kubectlBinary: options.kubectl,
          kubeconfig: options.kubeconfig,
          inspect,
          restart: target.restart,
          profile,
          signal: abort.signal,
          log,
        };
        const timeoutMs = options.caseTimeoutMs ?? 120_000;
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            c.run(ctx),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => {
                abort.abort();
                reject(new Error(`case did not finish within ${timeoutMs} ms`));
              }, timeoutMs);
            }),
          ]);
          result = { name: c.name, tier: c.tier, status: 'passed', durationMs: Date.now() - started };
        } catch (err) {
          result = { name: c.name, tier: c.tier, status: 'failed', detail: errorMessage(err), durationMs: Date.now() - started };
        } finally {
          clearTimeout(timer);
          abort.abort();
        }
      }
      results.push(result);
      options.onResult?.(result);
    }
  } finally {
    try {
      await client.delete(`/api/v1/namespaces/${namespace}`);
    } catch {
      // Never created, or already going.
    }
    await vk.stop();
  }
  return {
    target: target.description,
    provider: provider.name,
    nodeName,
    capabilities,
    results,
    passed: results.filter((r) => r.status === 'passed').length,
    failed: results.filter((r) => r.status === 'failed').length,
    skipped: results.filter((r) => r.status === 'skipped').length,
  };
}

function skipReason(c: ConformanceCase, capabilities: Capability[], target: { inspect: boolean; restart: boolean; simulated: boolean }): string | undefined {
  const missing = (c.capabilities ?? []).filter((cap) => !capabilities.includes(cap));
  if (missing.length > 0) return `skipped (capability not declared: ${missing.join(', ')})`;
  if (c.needs?.includes('inspect') && !target.inspect) return 'skipped (the target cannot show the pods its backend received: no resolvedPod extension)';
  if (c.needs?.includes('restart') && !target.restart) return 'skipped (the target cannot restart its provider backend)';
  if (c.needs?.includes('simulated') && !target.simulated) return 'skipped (needs a simulated backend that acts out mock.vk.io/* failure injection)';
  return undefined;
}

/** A provider with a resolvedPod method (the mock, the remote provider when its server has the extension). */
function inspector(provider: Provider): ConformanceTarget['inspect'] {
  const source = provider as Provider & { resolvedPod?: (namespace: string, name: string) => ResolvedPod | undefined | Promise<ResolvedPod | undefined> };
  if (typeof source.resolvedPod !== 'function') return undefined;
  return async (namespace, name) => source.resolvedPod!(namespace, name);
}

/** The report as text: one line per case, then the totals. */
export function formatReport(report: ConformanceReport): string {
  const lines = [
    `provider conformance: ${report.target} (provider ${report.provider}, node ${report.nodeName})`,
    `declared capabilities: ${report.capabilities.join(', ') || '(none)'}`,
  ];
  for (const r of report.results) lines.push(formatResult(r));
  lines.push(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`);
  return lines.join('\n');
}

export function formatResult(r: CaseResult): string {
  const tag = r.status === 'passed' ? 'PASS' : r.status === 'failed' ? 'FAIL' : 'SKIP';
  const time = r.status === 'skipped' ? '' : ` (${(r.durationMs / 1000).toFixed(1)}s)`;
  return `  ${tag}  ${r.name} [${r.tier}]${time}${r.detail ? `: ${r.detail}` : ''}`;
}
