// The fuzz target for the remote provider protocol's server side, in its own process so a
// crash is seen: the mock provider (one pod, ns/web) behind serveProvider() on plain HTTP.
// Prints {"port":N} on stdout once listening; stops on SIGTERM.
import { silentLogger } from '../src/log.ts';
import { serveProvider } from '../src/provider-sdk/server.ts';
import { parseMockConfig } from '../src/providers/mock/config.ts';
import { MockProvider } from '../src/providers/mock/mock-provider.ts';

const provider = new MockProvider(parseMockConfig({}), { nodeName: 'vk-fuzz', log: silentLogger });
await provider.createPod(
  { pod: { metadata: { name: 'web', namespace: 'ns', uid: 'uid-web' }, spec: { containers: [{ name: 'app', image: 'nginx' }] } }, volumes: new Map() },
  { signal: new AbortController().signal },
);
const server = await serveProvider(provider, { port: 0, maxRequestBytes: 1 << 20, heartbeatIntervalMs: 1_000 });
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.once('SIGTERM', () => {
  void server
    .close()
    .then(() => provider.close())
    .then(() => process.exit(0));
});
