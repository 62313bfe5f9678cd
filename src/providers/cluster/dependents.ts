// The ConfigMaps and Secrets a target pod needs, written after the pod exists so each carries an
// ownerReference to it (the target's garbage collector deletes them with the pod). Writes are
// create-or-replace: an adopted pod whose objects a crash left half-made gets them whole.
import type { KubeClient } from '../../kube/client.ts';
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

/** Creates or replaces each object, owned by `owner`; an object of that name that is not ours is an error. */
export async function writeDependents(client: KubeClient, owner: Pod, items: Dependent[], signal: AbortSignal): Promise<void> {
  const ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: owner.metadata!.name!, uid: owner.metadata!.uid! }];
  await Promise.all(
    items.map(async ({ kind, object }) => {
      const namespace = object.metadata!.namespace!;
      const name = object.metadata!.name!;
      const body = { apiVersion: 'v1', kind: kind === 'configmaps' ? 'ConfigMap' : 'Secret', ...object, metadata: { ...object.metadata, ownerReferences } };
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
