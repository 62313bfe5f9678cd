// `npm run conformance -- --provider mock|remote --provider-config file [options]`
//
//   --provider <name>            provider to test, as for `vk run` (default mock)
//   --provider-config <file>     its configuration (YAML or JSON)
//   --provider-command <cmd>     for remote: the shell command that starts the provider server; the
//                                suite starts it, and kills (-9) and restarts it for provider-restart
//   --simulated                  the backend acts out mock.vk.io/* failure injection (implied for mock)
//   --cases a,b                  run only these cases
//   --image <ref>                the image of every pod, a busybox the backend can pull (default busybox:1.36)
//   --update-image <ref>         the image the update case switches to, another busybox (default busybox:1.37)
//   --kubeconfig <file>          cluster to use (else $VK_TEST_KUBECONFIG, else a local control plane is started)
//   --kubectl <path>             kubectl binary (else $VK_TEST_KUBECTL, else the one built with the control plane)
//   --json                       print the report as JSON
//   --log-level <level>          virtual kubelet log level (default silent)
//
// Exit code 0 when no case failed, 1 when one did, 2 on bad arguments.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ensureClusterBinary } from '../src/cluster/binary.ts';
import { startLocalCluster, type LocalCluster } from '../src/cluster/local.ts';
import { ConfigError, errorMessage } from '../src/errors.ts';
import { KubeClient } from '../src/kube/client.ts';
import { createLogger } from '../src/log.ts';
import { PROVIDER_NAMES, createProvider, readProviderConfig } from '../src/providers/registry.ts';
import { CASE_NAMES, formatReport, formatResult, runConformance, type ConformanceReport, type ConformanceTarget } from './suite.ts';
import type { ConformanceProfile } from './support.ts';

export interface ConformanceArgs {
  provider: string;
  providerConfig?: string;
  providerCommand?: string;
  simulated: boolean;
  cases?: string[];
  profile: ConformanceProfile;
  kubeconfig?: string;
  kubectl?: string;
  json: boolean;
  logLevel: string;
}

export function parseConformanceArgs(argv: string[]): ConformanceArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        provider: { type: 'string', default: 'mock' },
        'provider-config': { type: 'string' },
        'provider-command': { type: 'string' },
        simulated: { type: 'boolean', default: false },
        cases: { type: 'string' },
        image: { type: 'string' },
        'update-image': { type: 'string' },
        kubeconfig: { type: 'string' },
        kubectl: { type: 'string' },
        json: { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'silent' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new ConfigError(errorMessage(err));
  }
  const v = parsed.values;
  if (!PROVIDER_NAMES.includes(v.provider)) throw new ConfigError(`--provider: unknown provider "${v.provider}" (available: ${PROVIDER_NAMES.join(', ')})`);
  if (v['provider-command'] !== undefined && v.provider !== 'remote') throw new ConfigError('--provider-command only goes with --provider remote');
  const cases = v.cases
    ?.split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const unknown = (cases ?? []).filter((c) => !CASE_NAMES.includes(c));
  if (unknown.length > 0) throw new ConfigError(`--cases: unknown case(s) ${unknown.join(', ')} (known: ${CASE_NAMES.join(', ')})`);
  return {
    provider: v.provider,
    providerConfig: v['provider-config'],
    providerCommand: v['provider-command'],
    simulated: v.simulated || v.provider === 'mock',
    cases,
    profile: { ...(v.image !== undefined && { image: v.image }), ...(v['update-image'] !== undefined && { updateImage: v['update-image'] }) },
    kubeconfig: v.kubeconfig ?? process.env.VK_TEST_KUBECONFIG,
    kubectl: v.kubectl ?? process.env.VK_TEST_KUBECTL,
    json: v.json,
    logLevel: v['log-level'],
  };
}

/** A provider server started from a shell command, killed with SIGKILL and started again on demand. */
export class ProviderProcess {
  private readonly command: string;
  private child: ChildProcess | undefined;
  private output = '';

  constructor(command: string) {
    this.command = command;
  }

  start(): Promise<void> {
    const child = spawn(this.command, { shell: true, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    const keep = (c: Buffer) => (this.output = (this.output + c.toString()).slice(-4000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new Error(`--provider-command: ${err.message}`)));
    });
  }

  /** kill -9 of the whole process group (the shell and what it started). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
    await exited;
  }

  /** The last lines it printed (for error messages). */
  get recentOutput(): string {
    return this.output;
  }
}

export async function runConformanceCli(argv: string[]): Promise<number> {
  const args = parseConformanceArgs(argv);
  const log = createLogger(args.logLevel);
  const cleanups: (() => Promise<void> | void)[] = [];
  try {
    let kubeconfig = args.kubeconfig;
    let kubectl = args.kubectl;
    if (!kubeconfig) {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-conformance-cluster-'));
      process.stderr.write('conformance: no --kubeconfig: starting a local control plane\n');
      const cluster: LocalCluster = await startLocalCluster({ dir, progress: (line) => process.stderr.write(`[control plane] ${line}\n`) });
      cleanups.push(async () => {
        await cluster.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      kubeconfig = cluster.info.kubeconfig;
      kubectl ??= cluster.kubectl;
    }
    kubectl ??= (await ensureClusterBinary()).kubectl;
    const client = await KubeClient.load({ kubeconfig });
    cleanups.push(() => client.close());

    let server: ProviderProcess | undefined;
    if (args.providerCommand) {
      server = new ProviderProcess(args.providerCommand);
      await server.start();
      cleanups.push(() => server?.stop());
    }
    let provider;
    try {
      provider = await createProvider(args.provider, readProviderConfig(args.providerConfig), { nodeName: 'vk-conformance', nodeIP: '127.0.0.1', log });
    } catch (err) {
      throw new Error(`${errorMessage(err)}${server?.recentOutput ? `\nprovider command output:\n${server.recentOutput}` : ''}`, { cause: err });
    }
    const endpoint = (readProviderConfig(args.providerConfig) as { endpoint?: string }).endpoint;
    const target: ConformanceTarget = {
      description: args.provider === 'remote' ? `remote ${endpoint ?? ''}`.trim() : `${args.provider} (in-process)`,
      provider,
      simulated: args.simulated,
      ...(server && { restart: { stop: () => server.stop(), start: () => server.start() } }),
    };
    if (!args.json) process.stdout.write(`provider conformance: ${target.description} (provider ${provider.name})\n`);
    const report: ConformanceReport = await runConformance(target, {
      client,
      kubectl,
      kubeconfig,
      cases: args.cases,
      profile: args.profile,
      log,
      onResult: (r) => {
        if (!args.json) process.stdout.write(`${formatResult(r)}\n`);
      },
    });
    if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(`${formatReport(report).split('\n').slice(-1)[0]}\ndeclared capabilities: ${report.capabilities.join(', ') || '(none)'}\n`);
    return report.failed > 0 ? 1 : 0;
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Best effort.
      }
    }
  }
}
