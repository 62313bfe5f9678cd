// Registers (or adopts) the Node, renews its Lease, keeps its status current, and turns it
// NotReady when the provider's health check fails.
import { AbortedError, KubeApiError, errorMessage, isStatus } from '../errors.ts';
import { MERGE_PATCH, type KubeClient, type RequestOptions } from '../kube/client.ts';
import type { Lease, Node, NodeStatus } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { every } from '../util/periodic.ts';
import type { NodeConfig, Provider } from '../providers/provider.ts';
import { microTime } from '../version.ts';
import {
  MANAGED_LABELS_ANNOTATION,
  MANAGED_TAINTS_ANNOTATION,
  desiredLabels,
  labelPatch,
  managedAnnotations,
  desiredStatus,
  desiredTaints,
  mergeTaints,
  newNode,
  statusFingerprint,
  type Health,
  type NodeIdentity,
} from './node-status.ts';

/** Lease renewals and Node status writes: the client's small pool of their own. */
const HEARTBEAT: RequestOptions = { lane: 'heartbeat' };

export type ShutdownMode = 'keep' | 'not-ready' | 'delete';

/** How the node controller paces its work and what it does on shutdown. */
export interface NodeTimings {
  leaseDurationSeconds: number;
  leaseRenewIntervalMs: number;
  /** Full status is written on change and at least this often. */
  statusUpdateIntervalMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  shutdownMode: ShutdownMode;
  /** Standby replicas: false once this process may no longer serve the node; periodic writes stop then. */
  fence?: () => boolean;
}

export interface NodeControllerOptions extends NodeIdentity, NodeTimings {}

const READY: Health = { ready: true, reason: 'KubeletReady', message: 'virtual kubelet is posting ready status' };

export class NodeController {
  private readonly client: KubeClient;
  private readonly provider: Provider;
  private readonly options: NodeControllerOptions;
  private readonly log: Logger;
  private health: Health = READY;
  private lastStatus: NodeStatus | undefined;
  private lastStatusWrite = 0;
  private nodeUid: string | undefined;
  private lease: Lease | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private statusWrite: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Aborts a health check in flight when the controller stops. */
  private readonly stopping = new AbortController();

  constructor(client: KubeClient, provider: Provider, options: NodeControllerOptions, log: Logger) {
    this.client = client;
    this.provider = provider;
    this.options = options;
    this.log = log.child({ component: 'node-controller', node: options.nodeName });
  }

  get nodeName(): string {
    return this.options.nodeName;
  }

  get currentHealth(): Health {
    return this.health;
  }

  private config(): NodeConfig {
    return this.provider.nodeConfig?.() ?? { capacity: {} };
  }

  private get path(): string {
    return `/api/v1/nodes/${encodeURIComponent(this.options.nodeName)}`;
  }

  async start(): Promise<void> {
    await this.registerNode();
    await this.updateStatus(true);
    await this.renewLease();
    this.every(this.options.leaseRenewIntervalMs, () => this.renewLease());
    this.every(this.options.statusUpdateIntervalMs, () => this.updateStatus(true));
    if (this.provider.ping) this.every(this.options.pingIntervalMs, () => this.checkHealth());
    this.log.info({ kubeletVersion: this.options.kubeletVersion }, 'node registered');
  }

  private every(intervalMs: number, task: () => Promise<void>): void {
    const fence = this.options.fence;
    const guarded = fence ? () => (fence() ? task() : Promise.resolve()) : task;
    this.timers.push(every(intervalMs, guarded, (err) => this.log.warn({ err: errorMessage(err) }, 'periodic node task failed')));
  }

  /** Creates the Node, or adopts an existing one and re-applies our labels and taints. */
  private async registerNode(): Promise<void> {
    const config = this.config();
    try {
      const created = await this.client.create<Node>('/api/v1/nodes', newNode(this.options, config));
      this.nodeUid = created.metadata?.uid;
      this.log.info('created Node');
      return;
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
    }
    const existing = await this.client.get<Node>(this.path);
    const managed = (annotation: string): string[] => {
      try {
        const keys: unknown = JSON.parse(existing.metadata?.annotations?.[annotation] ?? '[]');
        return Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [];
      } catch {
        return []; // A hand-edited annotation: treat as none recorded.
      }
    };
    const taints = desiredTaints(this.options, config);
    const labels = desiredLabels(this.options, config);
    const patched = await this.client.patch<Node>(
      this.path,
      {
        metadata: {
          labels: labelPatch(labels, managed(MANAGED_LABELS_ANNOTATION)),
          annotations: managedAnnotations(labels, taints),
          // Optimistic concurrency: the taint merge is computed from this version.
          resourceVersion: existing.metadata?.resourceVersion,
        },
        spec: { taints: mergeTaints(existing.spec?.taints, managed(MANAGED_TAINTS_ANNOTATION), taints) },
      },
      MERGE_PATCH,
    );
    this.nodeUid = patched.metadata?.uid;
    this.lastStatus = existing.status;
    this.log.info('adopted existing Node');
  }

  /** Writes status when it changed, or unconditionally when `force` (the periodic heartbeat). */
  updateStatus(force = false): Promise<void> {
    this.statusWrite = this.statusWrite
      .then(() => this.writeStatus(force))
      .catch((err) => {
        this.log.warn({ err: errorMessage(err) }, 'node status update failed');
      });
    return this.statusWrite;
  }

  private async writeStatus(force: boolean): Promise<void> {
    if (this.stopped && force) return;
    const status = desiredStatus(this.options, this.config(), this.health, this.lastStatus, new Date());
    if (!force && statusFingerprint(status) === statusFingerprint(this.lastStatus)) return;
    try {
      const node = await this.client.patch<Node>(`${this.path}/status`, { status }, MERGE_PATCH, HEARTBEAT);
      this.lastStatus = node.status;
      this.lastStatusWrite = Date.now();
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      this.log.warn('Node was deleted from the API; registering it again');
      await this.registerNode();
      const node = await this.client.patch<Node>(`${this.path}/status`, { status }, MERGE_PATCH, HEARTBEAT);
      this.lastStatus = node.status;
    }
  }

  private async checkHealth(): Promise<void> {
    let next: Health = READY;
    const timeout = AbortSignal.timeout(this.options.pingTimeoutMs);
    try {
      await this.provider.ping!(AbortSignal.any([timeout, this.stopping.signal]));
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      const message = timeout.aborted
        ? `provider ${this.provider.name} did not answer its health check within ${this.options.pingTimeoutMs} ms`
        : `provider ${this.provider.name} is unhealthy: ${errorMessage(err)}`;
      next = { ready: false, reason: 'ProviderUnhealthy', message };
    }
    if (next.ready !== this.health.ready || next.message !== this.health.message) {
      this.log[next.ready ? 'info' : 'warn']({ ready: next.ready, message: next.message }, 'node health changed');
      this.health = next;
      await this.updateStatus(false);
    }
  }

  private leasePath(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${encodeURIComponent(this.options.nodeName)}`;
  }

  private async renewLease(): Promise<void> {
    const now = microTime();
    if (this.lease) {
      try {
        this.lease = await this.client.update<Lease>(
          this.leasePath(),
          {
            ...this.lease,
            spec: { ...this.lease.spec, renewTime: now, holderIdentity: this.options.nodeName, leaseDurationSeconds: this.options.leaseDurationSeconds },
          },
          HEARTBEAT,
        );
        return;
      } catch (err) {
        if (!(err instanceof KubeApiError) || (err.status !== 409 && err.status !== 404)) throw err;
        this.lease = undefined;
      }
    }
    try {
      const current = await this.client.get<Lease>(this.leasePath(), HEARTBEAT);
      this.lease = await this.client.update<Lease>(
        this.leasePath(),
        {
          ...current,
          spec: { ...current.spec, renewTime: now, holderIdentity: this.options.nodeName, leaseDurationSeconds: this.options.leaseDurationSeconds },
        },
        HEARTBEAT,
      );
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      this.lease = await this.client.create<Lease>('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: this.options.nodeName,
          namespace: 'kube-node-lease',
          // The Lease goes away with its Node.
          ownerReferences: this.nodeUid ? [{ apiVersion: 'v1', kind: 'Node', name: this.options.nodeName, uid: this.nodeUid }] : undefined,
        },
        spec: { holderIdentity: this.options.nodeName, leaseDurationSeconds: this.options.leaseDurationSeconds, renewTime: now },
      });
    }
  }

  /** Stops the loops and leaves the Node as the shutdown mode says. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.stopping.abort(new AbortedError('the node controller is stopping'));
    await this.statusWrite;
    try {
      if (this.options.shutdownMode === 'delete') {
        await this.client.delete(this.path);
        this.log.info('deleted Node on shutdown');
      } else if (this.options.shutdownMode === 'not-ready') {
        this.health = { ready: false, reason: 'KubeletStopped', message: 'virtual kubelet was stopped' };
        await this.writeStatus(false);
        this.log.info('marked Node NotReady on shutdown');
      }
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'node shutdown action failed');
    }
  }

  /** Milliseconds since the last successful status write; for health reporting. */
  statusAgeMs(): number {
    return Date.now() - this.lastStatusWrite;
  }
}
