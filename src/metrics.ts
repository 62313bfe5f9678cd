// The Prometheus metrics served on each node's kubelet port (/metrics): per node, our own vk_*
// series and the kubelet's (kubelet_*, same names, labels, help and buckets as
// k8s.io/kubernetes pkg/kubelet/metrics), so dashboards written for kubelets work unchanged;
// per process, rest_client_* (k8s.io/component-base restclient metrics) and prom-client's
// process_*/nodejs_* defaults. A process running many nodes has one registry per node, as
// kubelets have one endpoint each; the process-wide series appear on every node's endpoint.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CompactCounter, CompactHistogram, type CounterChild, type HistogramChild } from './compact-metrics.ts';
import type { KubeClient, Verb } from './kube/client.ts';
import type { Pod } from './kube/types.ts';
import type { KubeletServerMetrics } from './kubelet-api/server.ts';
import type { EventBudget } from './pods/event-budget.ts';
import type { PodControllerMetrics, PodWorkerOperation } from './pods/pod-controller.ts';

/** The kubelet's help texts carry the stability level, as k8s.io/component-base writes them. */
const ALPHA = '[ALPHA] ';
/** pkg/kubelet/metrics podStartupDurationBuckets. */
const POD_STARTUP_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];
/** k8s.io/component-base metrics.DefBuckets (= Prometheus DefBuckets). */
const DEF_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** kubelet_runtime_operations_duration_seconds: ExponentialBuckets(.005, 2.5, 14). */
const RUNTIME_BUCKETS = exponentialBuckets(0.005, 2.5, 14);
// Our own histograms' buckets, one array for all nodes.
const API_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SYNC_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PROVIDER_BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30];
const KUBELET_API_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300];
/** rest_client_request_duration_seconds. */
const REST_CLIENT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60];

const HTTP_METHOD: Record<Verb, string> = { get: 'GET', list: 'GET', watch: 'GET', create: 'POST', update: 'PUT', patch: 'PATCH', delete: 'DELETE' };

/** Process-wide series: one set per process however many nodes it runs. */
export class ProcessMetrics {
  readonly registry = new Registry();
  readonly restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: `${ALPHA}Number of HTTP requests, partitioned by status code, method, and host.`,
    labelNames: ['code', 'method', 'host'],
    registers: [this.registry],
  });
  readonly restLatency = new Histogram({
    name: 'rest_client_request_duration_seconds',
    help: `${ALPHA}Request latency in seconds. Broken down by verb, and host.`,
    labelNames: ['verb', 'host'],
    buckets: REST_CLIENT_BUCKETS,
    registers: [this.registry],
  });
  private readonly observed = new WeakSet<KubeClient>();
  /** The process's Event budget (shared by its nodes), read at scrape time. */
  private eventBudget: Pick<EventBudget, 'written' | 'dropped' | 'queued'> | undefined;

  constructor() {
    const budget = () => this.eventBudget;
    const counterFrom = (name: string, help: string, read: (b: NonNullable<ReturnType<typeof budget>>) => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const b = budget();
          this.reset();
          if (b) this.inc(read(b));
        },
      });
    counterFrom('vk_events_written_total', 'Events sent to the API server by all nodes of this process', (b) => b.written);
    counterFrom('vk_events_dropped_total', "Events dropped because the process's Event queue was full", (b) => b.dropped);
    new Gauge({
      name: 'vk_events_queued',
      help: "Events waiting in the process's Event queue (for a rate-limit token, or for pod status writes to finish)",
      registers: [this.registry],
      collect() {
        this.set(budget()?.queued ?? 0);
      },
    });
    collectDefaultMetrics({ register: this.registry });
    // Gauges named like counters fail `promtool check metrics`; nodejs_active_{handles,requests,resources}{type} carry the same counts.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
  }

  /** Serves the Event budget's counts (one budget per process). */
  observeEventBudget(budget: Pick<EventBudget, 'written' | 'dropped' | 'queued'>): void {
    this.eventBudget = budget;
  }

  /** Counts a client's requests once, however many nodes share it. */
  observeClient(client: KubeClient): void {
    if (this.observed.has(client)) return;
    this.observed.add(client);
    const host = client.server.host;
    const children = new Map<string, { count: Counter.Internal; latency: Histogram.Internal<string> }>();
    client.observe((verb, _path, code, seconds) => {
      const key = `${verb} ${code}`;
      let child = children.get(key);
      if (!child) {
        const method = HTTP_METHOD[verb];
        // client-go's label for a request that got no answer.
        child = { count: this.restRequests.labels(code === 0 ? '<error>' : String(code), method, host), latency: this.restLatency.labels(method, host) };
        children.set(key, child);
      }
      child.count.inc();
      child.latency.observe(seconds);
    });
  }
}

let processMetrics: ProcessMetrics | undefined;

/** The process's one ProcessMetrics (default collectors must be registered once per process). */
export function sharedProcessMetrics(): ProcessMetrics {
  processMetrics ??= new ProcessMetrics();
  return processMetrics;
}

/** What the kubelet_running_* gauges read at scrape time: the node's API pods. */
export type PodLister = () => Iterable<Pod>;

interface OperationSeries {
  total: CounterChild;
  errors: CounterChild;
  duration: HistogramChild;
  vkDuration: HistogramChild;
  vkErrors: CounterChild;
}

/** One node's series (histograms compact: a process may run 1,000 nodes, each with its own). */
export class VkMetrics {
  readonly registry = new Registry();
  readonly process: ProcessMetrics;
  readonly apiRequests = new CompactCounter({
    name: 'vk_api_requests_total',
    help: 'Requests to kube-apiserver by verb and HTTP status code',
    labelNames: ['verb', 'code'],
    registers: [this.registry],
  });
  readonly apiLatency = new CompactHistogram({
    name: 'vk_api_request_duration_seconds',
    help: 'kube-apiserver request latency until response headers',
    labelNames: ['verb'],
    buckets: API_BUCKETS,
    registers: [this.registry],
  });
  readonly syncLatency = new CompactHistogram({
    name: 'vk_pod_sync_duration_seconds',
    help: 'Duration of one pod reconcile',
    labelNames: ['outcome'],
    buckets: SYNC_BUCKETS,
    registers: [this.registry],
  });
  readonly providerCalls = new CompactHistogram({
    name: 'vk_provider_call_duration_seconds',
    help: 'Provider call latency by operation',
    labelNames: ['operation'],
    buckets: PROVIDER_BUCKETS,
    registers: [this.registry],
  });
  readonly providerErrors = new CompactCounter({
    name: 'vk_provider_call_errors_total',
    help: 'Failed provider calls by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  readonly kubeletRequests = new CompactCounter({
    name: 'vk_kubelet_api_requests_total',
    help: 'Requests to the kubelet API by method, path bucket and HTTP status (101 for upgrades handed to streaming)',
    labelNames: ['method', 'path', 'code'],
    registers: [this.registry],
  });
  readonly kubeletLatency = new CompactHistogram({
    name: 'vk_kubelet_api_request_duration_seconds',
    help: 'Kubelet API request duration (until the response ends; until the hand-over for upgrades)',
    labelNames: ['method', 'path'],
    buckets: KUBELET_API_BUCKETS,
    registers: [this.registry],
  });
  readonly kubeletAuth = new CompactCounter({
    name: 'vk_kubelet_api_auth_total',
    help: 'Kubelet API authentication/authorization outcomes',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /** Where the queue depth gauge reads from; set once the pod controller exists. */
  queueDepthSource: () => number = () => 0;
  readonly queueDepth: Gauge;

  // The kubelet's names (pkg/kubelet/metrics/metrics.go).
  readonly nodeName = new Gauge({
    name: 'kubelet_node_name',
    help: `${ALPHA}The node's name. The count is always 1.`,
    labelNames: ['node'],
    registers: [this.registry],
  });
  readonly podWorkerDuration = new CompactHistogram({
    name: 'kubelet_pod_worker_duration_seconds',
    help: `${ALPHA}Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync`,
    labelNames: ['operation_type'],
    buckets: DEF_BUCKETS,
    registers: [this.registry],
  });
  readonly podStartDuration = new CompactHistogram({
    name: 'kubelet_pod_start_duration_seconds',
    help: `${ALPHA}Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run`,
    buckets: POD_STARTUP_BUCKETS,
    registers: [this.registry],
  });
  readonly podStartSliDuration = new CompactHistogram({
    name: 'kubelet_pod_start_sli_duration_seconds',
    help: `${ALPHA}Duration in seconds to start a pod, excluding time to pull images and run init containers, measured from pod creation timestamp to when all its containers are reported as started and observed via watch`,
    labelNames: ['first_with_network'],
    buckets: POD_STARTUP_BUCKETS,
    registers: [this.registry],
  });
  readonly startedPods = new CompactCounter({
    name: 'kubelet_started_pods_total',
    help: `${ALPHA}Cumulative number of pods started`,
    registers: [this.registry],
  });
  readonly startedPodsErrors = new CompactCounter({
    name: 'kubelet_started_pods_errors_total',
    help: `${ALPHA}Cumulative number of errors when starting pods`,
    registers: [this.registry],
  });
  readonly restartedPods = new CompactCounter({
    name: 'kubelet_restarted_pods_total',
    help: `${ALPHA}Number of pods that have been restarted because they were deleted and recreated with the same UID while the kubelet was watching them (common for static pods, extremely uncommon for API pods)`,
    labelNames: ['static'],
    registers: [this.registry],
  });
  readonly runtimeOperations = new CompactCounter({
    name: 'kubelet_runtime_operations_total',
    help: `${ALPHA}Cumulative number of runtime operations by operation type.`,
    labelNames: ['operation_type'],
    registers: [this.registry],
  });
  readonly runtimeOperationsDuration = new CompactHistogram({
    name: 'kubelet_runtime_operations_duration_seconds',
    help: `${ALPHA}Duration in seconds of runtime operations. Broken down by operation type.`,
    labelNames: ['operation_type'],
    buckets: RUNTIME_BUCKETS,
    registers: [this.registry],
  });
  readonly runtimeOperationsErrors = new CompactCounter({
    name: 'kubelet_runtime_operations_errors_total',
    help: `${ALPHA}Cumulative number of runtime operation errors by operation type.`,
    labelNames: ['operation_type'],
    registers: [this.registry],
  });
  /** Where kubelet_running_pods/containers read from; set once the pod controller exists. */
  podsSource: PodLister = () => [];
  readonly runningPods: Gauge;
  readonly runningContainers: Gauge;
  private readonly operations = new Map<string, OperationSeries>();
  private readonly workerDurations = new Map<string, HistogramChild>();
  private scrape: Registry | undefined;
  private defaultLabels: Record<string, string> | undefined;

  /**
   * `node` labels every series (many virtual nodes in one process); the process-wide series
   * (process_*, nodejs_*, rest_client_*) are registered once per process and served with each node's.
   */
  constructor(options: { node?: string; process?: ProcessMetrics } = {}) {
    this.process = options.process ?? sharedProcessMetrics();
    if (options.node) {
      this.defaultLabels = { node: options.node };
      this.registry.setDefaultLabels(this.defaultLabels);
    }
    const readDepth = () => this.queueDepthSource();
    const readPods = () => countRunning(this.podsSource());
    this.queueDepth = new Gauge({
      name: 'vk_pod_queue_depth',
      help: 'Pods waiting in the work queue',
      registers: [this.registry],
      collect() {
        this.set(readDepth());
      },
    });
    this.runningPods = new Gauge({
      name: 'kubelet_running_pods',
      help: `${ALPHA}Number of pods that have a running pod sandbox`,
      registers: [this.registry],
      collect() {
        this.set(readPods().pods);
      },
    });
    this.runningContainers = new Gauge({
      name: 'kubelet_running_containers',
      help: `${ALPHA}Number of containers currently running`,
      labelNames: ['container_state'],
      registers: [this.registry],
      collect() {
        const counts = readPods();
        this.set({ container_state: 'running' }, counts.running);
        this.set({ container_state: 'exited' }, counts.exited);
      },
    });
  }

  /** The registry /metrics serves: this node's series and the process's. */
  scrapeRegistry(): Registry {
    // A merge copies the metrics registered so far (register on this.registry before the first
    // call) and not the node label, which is set on the merged registry again.
    if (!this.scrape) {
      this.scrape = Registry.merge([this.registry, this.process.registry]);
      if (this.defaultLabels) this.scrape.setDefaultLabels(this.defaultLabels);
    }
    return this.scrape;
  }

  setNodeName(name: string): void {
    this.nodeName.reset();
    this.nodeName.set({ node: name }, 1);
  }

  observeClient(client: KubeClient): void {
    this.process.observeClient(client);
    const children = new Map<string, { count: CounterChild; latency: HistogramChild }>();
    client.observe((verb, _path, code, seconds) => {
      if (code === 0) return; // no answer: rest_client_requests_total counts it as <error>
      const key = `${verb} ${code}`;
      let child = children.get(key);
      if (!child) children.set(key, (child = { count: this.apiRequests.labels({ verb, code: String(code) }), latency: this.apiLatency.labels({ verb }) }));
      child.count.inc();
      child.latency.observe(seconds);
    });
  }

  kubeletServer(): KubeletServerMetrics {
    return {
      request: (method, path, code, seconds) => {
        this.kubeletRequests.inc({ method, path, code: String(code) });
        this.kubeletLatency.observe({ method, path }, seconds);
      },
      auth: (result) => this.kubeletAuth.inc({ result }),
    };
  }

  /** One provider call (the pod controller's or the kubelet API's): kubelet_runtime_operations_* and vk_provider_call_*. */
  readonly providerCall = (operation: string, seconds: number, ok: boolean): void => {
    const series = this.operation(operation);
    series.total.inc();
    series.duration.observe(seconds);
    series.vkDuration.observe(seconds);
    if (!ok) {
      series.errors.inc();
      series.vkErrors.inc();
    }
  };

  podController(): PodControllerMetrics {
    let networkPodStarted = false;
    const syncOk = this.syncLatency.labels('ok');
    const syncError = this.syncLatency.labels('error');
    const sliFirst = this.podStartSliDuration.labels('true');
    const sliOther = this.podStartSliDuration.labels('false');
    return {
      syncDuration: (seconds, outcome) => (outcome === 'ok' ? syncOk : syncError).observe(seconds),
      podWorker: (operation, seconds) => this.workerDuration(operation).observe(seconds),
      providerCall: this.providerCall,
      podCreated: (ok, restarted) => {
        if (ok) this.startedPods.inc();
        else this.startedPodsErrors.inc();
        if (ok && restarted) this.restartedPods.inc({ static: 'false' });
      },
      podRunning: (pod, sinceFirstSeenSeconds) => {
        this.podStartDuration.observe(sinceFirstSeenSeconds);
        const created = Date.parse(pod.metadata?.creationTimestamp ?? '');
        if (Number.isNaN(created)) return;
        const firstWithNetwork = !networkPodStarted && !pod.spec?.hostNetwork;
        if (firstWithNetwork) networkPodStarted = true;
        (firstWithNetwork ? sliFirst : sliOther).observe(Math.max(0, (Date.now() - created) / 1000));
      },
    };
  }

  /** Label children are looked up once per operation, not per call (the pod path's hot loop). */
  private operation(name: string): OperationSeries {
    let series = this.operations.get(name);
    if (!series) {
      series = {
        total: this.runtimeOperations.labels(name),
        errors: this.runtimeOperationsErrors.labels(name),
        duration: this.runtimeOperationsDuration.labels(name),
        vkDuration: this.providerCalls.labels(name),
        vkErrors: this.providerErrors.labels(name),
      };
      this.operations.set(name, series);
    }
    return series;
  }

  private workerDuration(operation: PodWorkerOperation): HistogramChild {
    let child = this.workerDurations.get(operation);
    if (!child) {
      child = this.podWorkerDuration.labels(operation);
      this.workerDurations.set(operation, child);
    }
    return child;
  }
}

/**
 * Pods with a sandbox (not finished, some container started) and their containers by state:
 * running, or exited (terminated, or waiting to restart after exiting). Containers that were
 * never created are not counted, as the kubelet counts only what the runtime holds.
 */
export function countRunning(pods: Iterable<Pod>): { pods: number; running: number; exited: number } {
  let podCount = 0;
  let running = 0;
  let exited = 0;
  for (const pod of pods) {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    let sandbox = false;
    for (const list of [pod.status?.initContainerStatuses, pod.status?.containerStatuses]) {
      for (const c of list ?? []) {
        if (c.state?.running) {
          running++;
          sandbox = true;
        } else if (c.state?.terminated || c.lastState?.terminated) {
          exited++;
          sandbox = true;
        }
      }
    }
    if (sandbox) podCount++;
  }
  return { pods: podCount, running, exited };
}

/** Prometheus's ExponentialBuckets, multiplied step by step as Go does (the same float64s). */
function exponentialBuckets(start: number, factor: number, count: number): number[] {
  const buckets: number[] = [];
  for (let bound = start; buckets.length < count; bound *= factor) buckets.push(bound);
  return buckets;
}
