// The ConfigMaps and Secrets a target pod needs. A new pod's are written before it, so the
// target's kubelet finds them when it sees the pod, then given an ownerReference to it once it
// exists (the target's garbage collector deletes them with the pod). Writes are create-or-replace:
// an adopted pod whose objects a crash left half-made gets them whole.
import { MERGE_PATCH, type KubeClient } from '../../kube/client.ts';
import type { ConfigMap, Pod, Secret } from '../../kube/types.ts';
import { LABEL_UID } from './names.ts';
import { isStatus } from './target-errors.ts';

type Dependent = { kind: 'configmaps'; object: ConfigMap } | { kind: 'secrets'; object: Secret };

export function dependents(objects: { configMaps: ConfigMap[]; secrets: Secret[] }): Dependent[] {
  return [
    ...objects.configMaps.map((object) => ({ kind: 'configmaps' as const, object })),
    ...objects.secrets.map((object) => ({ kind: 'secrets' as const, object })),
  ];
}

function ownerReferences(owner: Pod) {
  return [{ apiVersion: 'v1', kind: 'Pod', name: owner.metadata!.name!, uid: owner.metadata!.uid! }];
}

/**
 * Creates or replaces each object, owned by `owner` (none yet when the pod is still to be created:
 * ownDependents adds it); an object of that name that is not ours is an error.
 */
export async function writeDependents(client: KubeClient, owner: Pod | undefined, items: Dependent[], signal: AbortSignal): Promise<void> {
  await Promise.all(
    items.map(async ({ kind, object }) => {
      const namespace = object.metadata!.namespace!;
      const name = object.metadata!.name!;
      const metadata = owner ? { ...object.metadata, ownerReferences: ownerReferences(owner) } : object.metadata;
      const body = { apiVersion: 'v1', kind: kind === 'configmaps' ? 'ConfigMap' : 'Secret', ...object, metadata };
      const collection = `/api/v1/namespaces/${namespace}/${kind}`;
      try {
        await client.create(collection, body, { signal, discardResponse: true });
        return;
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
      const existing = await client.get<ConfigMap | Secret>(`${collection}/${name}`, { signal });
      if (existing.metadata?.labels?.[LABEL_UID] !== object.metadata?.labels?.[LABEL_UID])
        throw new Error(`${kind} ${namespace}/${name} exists in the target cluster and was not made for this pod`);
      await client.update(
        `${collection}/${name}`,
        { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
        { signal, discardResponse: true },
      );
    }),
  );
}

/** Makes the pod the owner of objects written before it existed: the target's garbage collector then removes them with it. */
export async function ownDependents(client: KubeClient, owner: Pod, items: Dependent[], signal: AbortSignal): Promise<void> {
  const patch = { metadata: { ownerReferences: ownerReferences(owner) } };
  await Promise.all(
    items.map(({ kind, object }) =>
      client.patch(`/api/v1/namespaces/${object.metadata!.namespace}/${kind}/${object.metadata!.name}`, patch, MERGE_PATCH, { signal, discardResponse: true }),
    ),
  );
}

/** Removes objects written for a pod that was then not created (best effort: they carry our labels). */
export async function removeDependents(client: KubeClient, items: Dependent[]): Promise<void> {
  await Promise.all(
    items.map(({ kind, object }) =>
      client
        .delete(`/api/v1/namespaces/${object.metadata!.namespace}/${kind}/${object.metadata!.name}`, undefined, { discardResponse: true })
        .catch(() => undefined),
    ),
  );
}
