// Many virtual nodes in one process, for the benchmark's nodes×pods scenario: N VirtualKubelet
// instances with the mock provider sharing one KubeClient (watches have their own connection
// pool; requests share 64 keep-alive connections: one client per node held ~2,500 TLS
// connections and over 1 GiB at 100 nodes), without the kubelet API (the scenario measures the
// pod lifecycle).
//
//   node bench/vk-multi.ts --kubeconfig FILE --nodes a,b,c [--provider-config mock.json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { NODE_DEFAULTS, parseDurationMs } from '../src/cli/options.ts';
import { KubeClient } from '../src/kube/client.ts';
import { createLogger } from '../src/log.ts';
import { parseMockConfig } from '../src/providers/mock/config.ts';
import { MockProvider } from '../src/providers/mock/mock-provider.ts';
import { VirtualKubelet } from '../src/virtual-kubelet.ts';

// As bin/vk.js does for `vk run`.
if (process.env.VK_OPTIMIZE_FOR_SIZE !== '0') v8.setFlagsFromString('--optimize-for-size');

const { values } = parseArgs({
  options: {
    kubeconfig: { type: 'string' },
    nodes: { type: 'string' },
    'provider-config': { type: 'string' },
    'log-level': { type: 'string', default: 'warn' },
    'start-concurrency': { type: 'string', default: '10' },
  },
});
if (!values.kubeconfig || !values.nodes) {
  process.stderr.write('usage: node bench/vk-multi.ts --kubeconfig FILE --nodes a,b,c [--provider-config mock.json]\n');
  process.exit(2);
}
const kubeconfig = values.kubeconfig;
const nodeNames = values.nodes.split(',').filter(Boolean);
const mockConfig = parseMockConfig(values['provider-config'] ? JSON.parse(readFileSync(values['provider-config'], 'utf8')) : {});
const log = createLogger(values['log-level'] ?? 'warn');
const d = NODE_DEFAULTS;
const timings = {
  podWorkers: d.podWorkers,
  resyncIntervalMs: parseDurationMs(d.resyncInterval, 'resyncInterval'),
  statusPollIntervalMs: parseDurationMs(d.statusPollInterval, 'statusPollInterval'),
  leaseDurationSeconds: d.leaseDurationSeconds,
  leaseRenewIntervalMs: parseDurationMs(d.leaseRenewInterval, 'leaseRenewInterval'),
  statusUpdateIntervalMs: parseDurationMs(d.statusUpdateInterval, 'statusUpdateInterval'),
  pingIntervalMs: parseDurationMs(d.pingInterval, 'pingInterval'),
  pingTimeoutMs: parseDurationMs(d.pingTimeout, 'pingTimeout'),
};

const client = await KubeClient.load({ kubeconfig });
const running: VirtualKubelet[] = [];
const queue = [...nodeNames];
const started = Date.now();
await Promise.all(
  Array.from({ length: Number(values['start-concurrency']) }, async () => {
    for (let nodeName = queue.shift(); nodeName; nodeName = queue.shift()) {
      const provider = new MockProvider(mockConfig, { nodeName, hostIP: '127.0.0.1', log });
      const vk = await VirtualKubelet.start(
        client,
        provider,
        { nodeName, nodeIP: '127.0.0.1', kubeletPort: 10250, labels: {}, shutdownMode: 'keep', ...timings },
        log,
      );
      running.push(vk);
    }
  }),
);
process.stderr.write(`vk-multi: ${running.length} virtual nodes started in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    void Promise.all(running.map((vk) => vk.stop())).then(() => {
      client.close();
      process.exit(0);
    });
  });
}
