// The fuzz target for the kubelet API port, run as its own process so a crash is seen (the
// process exits) and its RSS is its own: the mock provider with one pod (web/app), the HTTPS
// server without auth (so bad input reaches the routes and the SPDY/WebSocket sessions), and
// the streaming handler. Prints {"port":N} on stdout once listening; stops on SIGTERM.
import { silentLogger } from '../src/log.ts';
import { parseMockConfig } from '../src/providers/mock/config.ts';
import { MockProvider } from '../src/providers/mock/mock-provider.ts';
import { selfSignedServingCert } from '../src/kubelet-api/certificates.ts';
import { KubeletServer } from '../src/kubelet-api/server.ts';
import { createStreamingHandler } from '../src/kubelet-api/streaming/handler.ts';

const provider = new MockProvider(parseMockConfig({}), { nodeName: 'vk-fuzz', log: silentLogger });
await provider.createPod(
  { pod: { metadata: { name: 'web', namespace: 'ns', uid: 'uid-web' }, spec: { containers: [{ name: 'app', image: 'nginx' }] } }, volumes: new Map() },
  { signal: new AbortController().signal },
);
const cert = selfSignedServingCert({ nodeName: 'vk-fuzz', nodeIP: '127.0.0.1' });
const server = await KubeletServer.start({ nodeName: 'vk-fuzz', provider, log: silentLogger, address: '127.0.0.1', port: 0, cert: cert.cert, key: cert.key });
// Streams that a fuzz case opens and abandons close within seconds, not the kubelet's 30 s / 4 h.
server.setUpgradeHandler(createStreamingHandler(provider, silentLogger, { idleTimeoutMs: 5_000, creationTimeoutMs: 2_000 }));
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
process.once('SIGTERM', () => {
  void server
    .close()
    .then(() => provider.close())
    .then(() => process.exit(0));
});
