// Standby replicas: one process at a time serves a virtual node, the holder of a
// coordination.k8s.io Lease of its own (not the Node's heartbeat Lease). The others poll the
// Lease and take it once it has gone unrenewed for its duration, as client-go's leader election
// does. Fencing: the holder gives up (aborts its term) once it has failed to renew for the renew
// deadline, which is shorter than the lease duration, so it has stopped before anyone else may
// take the Lease. Expiry is judged by the local clock from when a renewal was last observed, so
// clock skew between processes does not matter.
import { AbortedError, KubeApiError, errorMessage, isStatus } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Lease } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { microTime } from '../version.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** Who holds the Lease; unique per process. */
  identity: string;
  leaseDurationMs: number;
  /** The holder fences itself when it has not renewed for this long. */
  renewDeadlineMs: number;
  /** How often the holder renews and standbys try to acquire. */
  retryPeriodMs: number;
}

/**
 * A term of leadership: runs until `lost` aborts (or the elector stops), then cleans up.
 * `valid()` is checked synchronously before each provider call: false from the renew deadline
 * on, even in a process that was frozen (SIGSTOP, a VM pause) and whose timers have not run yet.
 */
export interface Term {
  lost: AbortSignal;
  valid: () => boolean;
}
export type LeaderTerm = (term: Term) => Promise<void>;

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly options: LeaderElectionOptions;
  private readonly log: Logger;
  private lease: Lease | undefined;
  /** When the current term's last successful renewal was sent (see `stamp`). */
  private lastRenew: Stamp = stamp();
  /** The last Lease version seen and when: the expiry check's reference. */
  private observed: { version: string; at: Stamp } | undefined;
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;

  constructor(client: KubeClient, options: LeaderElectionOptions, log: Logger) {
    this.client = client;
    this.options = options;
    this.log = log.child({ component: 'leader-election', lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases/${encodeURIComponent(this.options.name)}`;
  }

  /** Campaigns, runs a term whenever this process holds the Lease, and campaigns again after losing it. */
  start(term: LeaderTerm): void {
    this.running ??= this.loop(term);
  }

  /** Ends the current term and releases the Lease so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopping.abort(new AbortedError('leader election is stopping'));
    await this.running;
  }

  private async loop(term: LeaderTerm): Promise<void> {
    const stop = this.stopping.signal;
    while (!stop.aborted) {
      const attempt = stamp();
      if (!(await this.tryAcquireOrRenew())) {
        await sleep(this.options.retryPeriodMs, stop);
        continue;
      }
      this.log.info('acquired the leader Lease: this process serves the node');
      const lost = new AbortController();
      // From when the request was sent: the earliest the new holder's renewal can have been seen.
      this.lastRenew = attempt;
      const signal = AbortSignal.any([lost.signal, stop]);
      const valid = () => !signal.aborted && since(this.lastRenew) < this.options.renewDeadlineMs;
      let failed = false;
      const termDone = term({ lost: signal, valid }).catch((err: unknown) => {
        failed = true;
        this.log.error({ err: errorMessage(err) }, 'leader term failed');
        lost.abort(new AbortedError('the leader term failed'));
      });
      await this.renewUntilLost(lost, stop);
      await termDone;
      if (stop.aborted) {
        await this.release();
        return;
      }
      if (failed) {
        // This process cannot serve the node (its start failed): a standby may, and this one tries again later.
        await this.release();
        await sleep(this.options.leaseDurationMs, stop);
        continue;
      }
      this.log.warn('lost the leader Lease: provider calls stopped, standing by');
      this.lease = undefined;
    }
  }

  /** Renews every retry period; aborts `lost` at the renew deadline, or at once when another holder shows up. */
  private async renewUntilLost(lost: AbortController, stop: AbortSignal): Promise<void> {
    const fence = setInterval(
      () => {
        if (since(this.lastRenew) >= this.options.renewDeadlineMs)
          lost.abort(new AbortedError(`could not renew the leader Lease for ${this.options.renewDeadlineMs} ms`));
      },
      Math.min(250, this.options.retryPeriodMs),
    );
    try {
      while (!lost.signal.aborted && !stop.aborted) {
        await sleep(this.options.retryPeriodMs, AbortSignal.any([lost.signal, stop]));
        if (lost.signal.aborted || stop.aborted) break;
        const started = stamp();
        const left = this.options.renewDeadlineMs - since(this.lastRenew);
        if (left <= 0) {
          // Frozen past the deadline: a renewal now could race a new holder.
          lost.abort(new AbortedError(`could not renew the leader Lease for ${this.options.renewDeadlineMs} ms`));
          break;
        }
        if ((await this.tryAcquireOrRenew(left)) && since(this.lastRenew) < this.options.renewDeadlineMs) this.lastRenew = started;
        else if (this.lease === undefined) lost.abort(new AbortedError('another process holds the leader Lease'));
      }
    } finally {
      clearInterval(fence);
    }
  }

  /** One attempt; true when this process holds the Lease afterwards. Errors count as false. */
  private async tryAcquireOrRenew(timeoutMs = this.options.renewDeadlineMs): Promise<boolean> {
    const now = Date.now();
    const spec = (acquiring: boolean, current?: Lease['spec']) => ({
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.options.leaseDurationMs / 1000),
      renewTime: microTime(new Date(now)),
      acquireTime: acquiring ? microTime(new Date(now)) : current?.acquireTime,
      leaseTransitions: (current?.leaseTransitions ?? 0) + (acquiring && current ? 1 : 0),
    });
    const request = { timeoutMs, signal: this.stopping.signal };
    try {
      // The holder renews from its own copy; a conflict means someone else wrote the Lease.
      if (this.lease) {
        this.lease = await this.client.update<Lease>(this.path, { ...this.lease, spec: spec(false, this.lease.spec) }, request);
        return true;
      }
      let current: Lease;
      try {
        current = await this.client.get<Lease>(this.path, request);
      } catch (err) {
        if (!isStatus(err, 404)) throw err;
        this.lease = await this.client.create<Lease>(
          `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.options.namespace)}/leases`,
          { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.options.name, namespace: this.options.namespace }, spec: spec(true) },
          request,
        );
        return true;
      }
      const version = current.metadata?.resourceVersion ?? '';
      if (this.observed?.version !== version) this.observed = { version, at: stamp() };
      const holder = current.spec?.holderIdentity;
      const durationMs = (current.spec?.leaseDurationSeconds ?? 0) * 1000;
      const ours = holder === this.options.identity;
      // A standby judges expiry by whichever clock says less: it takes over late rather than early.
      if (holder && !ours && leastSince(this.observed.at) < durationMs) return false;
      this.lease = await this.client.update<Lease>(this.path, { ...current, spec: spec(!ours, current.spec) }, request);
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) this.lease = undefined;
      if (!this.stopping.signal.aborted) this.log.debug({ err: errorMessage(err) }, 'leader Lease not acquired or renewed');
      return false;
    }
  }

  /** Gives the Lease up (holder cleared) so that a standby need not wait for it to expire. */
  private async release(): Promise<void> {
    if (!this.lease) return;
    try {
      await this.client.update<Lease>(this.path, {
        ...this.lease,
        spec: { ...this.lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
      });
      this.log.info('released the leader Lease');
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'could not release the leader Lease; a standby takes over when it expires');
    }
    this.lease = undefined;
  }
}

/** A moment by both clocks: the monotonic one ignores wall-clock steps, the wall clock counts a suspended machine. */
interface Stamp {
  monotonic: number;
  wall: number;
}

function stamp(): Stamp {
  return { monotonic: performance.now(), wall: Date.now() };
}

/** Time since `start` by whichever clock says more: the holder fences itself early rather than late. */
function since(start: Stamp): number {
  return Math.max(performance.now() - start.monotonic, Date.now() - start.wall);
}

function leastSince(start: Stamp): number {
  return Math.min(performance.now() - start.monotonic, Date.now() - start.wall);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
