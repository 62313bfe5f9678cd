// Starts a virtual node in the test process, on the shared control plane, with fast timings.
import type { TestContext } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import { VirtualKubelet, type VirtualKubeletOptions } from '../../src/virtual-kubelet.ts';
import { adminClient, randomName } from './cluster.ts';

export interface TestNode {
  vk: VirtualKubelet;
  provider: MockProvider;
  nodeName: string;
}

export const FAST_TIMINGS = {
  podWorkers: 4,
  resyncIntervalMs: 10_000,
  statusPollIntervalMs: 500,
  leaseDurationSeconds: 40,
  leaseRenewIntervalMs: 1_000,
  statusUpdateIntervalMs: 10_000,
  pingIntervalMs: 200,
  pingTimeoutMs: 1_000,
};

/** A virtual node with the mock provider; deleted (Node and all) when the test ends. */
export async function startVirtualNode(t: TestContext, options: { mockConfig?: unknown; node?: Partial<VirtualKubeletOptions> } = {}): Promise<TestNode> {
  const nodeName = options.node?.nodeName ?? randomName('vk-node');
  const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');
  const provider = new MockProvider(parseMockConfig(options.mockConfig ?? {}), { nodeName, log });
  const client = await adminClient();
  const vk = await VirtualKubelet.start(
    client,
    provider,
    { nodeName, nodeIP: '127.0.0.1', kubeletPort: 10250, labels: {}, shutdownMode: 'delete', ...FAST_TIMINGS, ...options.node },
    log,
  );
  t.after(() => vk.stop());
  return { vk, provider, nodeName };
}
