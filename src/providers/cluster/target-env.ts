// The variables the target's kubelet gives every container by itself: those of its `kubernetes`
// Service (target pods have enableServiceLinks off, so nothing else). A resolved variable of the
// same name and value need not travel in the target pod's spec: the container sees the same
// environment, and each target pod is ~1 KB smaller (8 variables and their managedFields), which
// the target's API server encodes, stores and sends to every watcher with each pod version.
import type { KubeClient } from '../../kube/client.ts';
import type { Service } from '../../kube/types.ts';
import { serviceEnvFor } from '../../resolve/service-links.ts';

/** The target kubelet's own service variables; empty when its `kubernetes` Service cannot be read (then every variable travels). */
export async function targetImplicitEnv(client: KubeClient, signal: AbortSignal): Promise<Map<string, string>> {
  const service = await client.get<Service>('/api/v1/namespaces/default/services/kubernetes', { signal });
  return serviceEnvFor('', false, [], [service]);
}
