// Writes pods' status and completes their deletion in the API, skipping writes that would
// change nothing: the API's own copy, or one we wrote moments ago that the watch has not
// delivered yet, already says it.
import { isStatus } from '../errors.ts';
import { MERGE_PATCH, type KubeClient } from '../kube/client.ts';
import type { Pod, PodStatus } from '../kube/types.ts';
import type { PodRecord } from './pod-state.ts';
import { completeStatus, statusPatch } from './pod-status.ts';

/** How long a written status is trusted over a lagging cache; after that the cache wins again. */
export const WRITTEN_STATUS_TTL_MS = 30_000;

/** The API calls the status writer makes (a KubeClient, or a fake in unit tests). */
export type StatusClient = Pick<KubeClient, 'patch' | 'delete'>;

export class StatusWriter {
  private readonly client: StatusClient;
  private readonly hostIP: string;

  constructor(client: StatusClient, hostIP: string) {
    this.client = client;
    this.hostIP = hostIP;
  }

  /** Patches the API pod's status to the provider's (completed the kubelet's way) when it differs. */
  async write(apiPod: Pod, providerStatus: PodStatus, record: PodRecord): Promise<void> {
    const desired = completeStatus(apiPod, providerStatus, this.hostIP, new Date());
    const patch = statusPatch(apiPod.status, desired);
    if (!patch) return;
    // Under load the watch lags our own writes; a status we wrote moments ago is not written again.
    const written = record.written;
    if (written && Date.now() - written.at < WRITTEN_STATUS_TTL_MS && !statusPatch(written.status, desired)) return;
    const path = `/api/v1/namespaces/${apiPod.metadata?.namespace}/pods/${encodeURIComponent(apiPod.metadata?.name ?? '')}/status`;
    try {
      // The UID in the patch is a precondition: never write onto a newer pod of the same name.
      const updated = await this.client.patch<Pick<Pod, 'metadata'>>(path, { metadata: { uid: record.uid }, status: patch }, MERGE_PATCH, {
        metadataOnly: true,
      });
      const resourceVersion = updated?.metadata?.resourceVersion;
      // An unchanged resourceVersion: the server already held this status, so the cache is not behind.
      if (resourceVersion !== apiPod.metadata?.resourceVersion) record.written = { status: desired, at: Date.now(), resourceVersion };
    } catch (err) {
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      throw err;
    }
  }

  /** Whether the status would change: what the poll path asks before it enqueues a pod. */
  differs(apiPod: Pod, providerStatus: PodStatus): boolean {
    return statusPatch(apiPod.status, completeStatus(apiPod, providerStatus, this.hostIP, new Date())) !== undefined;
  }

  /** The watch delivered a version of the pod: a write it contains need not be remembered any more. */
  observed(pod: Pod, record: PodRecord | undefined): void {
    if (record?.written && record.written.resourceVersion === pod.metadata?.resourceVersion) record.written = undefined;
  }

  /** Forgets writes older than the TTL, so a cache that missed them wins again. */
  expire(record: PodRecord, now = Date.now()): void {
    if (record.written && record.written.at < now - WRITTEN_STATUS_TTL_MS) record.written = undefined;
  }

  /** Completes graceful deletion: the provider has stopped the pod, so the API object goes now (once). */
  async remove(pod: Pod, record: PodRecord): Promise<void> {
    if (record.removed) return;
    const path = `/api/v1/namespaces/${pod.metadata?.namespace}/pods/${encodeURIComponent(pod.metadata?.name ?? '')}`;
    try {
      await this.client.delete(
        path,
        { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: record.uid } },
        { discardResponse: true },
      );
    } catch (err) {
      if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
    }
    record.removed = true;
  }
}
