// Starts a virtual node in the test process, on the shared control plane, with fast timings.
import type { KubeClient } from '../../src/kube/client.ts';
import { approveCsr } from '../../src/kubelet-api/certificates.ts';
import type { KubeletApiOptions } from '../../src/kubelet-api/start.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import type { Provider } from '../../src/providers/provider.ts';
import { VkMetrics } from '../../src/metrics.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import { VirtualKubelet, type VirtualKubeletOptions } from '../../src/virtual-kubelet.ts';
import { adminClient, randomName, type Scope } from './cluster.ts';
import { FAST_TIMINGS } from './timings.ts';

export interface TestNode {
  vk: VirtualKubelet;
  provider: MockProvider;
  nodeName: string;
  /** The port the kubelet API listens on (on 127.0.0.1), when started with kubeletApi. */
  kubeletPort?: number;
}

export interface StartNodeOptions {
  node?: Partial<VirtualKubeletOptions>;
  /** true, or options to override: serve the kubelet API on 127.0.0.1, a free port, webhook auth, a CSR this harness approves. */
  kubeletApi?: boolean | Partial<KubeletApiOptions>;
  metrics?: VkMetrics;
  log?: Logger;
  /** The control plane to register on (default: the shared one's admin client). */
  client?: KubeClient;
}

/** Starts `provider` as node `nodeName` on the shared control plane with fast timings; the caller stops it. */
export async function startNodeFor(provider: Provider, nodeName: string, options: StartNodeOptions = {}): Promise<VirtualKubelet> {
  const log = options.log ?? createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  const client = options.client ?? (await adminClient());
  const api: Partial<VirtualKubeletOptions> = options.kubeletApi
    ? {
        kubeletPort: 0,
        kubeletApi: {
          address: '127.0.0.1',
          auth: 'webhook',
          servingCert: 'csr',
          csrTimeoutMs: 30_000,
          approveCsr: (name) => approveCsr(client, name, 'approved by the test harness'),
          ...(typeof options.kubeletApi === 'object' && options.kubeletApi),
        },
      }
    : {};
  return VirtualKubelet.start(
    client,
    provider,
    { nodeName, nodeIP: '127.0.0.1', kubeletPort: 10250, labels: {}, shutdownMode: 'delete', ...FAST_TIMINGS, ...api, ...options.node },
    log,
    options.metrics ?? (options.kubeletApi ? new VkMetrics() : undefined),
  );
}

/**
 * A virtual node with the mock provider; deleted (Node and all) when the test ends. With
 * kubeletApi (see StartNodeOptions) it also serves the kubelet API.
 */
export async function startVirtualNode(t: Scope, options: StartNodeOptions & { mockConfig?: unknown } = {}): Promise<TestNode> {
  const nodeName = options.node?.nodeName ?? randomName('vk-node');
  const log = options.log ?? createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  const provider = new MockProvider(parseMockConfig(options.mockConfig ?? {}), { nodeName, log });
  const vk = await startNodeFor(provider, nodeName, { ...options, log });
  t.after(() => vk.stop());
  return { vk, provider, nodeName, ...(vk.kubeletApi && { kubeletPort: vk.kubeletApi.port }) };
}
