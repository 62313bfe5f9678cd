// One virtual node: the node controller and the pod controller over one provider, and the
// kubelet API (logs, exec, stats, ...) on the kubelet port.
import { CostMeter } from './cost/meter.ts';
import { CostMetrics } from './cost/metrics.ts';
import type { PriceTable } from './cost/prices.ts';
import type { KubeClient } from './kube/client.ts';
import { KubeletApi, type KubeletApiOptions } from './kubelet-api/start.ts';
import { instrumentedProvider } from './kubelet-api/instrumented-provider.ts';
import { createStreamingHandler } from './kubelet-api/streaming/handler.ts';
import type { Taint } from './kube/types.ts';
import type { Logger } from './log.ts';
import type { VkMetrics } from './metrics.ts';
import { NodeController, type NodeTimings } from './node/node-controller.ts';
import { FALLBACK_CAPACITY } from './node/node-status.ts';
import { DEFAULT_EVENT_RATE_LIMIT, EventBudget, type EventRateLimit } from './pods/event-budget.ts';
import { PodController } from './pods/pod-controller.ts';
import type { SharedPodWatch } from './pods/shared-pod-watch.ts';
import type { SharedReferences } from './pods/shared-references.ts';
import type { Provider } from './providers/provider.ts';
import { VK_VERSION } from './version.ts';

export interface VirtualKubeletOptions extends NodeTimings {
  nodeName: string;
  nodeIP: string;
  kubeletPort: number;
  labels: Record<string, string>;
  /** undefined: the default virtual-kubelet.io/provider taint. */
  taints?: Taint[];
  /** The node's OS from --os, over the provider's (labels and nodeInfo). */
  operatingSystem?: string;
  /** What happens to DaemonSet pods bound here (default: they run). */
  daemonSetPods?: 'reject' | 'run';
  podWorkers: number;
  resyncIntervalMs: number;
  statusPollIntervalMs: number;
  /** Event writes per second and burst (the kubelet's --event-qps/--event-burst), when eventBudget is unset. */
  eventQps?: number;
  eventBurst?: number;
  /** The process's one pod watch, shared by all its nodes (src/pods/shared-pod-watch.ts); unset: a watch of this node's pods. */
  sharedPodWatch?: SharedPodWatch;
  /** The process's reference watches, shared by all its nodes (src/pods/shared-references.ts); unset: this node's own. */
  sharedReferences?: SharedReferences;
  /** The process's Event budget, shared by all its nodes (src/pods/event-budget.ts); unset: this node's own. */
  eventBudget?: EventBudget;
  /**
   * The kubelet API server, listening on kubeletPort (0: any free port) before the Node is
   * registered, so the Node publishes the port it really listens on. Unset: no server; the Node
   * just publishes kubeletPort.
   */
  kubeletApi?: KubeletApiOptions;
  /** What the node's pods cost (src/cost/): counted on /metrics and annotated on finished pods. Unset: not counted. */
  prices?: PriceTable;
}

/** kube-apiserver's /version, asked once per client however many nodes share it (it does not change while we run). */
const serverVersions = new WeakMap<KubeClient, Promise<{ gitVersion: string }>>();
function serverVersion(client: KubeClient): Promise<{ gitVersion: string }> {
  let version = serverVersions.get(client);
  if (!version) {
    version = client.get<{ gitVersion: string }>('/version');
    // A failed read is asked again by the next node.
    version.catch(() => serverVersions.delete(client));
    serverVersions.set(client, version);
  }
  return version;
}

/** The --event-qps/--event-burst of a node's options, the kubelet's defaults where unset. */
export function eventRateLimit(options: Pick<VirtualKubeletOptions, 'eventQps' | 'eventBurst'>): EventRateLimit {
  return { qps: options.eventQps ?? DEFAULT_EVENT_RATE_LIMIT.qps, burst: options.eventBurst ?? DEFAULT_EVENT_RATE_LIMIT.burst };
}

export class VirtualKubelet {
  readonly node: NodeController;
  readonly pods: PodController;
  readonly provider: Provider;
  /** The kubelet API, when options.kubeletApi was set. */
  readonly kubeletApi: KubeletApi | undefined;
  /** What the node's pods cost, when options.prices was set. */
  readonly cost: CostMeter | undefined;
  private readonly log: Logger;

  private constructor(node: NodeController, pods: PodController, provider: Provider, kubeletApi: KubeletApi | undefined, log: Logger, cost?: CostMeter) {
    this.node = node;
    this.pods = pods;
    this.provider = provider;
    this.kubeletApi = kubeletApi;
    this.log = log;
    this.cost = cost;
  }

  static async start(
    client: KubeClient,
    provider: Provider,
    options: VirtualKubeletOptions,
    log: Logger,
    metrics?: VkMetrics,
    signal?: AbortSignal,
  ): Promise<VirtualKubelet> {
    const server = await serverVersion(client);
    // The kubelet version the cluster shows: the API server's release, then ours.
    const kubeletVersion = `${server.gitVersion.replace(/[-+].*$/, '')}-vk-${VK_VERSION}`;
    // The API's health check reads the node controller, which exists only once the port is known.
    const nodeRef: { current?: NodeController } = {};
    // What the kubelet API calls on the provider is measured (and traced) as the pod controller's calls are.
    const apiProvider = options.kubeletApi ? instrumentedProvider(provider, metrics?.providerCall) : provider;
    // Registered before the first scrape builds the scrape registry (a merge of what is registered by then).
    const costMetrics = options.prices && metrics ? CostMetrics.for(metrics.registry) : undefined;
    const kubeletApi = options.kubeletApi
      ? await KubeletApi.start(
          client,
          apiProvider,
          options.kubeletApi,
          {
            nodeName: options.nodeName,
            nodeIP: options.nodeIP,
            port: options.kubeletPort,
            registry: metrics && (() => metrics.scrapeRegistry()),
            metrics: metrics?.kubeletServer(),
            healthChecks: {
              ping: () => undefined,
              provider: () => {
                const health = nodeRef.current?.currentHealth;
                return health && !health.ready ? health.message : undefined;
              },
            },
          },
          log,
        )
      : undefined;
    kubeletApi?.server.setUpgradeHandler(createStreamingHandler(apiProvider, log));
    const kubeletPort = kubeletApi?.port ?? options.kubeletPort;
    const node = new NodeController(client, provider, { ...options, kubeletPort, providerName: provider.name, kubeletVersion }, log);
    nodeRef.current = node;
    const pods = PodController.create(
      client,
      provider,
      {
        nodeName: options.nodeName,
        hostIP: options.nodeIP,
        workers: options.podWorkers,
        resyncIntervalMs: options.resyncIntervalMs,
        statusPollIntervalMs: options.statusPollIntervalMs,
        daemonSetPods: options.daemonSetPods,
        podSource: options.sharedPodWatch?.forNode(options.nodeName),
        sharedReferences: options.sharedReferences,
        eventBudget: options.eventBudget ?? new EventBudget({ rateLimit: eventRateLimit(options) }),
        nodeAllocatable: () => {
          const config = provider.nodeConfig?.();
          return { ...FALLBACK_CAPACITY, ...config?.capacity, ...config?.allocatable };
        },
      },
      log,
      metrics?.podController(),
    );
    const cost = options.prices ? new CostMeter({ nodeName: options.nodeName, prices: options.prices, client, log, metrics: costMetrics }) : undefined;
    if (cost) pods.watchPods(cost.handlers);
    try {
      await node.start();
      await pods.start(signal);
    } catch (err) {
      cost?.close();
      // Its timers must not outlive a failed start (a standby's term can end mid-start).
      await node.stop();
      await kubeletApi?.stop();
      throw err;
    }
    if (metrics) {
      metrics.setNodeName(options.nodeName);
      metrics.queueDepthSource = () => pods.queueLength;
      metrics.podsSource = () => pods.apiPods();
    }
    return new VirtualKubelet(node, pods, provider, kubeletApi, log, cost);
  }

  private stopping: Promise<void> | undefined;

  /** Stops once; later calls wait for the same stop. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    await this.pods.stop();
    this.cost?.close();
    await this.node.stop();
    await this.kubeletApi?.stop();
    await this.provider.close?.();
    this.log.info({ node: this.node.nodeName }, 'virtual kubelet stopped');
  }
}
