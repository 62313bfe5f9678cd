// The remote provider (the mock behind the SDK server, over loopback HTTP) against the shared
// in-process Provider contract: what the protocol carries must keep every promise the mock keeps.
import { silentLogger } from '../../log.ts';
import { serveProvider } from '../../provider-sdk/server.ts';
import { makePod } from '../../../test/harness/pods.ts';
import { runProviderContract } from '../contract.ts';
import { parseMockConfig } from '../mock/config.ts';
import { MockProvider } from '../mock/mock-provider.ts';
import { RemoteProvider } from './remote-provider.ts';

runProviderContract({
  name: 'remote (mock behind the SDK)',
  async make() {
    const mock = new MockProvider(parseMockConfig({}), { nodeName: 'vk', log: silentLogger });
    const server = await serveProvider(mock, { port: 0, log: silentLogger });
    const provider = await RemoteProvider.connect({ endpoint: server.url, timeoutMs: 5_000, connectTimeoutMs: 2_000 }, { log: silentLogger });
    return {
      provider,
      async close() {
        await provider.close?.();
        await server.close();
        await mock.close();
      },
    };
  },
  pod: (name, uid) => makePod({ name, uid }),
});
