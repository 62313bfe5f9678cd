// Starts the process's virtual nodes over one shared API client: each directly, or, with
// --leader-elect, whenever this process holds that node's leader Lease (standby otherwise). A
// node's provider is created per term of leadership and fenced when the term ends.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import { ConfigError, errorMessage } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { approveCsr } from '../kubelet-api/certificates.ts';
import { createLogger, type Logger } from '../log.ts';
import { sharedProcessMetrics, VkMetrics } from '../metrics.ts';
import { fenceProvider } from '../node/fenced-provider.ts';
import { LeaderElector, type Term } from '../node/leader-election.ts';
import { EventBudget } from '../pods/event-budget.ts';
import { SharedPodWatch } from '../pods/shared-pod-watch.ts';
import { SharedReferences } from '../pods/shared-references.ts';
import { createProvider, readProviderConfig } from '../providers/registry.ts';
import { startTracing, stopTracing } from '../tracing/start.ts';
import { VirtualKubelet, eventRateLimit } from '../virtual-kubelet.ts';
import { parseDurationMs, toVirtualKubeletOptions, type NodeSettings } from './options.ts';

/** Nodes starting at once: each start is a few API round trips (and a CSR wait). */
const START_CONCURRENCY = 10;

export interface NodeRunOptions {
  /** `vk up` owns its cluster: it approves the node's serving-certificate CSR as the cluster admin would. */
  approveCsr?: boolean;
  /** Per provider name: config fields used where the provider config does not set them. */
  providerDefaults?: Record<string, Record<string, unknown>>;
}

export async function checkPortFree(port: number, flag: string, host = '0.0.0.0'): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new ConfigError(`${flag} ${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

/** The process's virtual nodes: the ones it serves now (all of them without leader election). */
export class NodeRunner {
  /** Serving nodes by name. */
  readonly active = new Map<string, VirtualKubelet>();
  /** Each node's metrics (kept across terms of leadership). */
  readonly metrics = new Map<string, VkMetrics>();
  private readonly stops: (() => Promise<void>)[] = [];
  private tracing = false;
  /** One Event budget for all the process's nodes (the first node's --event-qps/--event-burst), as one kubelet has one. */
  private eventBudget: EventBudget | undefined;
  /** With more than one node: one watch of all bound pods for all of them, instead of one watch per node. */
  private sharedPodWatch: SharedPodWatch | undefined;
  /** With more than one node: each referenced ConfigMap, Secret and namespace's Services watched once for all of them. */
  private sharedReferences: SharedReferences | undefined;
  private readonly client: KubeClient;
  private readonly options: NodeRunOptions;
  private readonly identity = `${os.hostname()}_${process.pid}_${randomBytes(4).toString('hex')}`;
  /** One logger (and stderr stream) per log level, shared by the nodes: one each was 1,000 streams at 1,000 nodes. */
  private readonly loggers = new Map<string, Logger>();

  constructor(client: KubeClient, options: NodeRunOptions = {}) {
    this.client = client;
    this.options = options;
  }

  /** Starts every node (a leader-elected one: its campaign); a failing start stops those already started. */
  async start(nodes: NodeSettings[]): Promise<void> {
    const queue = nodes.map((settings, index) => ({ settings, index }));
    const multi = nodes.length > 1;
    if (nodes[0]) {
      this.eventBudget = new EventBudget({ rateLimit: eventRateLimit(nodes[0]) });
      sharedProcessMetrics().observeEventBudget(this.eventBudget);
    }
    if (multi) {
      const log = this.logger(nodes[0]!.logLevel);
      this.sharedPodWatch = SharedPodWatch.create(this.client, log);
      this.sharedReferences = SharedReferences.create(this.client, log);
    }
    // Before the nodes start, so their first syncs are traced; flushed after they stop.
    const tracing = nodes[0];
    if (tracing?.tracingEndpoint) {
      await startTracing({ endpoint: tracing.tracingEndpoint, samplingRate: tracing.tracingSamplingRate });
      this.tracing = true;
    }
    try {
      await Promise.all(
        Array.from({ length: Math.min(START_CONCURRENCY, nodes.length) }, async () => {
          for (let next = queue.shift(); next; next = queue.shift()) {
            // Process metrics and API client metrics once, on the first node's registry.
            const metrics = new VkMetrics({ node: multi ? next.settings.nodeName : undefined });
            if (next.index === 0) metrics.observeClient(this.client);
            this.metrics.set(next.settings.nodeName, metrics);
            if (next.settings.leaderElect) this.campaign(next.settings, metrics);
            else {
              const vk = await this.startNode(next.settings, metrics);
              this.stops.push(() => vk.stop());
            }
          }
        }),
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every node (leader-elected ones release their Lease for a standby). */
  async stop(): Promise<void> {
    const stops = this.stops.splice(0);
    const results = await Promise.allSettled(stops.map((stop) => stop()));
    this.eventBudget?.stop();
    results.push(...(await Promise.allSettled([this.sharedReferences?.stop()])));
    // The tracer goes last, so the spans of the nodes' last syncs are flushed.
    if (this.tracing) {
      this.tracing = false;
      results.push(...(await Promise.allSettled([stopTracing()])));
    }
    for (const result of results) if (result.status === 'rejected') process.stderr.write(`vk: while stopping: ${errorMessage(result.reason)}\n`);
  }

  private logger(level: string): Logger {
    let log = this.loggers.get(level);
    if (!log) this.loggers.set(level, (log = createLogger(level)));
    return log;
  }

  private async startNode(settings: NodeSettings, metrics: VkMetrics, term?: Term): Promise<VirtualKubelet> {
    const log = this.logger(settings.logLevel);
    await checkPortFree(settings.kubeletPort, '--kubelet-port', settings.kubeletAddress);
    const config = readProviderConfig(settings.providerConfig);
    const defaults = this.options.providerDefaults?.[settings.provider];
    const withDefaults = defaults && typeof config === 'object' && config !== null && !Array.isArray(config) ? { ...defaults, ...config } : config;
    let provider = await createProvider(settings.provider, withDefaults, {
      nodeName: settings.nodeName,
      nodeIP: settings.nodeIp,
      log,
      kube: this.client,
      clusterDomain: settings.clusterDomain,
      clusterDNS: settings.clusterDns,
    });
    if (term) provider = fenceProvider(provider, term.valid);
    const created = provider;
    const vkOptions = toVirtualKubeletOptions(settings);
    vkOptions.eventBudget = this.eventBudget;
    vkOptions.sharedPodWatch = this.sharedPodWatch;
    vkOptions.sharedReferences = this.sharedReferences;
    // A standby takes the Node over: stopping must not mark it NotReady or delete it.
    if (term) {
      vkOptions.shutdownMode = 'keep';
      vkOptions.fence = term.valid;
    }
    if (this.options.approveCsr && vkOptions.kubeletApi)
      vkOptions.kubeletApi.approveCsr = (name) => approveCsr(this.client, name, 'approved by vk up for its local virtual node');
    const vk = await VirtualKubelet.start(this.client, provider, vkOptions, log, metrics, term?.lost).catch(async (err: unknown) => {
      await created.close?.();
      throw err;
    });
    this.active.set(settings.nodeName, vk);
    return vk;
  }

  private campaign(settings: NodeSettings, metrics: VkMetrics): void {
    const log: Logger = this.logger(settings.logLevel).child({ node: settings.nodeName });
    const elector = new LeaderElector(
      this.client,
      {
        namespace: settings.leaderElectResourceNamespace,
        name: settings.leaderElectResourceName.replaceAll('{node}', settings.nodeName),
        identity: this.identity,
        leaseDurationMs: parseDurationMs(settings.leaderElectLeaseDuration, 'leaderElectLeaseDuration'),
        renewDeadlineMs: parseDurationMs(settings.leaderElectRenewDeadline, 'leaderElectRenewDeadline'),
        retryPeriodMs: parseDurationMs(settings.leaderElectRetryPeriod, 'leaderElectRetryPeriod'),
      },
      log,
    );
    elector.start(async (term) => {
      const { lost } = term;
      const vk = await this.startNode(settings, metrics, term);
      try {
        await new Promise<void>((resolve) => (lost.aborted ? resolve() : lost.addEventListener('abort', () => resolve(), { once: true })));
      } finally {
        this.active.delete(settings.nodeName);
        await vk.stop();
      }
    });
    this.stops.push(() => elector.stop());
  }
}
