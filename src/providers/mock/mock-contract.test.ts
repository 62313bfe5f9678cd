// The mock provider against the shared in-process Provider contract.
import { silentLogger } from '../../log.ts';
import { makePod } from '../../../test/harness/pods.ts';
import { runProviderContract } from '../contract.ts';
import { parseMockConfig } from './config.ts';
import { MockProvider } from './mock-provider.ts';

runProviderContract({
  name: 'mock',
  async make() {
    const provider = new MockProvider(parseMockConfig({}), { nodeName: 'vk', log: silentLogger });
    return { provider, close: () => provider.close() };
  },
  pod: (name, uid) => makePod({ name, uid }),
});

runProviderContract({
  name: 'mock (poll-only)',
  async make() {
    const provider = new MockProvider(parseMockConfig({ notify: false }), { nodeName: 'vk', log: silentLogger });
    return { provider, close: () => provider.close() };
  },
  pod: (name, uid) => makePod({ name, uid }),
});
