// Watches only the ConfigMaps, Secrets and Services that pods on this node reference (the
// upstream Go project watches them cluster-wide, a cost at scale). ConfigMaps and Secrets get
// one name-scoped watch each, as the kubelet's Watch strategy does; Services one watch per
// namespace with pods, plus `default` for the kubernetes service. Reference counts stop
// watches nobody needs.
import { isStatus } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import { Informer, stripManagedFields } from '../kube/informer.ts';
import type { ConfigMap, KubeObject, Secret, Service } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import { SingleFlight } from '../util/single-flight.ts';
import type { ObjectSource } from '../resolve/resolve-pod.ts';

export type ReferenceKind = 'configmaps' | 'secrets';

export interface PodReferences {
  namespace: string;
  configMaps: Set<string>;
  secrets: Set<string>;
  /** Whether the pod needs its namespace's Services (service links). */
  services: boolean;
}

interface Watched<T extends KubeObject> {
  informer: Informer<T>;
  pods: Set<string>;
}

export type ReferenceChange = (kind: ReferenceKind | 'services', namespace: string, name: string, pods: string[]) => void;

export class ReferenceWatcher implements ObjectSource {
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly onChange: ReferenceChange;
  private readonly objects = new Map<string, Watched<ConfigMap | Secret>>();
  private readonly services = new Map<string, Watched<Service>>();
  private readonly byPod = new Map<string, string[]>();
  /** Reads made until a watch has synced, one per object or namespace at a time: the first pods of a burst would each send their own. */
  private readonly objectReads = new SingleFlight<KubeObject | undefined>();
  private readonly serviceLists = new SingleFlight<{ items: Service[] }>();

  constructor(client: KubeClient, log: Logger, onChange: ReferenceChange) {
    this.client = client;
    this.log = log.child({ component: 'reference-watcher' });
    this.onChange = onChange;
  }

  /** Records what a pod references now; starts watches for new references and stops unused ones. */
  track(podKey: string, refs: PodReferences): void {
    const keys: string[] = [];
    for (const name of refs.configMaps) keys.push(`configmaps/${refs.namespace}/${name}`);
    for (const name of refs.secrets) keys.push(`secrets/${refs.namespace}/${name}`);
    if (refs.services) keys.push(`services/${refs.namespace}`);
    keys.push('services/default');
    const before = this.byPod.get(podKey) ?? [];
    for (const key of keys) if (!before.includes(key)) this.acquire(key, podKey);
    for (const key of before) if (!keys.includes(key)) this.release(key, podKey);
    this.byPod.set(podKey, keys);
  }

  untrack(podKey: string): void {
    for (const key of this.byPod.get(podKey) ?? []) this.release(key, podKey);
    this.byPod.delete(podKey);
  }

  private acquire(key: string, podKey: string): void {
    const [kind, namespace, name] = key.split('/') as [ReferenceKind | 'services', string, string | undefined];
    const table = kind === 'services' ? this.services : this.objects;
    let watched = table.get(key) as Watched<KubeObject> | undefined;
    if (!watched) {
      const informer = new Informer<KubeObject>({
        client: this.client,
        path: `/api/v1/namespaces/${namespace}/${kind}`,
        fieldSelector: name ? `metadata.name=${name}` : undefined,
        log: this.log,
        transform: stripManagedFields,
      });
      const entry: Watched<KubeObject> = { informer, pods: new Set() };
      const notify = (obj: KubeObject) => this.onChange(kind, namespace, obj.metadata?.name ?? '', [...entry.pods]);
      // The initial list is not a change: pods resolved against a direct GET until then.
      informer.addHandlers({ onAdd: (obj) => informer.hasSynced() && notify(obj), onUpdate: (_old, obj) => notify(obj), onDelete: notify });
      informer.start();
      watched = entry;
      table.set(key, watched as Watched<never>);
    }
    watched.pods.add(podKey);
  }

  private release(key: string, podKey: string): void {
    const table = key.startsWith('services/') ? this.services : this.objects;
    const watched = table.get(key);
    if (!watched) return;
    watched.pods.delete(podKey);
    if (watched.pods.size === 0) {
      table.delete(key);
      void watched.informer.stop();
    }
  }

  /** Number of watches open; for metrics and tests. */
  watchCount(): number {
    return this.objects.size + this.services.size;
  }

  private async read<T extends KubeObject>(kind: ReferenceKind, namespace: string, name: string): Promise<T | undefined> {
    const watched = this.objects.get(`${kind}/${namespace}/${name}`);
    if (watched?.informer.hasSynced()) return watched.informer.get(`${namespace}/${name}`) as T | undefined;
    return this.objectReads.run(`${kind}/${namespace}/${name}`, async () => {
      try {
        return await this.client.get<T>(`/api/v1/namespaces/${namespace}/${kind}/${encodeURIComponent(name)}`);
      } catch (err) {
        if (isStatus(err, 404)) return undefined;
        throw err;
      }
    }) as Promise<T | undefined>;
  }

  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined> {
    return this.read<ConfigMap>('configmaps', namespace, name);
  }

  getSecret(namespace: string, name: string): Promise<Secret | undefined> {
    return this.read<Secret>('secrets', namespace, name);
  }

  async listServices(namespace: string): Promise<Service[]> {
    const watched = this.services.get(`services/${namespace}`);
    if (watched?.informer.hasSynced()) return watched.informer.list() as Service[];
    const list = await this.serviceLists.run(namespace, () => this.client.list<{ items: Service[] }>(`/api/v1/namespaces/${namespace}/services`));
    return list.items;
  }

  async createServiceAccountToken(
    namespace: string,
    serviceAccount: string,
    request: { audience?: string; expirationSeconds: number; podName: string; podUid: string },
  ): Promise<{ token: string; expirationTimestamp: string }> {
    const result = await this.client.create<{ status: { token: string; expirationTimestamp: string } }>(
      `/api/v1/namespaces/${namespace}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: request.audience ? [request.audience] : [],
          expirationSeconds: request.expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: request.podName, uid: request.podUid },
        },
      },
    );
    return result.status;
  }

  async stop(): Promise<void> {
    const all = [...this.objects.values(), ...this.services.values()];
    this.objects.clear();
    this.services.clear();
    await Promise.all(all.map((w) => w.informer.stop()));
  }
}
