// The chaos run's view of the world, refreshed by observe(): the namespace's pods in the API and
// the pods of the backend (the mock's state file, or the sandbox pods on this machine). It also dates the deletions the workload did
// not ask for itself (a Deployment scaled down) and keeps the leaks it saw on the way.
import type { ObjectList, Pod } from '../src/kube/types.ts';
import { leakedPods, type ApiPod, type BackendPod, type Deletion, type Outage } from './checker.ts';
import type { ChaosEnvironment } from './environment.ts';

/** What the API and the backend hold, refreshed by observe(); dates deletions the workload did not ask for. */
export class Observer {
  api: ApiPod[] = [];
  backend: BackendPod[] = [];
  /** Leaks seen so far, by "namespace/name (uid)", as first reported. */
  readonly leaked = new Map<string, string>();
  private readonly env: ChaosEnvironment;
  private readonly namespace: string;
  private readonly deletions: Deletion[];
  private readonly outages: readonly Outage[];
  private readonly dated = new Set<string>();
  private seen = new Map<string, ApiPod>();

  constructor(env: ChaosEnvironment, namespace: string, deletions: Deletion[], outages: readonly Outage[]) {
    this.outages = outages;
    this.env = env;
    this.namespace = namespace;
    this.deletions = deletions;
  }

  async observe(): Promise<void> {
    const list = await this.env.admin.list<ObjectList<Pod>>(`/api/v1/namespaces/${this.namespace}/pods`);
    const now = Date.now();
    this.api = list.items.map((p) => ({
      uid: p.metadata!.uid!,
      key: `${p.metadata!.namespace}/${p.metadata!.name}`,
      phase: p.status?.phase ?? 'Pending',
      deleting: Boolean(p.metadata!.deletionTimestamp),
    }));
    for (const d of this.deletions) this.dated.add(d.uid);
    const current = new Map(this.api.map((p) => [p.uid, p]));
    for (const p of list.items) {
      const uid = p.metadata!.uid!;
      if (p.metadata!.deletionTimestamp && !this.dated.has(uid))
        this.date({ uid, key: `${p.metadata!.namespace}/${p.metadata!.name}`, atMs: now, graceSeconds: p.metadata!.deletionGracePeriodSeconds ?? 30 });
    }
    for (const [uid, p] of this.seen) if (!current.has(uid) && !this.dated.has(uid)) this.date({ uid, key: p.key, atMs: now, graceSeconds: 0 });
    this.seen = current;
    this.backend = this.env.backendPods();
    for (const line of leakedPods(this.backend, current, this.deletions, now, this.outages)) this.noteLeak(line);
  }

  noteLeak(line: string): void {
    // By UID: a sandbox pod whose record is gone while its processes or files remain has no name.
    const id = /\(([^()]*)\):/.exec(line)?.[1] ?? line;
    if (!this.leaked.has(id)) this.leaked.set(id, line);
  }

  private date(d: Deletion): void {
    this.dated.add(d.uid);
    this.deletions.push(d);
  }
}
