// The process's own Prometheus metrics (served on the kubelet port's /metrics).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeClient } from './kube/client.ts';
import type { KubeletServerMetrics } from './kubelet-api/server.ts';
import type { PodControllerMetrics } from './pods/pod-controller.ts';

export class VkMetrics {
  readonly registry = new Registry();
  readonly apiRequests = new Counter({
    name: 'vk_api_requests_total',
    help: 'Requests to kube-apiserver by verb and HTTP status code',
    labelNames: ['verb', 'code'],
    registers: [this.registry],
  });
  readonly apiLatency = new Histogram({
    name: 'vk_api_request_duration_seconds',
    help: 'kube-apiserver request latency until response headers',
    labelNames: ['verb'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly syncLatency = new Histogram({
    name: 'vk_pod_sync_duration_seconds',
    help: 'Duration of one pod reconcile',
    labelNames: ['outcome'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly providerCalls = new Histogram({
    name: 'vk_provider_call_duration_seconds',
    help: 'Provider call latency by operation',
    labelNames: ['operation'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly providerErrors = new Counter({
    name: 'vk_provider_call_errors_total',
    help: 'Failed provider calls by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  readonly kubeletRequests = new Counter({
    name: 'vk_kubelet_api_requests_total',
    help: 'Requests to the kubelet API by method, path bucket and HTTP status (101 for upgrades handed to streaming)',
    labelNames: ['method', 'path', 'code'],
    registers: [this.registry],
  });
  readonly kubeletLatency = new Histogram({
    name: 'vk_kubelet_api_request_duration_seconds',
    help: 'Kubelet API request duration (until the response ends; until the hand-over for upgrades)',
    labelNames: ['method', 'path'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
    registers: [this.registry],
  });
  readonly kubeletAuth = new Counter({
    name: 'vk_kubelet_api_auth_total',
    help: 'Kubelet API authentication/authorization outcomes',
    labelNames: ['result'],
    registers: [this.registry],
  });
  /** Where the queue depth gauge reads from; set once the pod controller exists. */
  queueDepthSource: () => number = () => 0;
  readonly queueDepth: Gauge;

  /**
   * `node` labels every series (many virtual nodes in one process); `processMetrics: false` leaves
   * out the process-wide default metrics, which one of the process's registries carries.
   */
  constructor(options: { node?: string; processMetrics?: boolean } = {}) {
    if (options.node) this.registry.setDefaultLabels({ node: options.node });
    const readDepth = () => this.queueDepthSource();
    this.queueDepth = new Gauge({
      name: 'vk_pod_queue_depth',
      help: 'Pods waiting in the work queue',
      registers: [this.registry],
      collect() {
        this.set(readDepth());
      },
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'vk_' });
  }

  observeClient(client: KubeClient): void {
    client.observe((verb, _path, code, seconds) => {
      this.apiRequests.inc({ verb, code: String(code) });
      this.apiLatency.observe({ verb }, seconds);
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

  podController(): PodControllerMetrics {
    return {
      syncDuration: (seconds, outcome) => this.syncLatency.observe({ outcome }, seconds),
      providerCall: (operation, seconds, ok) => {
        this.providerCalls.observe({ operation }, seconds);
        if (!ok) this.providerErrors.inc({ operation });
      },
    };
  }
}
