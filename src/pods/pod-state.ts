// What the pod controller remembers about each pod incarnation (UID), in one record, so a pod
// that goes away takes all of it along (upstream's knownPod plays this part).
import type { PodStatus } from '../kube/types.ts';

export interface WrittenStatus {
  status: PodStatus;
  /** When it was written (epoch ms). */
  at: number;
  /** The pod's resourceVersion after the write; the watch delivering it ends the need to remember. */
  resourceVersion: string | undefined;
}

export interface PodRecord {
  readonly uid: string;
  /** When this controller first synced it (performance.now() ms): the start of kubelet_pod_start_duration_seconds. */
  readonly firstSeen: number;
  /** Released in the provider after it finished: never created again. */
  released: boolean;
  /** Its first Running status was announced with a Started event. */
  started: boolean;
  /** We deleted its API object: syncs before the watch shows it gone send no second DELETE. */
  removed: boolean;
  /** Its ConfigMaps, Secrets or Services changed since its volumes were last resolved. */
  referencesChanged: boolean;
  /** Digest of the volume contents and pull secrets the provider last received from this process. */
  delivered?: string;
  /** When its projected tokens must be resolved again (epoch ms). */
  refreshAt?: number;
  /** The status last written, until the watch delivers that write: skips rewrites while the cache lags. */
  written?: WrittenStatus;
  /** The provider asked not to be called to create the pod before this time (epoch ms). */
  createNotBefore?: number;
  /** Fingerprint of a spec update the provider rejected: not offered again until the spec changes. */
  rejectedUpdate?: string;
}

export class PodRecords {
  private readonly records = new Map<string, PodRecord>();

  /** The record of a UID, made on first use. */
  get(uid: string): PodRecord {
    let record = this.records.get(uid);
    if (!record) {
      record = { uid, firstSeen: performance.now(), released: false, started: false, removed: false, referencesChanged: false };
      this.records.set(uid, record);
    }
    return record;
  }

  peek(uid: string): PodRecord | undefined {
    return this.records.get(uid);
  }

  /** Forgets the incarnation (its API object is gone). */
  delete(uid: string): void {
    this.records.delete(uid);
  }

  values(): IterableIterator<PodRecord> {
    return this.records.values();
  }

  get size(): number {
    return this.records.size;
  }
}
