// A second local control plane for the cluster provider's tests: the "target" cluster pods burst
// into, with one virtual node of its own (sandbox: pods really run; or mock). Stopped and
// removed when the scope ends.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLocalCluster, type LocalCluster } from '../../src/cluster/local.ts';
import { KubeClient } from '../../src/kube/client.ts';
import { createLogger } from '../../src/log.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import type { Provider } from '../../src/providers/provider.ts';
import { SandboxProvider } from '../../src/providers/sandbox/sandbox-provider.ts';
import type { VirtualKubelet } from '../../src/virtual-kubelet.ts';
import type { KubectlResult, Scope } from './cluster.ts';
import { startNodeFor } from './virtual-node.ts';

export interface TargetCluster {
  cluster: LocalCluster;
  kubeconfig: string;
  client: KubeClient;
  nodeName: string;
  provider: Provider;
  vk: VirtualKubelet;
  kubectl(args: string[], options?: { allowFailure?: boolean; input?: string }): Promise<KubectlResult>;
  /** Stops the control plane (the target's virtual node keeps its pods) and starts it again on the same port and data. */
  restart(downMs: number): Promise<void>;
  /** The two halves of restart, for callers that act while it is down. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startTargetCluster(scope: Scope, options: { provider: 'sandbox' | 'mock'; nodeName: string }): Promise<TargetCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-target-cluster-'));
  let cluster = await startLocalCluster({ dir, progress: (line) => process.env.VK_TEST_LOG_LEVEL === 'debug' && process.stderr.write(`[target] ${line}\n`) });
  const kubeconfig = cluster.info.kubeconfig;
  const client = await KubeClient.load({ kubeconfig });
  const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  const nodeIP = '127.0.0.1';
  let provider: Provider;
  if (options.provider === 'sandbox') {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vk-target-sandbox-'));
    scope.after(() => rmSync(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
    provider = await SandboxProvider.open({ dataDir }, { nodeName: options.nodeName, nodeIP, log });
  } else {
    provider = new MockProvider(parseMockConfig({}), { nodeName: options.nodeName, hostIP: nodeIP, log });
  }
  const vk = await startNodeFor(provider, options.nodeName, { kubeletApi: true, log, client });
  const call = { signal: new AbortController().signal };
  scope.after(async () => {
    for (const pod of await provider.listPods(call).catch(() => [])) await provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
    await vk.stop().catch(() => undefined);
    await provider.close?.();
    client.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  });
  const port = Number(new URL(cluster.info.server).port);
  const stop = () => cluster.stop();
  const start = async () => {
    cluster = await startLocalCluster({ dir, apiserverPort: port });
  };
  return {
    get cluster() {
      return cluster;
    },
    kubeconfig,
    client,
    nodeName: options.nodeName,
    provider,
    vk,
    kubectl: (args, opts = {}) =>
      new Promise((resolve, reject) => {
        const child = execFile(
          cluster.kubectl,
          args,
          { env: { ...process.env, KUBECONFIG: kubeconfig }, timeout: 120_000, maxBuffer: 64 << 20 },
          (err, stdout, stderr) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            if (code !== 0 && !opts.allowFailure) reject(new Error(`target kubectl ${args.join(' ')} exited ${code}: ${stderr || stdout}`));
            else resolve({ stdout, stderr, code });
          },
        );
        if (opts.input !== undefined) child.stdin?.end(opts.input);
      }),
    async restart(downMs: number) {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
    stop,
    start,
  };
}
