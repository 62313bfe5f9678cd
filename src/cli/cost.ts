// `vk cost`: what pods on virtual nodes cost, by namespace and by workload, read from the nodes'
// /metrics (through kube-apiserver's node proxy, or given URLs); with --compare-vm, the break-even
// against a VM instead.
import type { Command } from 'commander';
import { breakEven, parseSizeList, renderBreakEven } from '../cost/break-even.ts';
import { BUILTIN_PRICES, readPriceFile, type PriceTable } from '../cost/prices.ts';
import { costTables, parseCostMetrics, renderCostTables, type PodCostSeries } from '../cost/report.ts';
import { ConfigError, errorMessage } from '../errors.ts';
import { KubeClient } from '../kube/client.ts';
import { parseDurationMs } from './options.ts';

function pricesFor(name: string): PriceTable {
  return BUILTIN_PRICES[name] ?? readPriceFile(name);
}

/** Every node's cost series, through the node proxy; nodes that have none (or cannot be reached) are listed in `skipped`. */
async function fromCluster(client: KubeClient, selector: string): Promise<{ pods: PodCostSeries[]; nodes: string[]; skipped: string[] }> {
  const nodes = await client.list<{ items: { metadata: { name: string } }[] }>('/api/v1/nodes', { query: { labelSelector: selector } });
  const pods: PodCostSeries[] = [];
  const read: string[] = [];
  const skipped: string[] = [];
  for (const node of nodes.items) {
    const name = node.metadata.name;
    try {
      const text = await client.getText(`/api/v1/nodes/${encodeURIComponent(name)}/proxy/metrics`, { timeoutMs: 15_000 });
      pods.push(...parseCostMetrics(text));
      read.push(name);
    } catch (err) {
      skipped.push(`${name} (${errorMessage(err).split('\n')[0]})`);
    }
  }
  return { pods, nodes: read, skipped };
}

async function fromUrl(url: string): Promise<PodCostSeries[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  if (!res.ok) throw new ConfigError(`--metrics-url ${url}: HTTP ${res.status}`);
  return parseCostMetrics(await res.text());
}

export function addCostCommand(program: Command): void {
  program
    .command('cost')
    .description(
      "what pods on virtual nodes cost, by namespace and by workload (from the nodes' vk_pod_cost_* metrics); or, with --compare-vm, the break-even against a VM",
    )
    .option('--kubeconfig <file>', 'kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--context <name>', 'kubeconfig context')
    .option('--selector <labels>', "which nodes to read (their /metrics through kube-apiserver's node proxy)", 'type=virtual-kubelet')
    .option(
      '--metrics-url <url>',
      'read this /metrics page instead of the cluster (repeatable; plain HTTP(S) without credentials)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--window <duration>',
      'only what was charged in this last stretch of time, e.g. 1h, 30m (default: all the nodes still report: a deleted pod for a day)',
    )
    .option('--compare-vm <vcpu,GiB,price/hour>', 'print from how many hours a day a workload of --size is cheaper on this VM than at --prices')
    .option('--size <vcpu,GiB>', 'the workload for --compare-vm', '1,2')
    .option('--prices <name|file>', "the virtual node's prices for --compare-vm: fargate, aci, or a price file", 'fargate')
    .action(
      async (opts: {
        kubeconfig?: string;
        context?: string;
        selector: string;
        metricsUrl?: string[];
        window?: string;
        compareVm?: string;
        size: string;
        prices: string;
      }) => {
        if (opts.compareVm) {
          const [vcpu, gib, pricePerHour] = parseSizeList(opts.compareVm, '--compare-vm', 3) as [number, number, number];
          const [sizeVcpu, sizeGib] = parseSizeList(opts.size, '--size', 2) as [number, number];
          const prices = pricesFor(opts.prices);
          const vm = { vcpu, gib, pricePerHour };
          const workload = { vcpu: sizeVcpu, gib: sizeGib };
          process.stdout.write(renderBreakEven(workload, prices, vm, breakEven(workload, prices, vm)));
          return;
        }
        const windowSeconds = opts.window === undefined ? undefined : parseDurationMs(opts.window, '--window') / 1000;
        let pods: PodCostSeries[];
        let from: string;
        if (opts.metricsUrl?.length) {
          pods = (await Promise.all(opts.metricsUrl.map(fromUrl))).flat();
          from = opts.metricsUrl.join(', ');
        } else {
          const client = await KubeClient.load({ kubeconfig: opts.kubeconfig, context: opts.context });
          try {
            const result = await fromCluster(client, opts.selector);
            pods = result.pods;
            from = `nodes ${result.nodes.join(', ') || '(none)'}`;
            for (const skipped of result.skipped) process.stderr.write(`vk cost: skipped node ${skipped}\n`);
          } finally {
            client.close();
          }
        }
        const title = `Cost ${windowSeconds === undefined ? 'so far' : `in the last ${opts.window}`}, from ${from}`;
        process.stdout.write(renderCostTables(costTables(pods, Date.now() / 1000, windowSeconds), title));
      },
    );
}
