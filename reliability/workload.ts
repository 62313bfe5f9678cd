// The churn a chaos run keeps up while faults strike: Deployments scaled up and down, bare pods
// created and deleted with and without a grace period, same-name re-creations (a new UID under
// an old name) and ConfigMap updates that every pod mounts. All choices come from the run's
// seeded random source. API errors (kube-apiserver is killed now and then) are counted, not fatal.
import type { KubeClient } from '../src/kube/client.ts';
import type { Pod } from '../src/kube/types.ts';
import type { Deletion } from './checker.ts';

export interface WorkloadOptions {
  client: KubeClient;
  namespace: string;
  nodeName: string;
  random: () => number;
  deployments?: number;
  maxReplicas?: number;
  /** What the pods run: by default an image nothing pulls (the mock runs any). */
  image?: string;
  command?: string[];
  /** Called for each deletion the workload asks for, with its grace period. */
  onDelete: (deletion: Deletion) => void;
}

const CONFIG_MAP = 'chaos-config';
const GRACE_CHOICES = [0, 1, 5, 30];

type Op = 'scale' | 'create' | 'delete' | 'recreate' | 'configmap';
const OPS: [Op, number][] = [
  ['scale', 0.25],
  ['create', 0.35],
  ['delete', 0.2],
  ['recreate', 0.1],
  ['configmap', 0.1],
];

export class ChurnWorkload {
  /** Pods asked for: bare creations plus Deployment replica increases. */
  podsRequested = 0;
  readonly ops: Record<Op, number> = { scale: 0, create: 0, delete: 0, recreate: 0, configmap: 0 };
  apiErrors = 0;
  private readonly o: Required<WorkloadOptions>;
  private readonly replicas: number[];
  /** Bare pods by name, with the UID of the incarnation this workload created. */
  private readonly bare = new Map<string, string>();
  private nextPod = 0;
  private configVersion = 0;

  constructor(options: WorkloadOptions) {
    this.o = { deployments: 4, maxReplicas: 25, image: 'registry.invalid/chaos:1', command: [], ...options };
    this.replicas = Array.from({ length: this.o.deployments }, () => 0);
  }

  async setup(): Promise<void> {
    const { client, namespace } = this.o;
    await client.create('/api/v1/namespaces', { metadata: { name: namespace } });
    await client.create(`/api/v1/namespaces/${namespace}/configmaps`, { metadata: { name: CONFIG_MAP }, data: { version: '0' } });
    for (let i = 0; i < this.o.deployments; i++) {
      await client.create(`/apis/apps/v1/namespaces/${namespace}/deployments`, {
        metadata: { name: `churn-${i}` },
        spec: { replicas: 0, selector: { matchLabels: { app: `churn-${i}` } }, template: this.template({ app: `churn-${i}` }) },
      });
    }
  }

  /** One operation, chosen by the seeded random source. */
  async step(): Promise<void> {
    let r = this.o.random();
    let op: Op = 'create';
    for (const [name, weight] of OPS) {
      if (r < weight) {
        op = name;
        break;
      }
      r -= weight;
    }
    if ((op === 'delete' || op === 'recreate') && this.bare.size === 0) op = 'create';
    this.ops[op]++;
    try {
      await this.run(op);
    } catch {
      this.apiErrors++;
    }
  }

  /** Scales every Deployment to 0 and deletes the bare pods: the end of the run. */
  async drain(): Promise<void> {
    for (let i = 0; i < this.replicas.length; i++) await this.scale(i, 0).catch(() => this.apiErrors++);
    for (const name of [...this.bare.keys()]) await this.deleteBare(name, 0).catch(() => this.apiErrors++);
    // Pods whose create answer was lost (kube-apiserver killed mid-request) exist untracked.
    await this.o.client
      .delete(`/api/v1/namespaces/${this.o.namespace}/pods`, { gracePeriodSeconds: 0 }, { query: { labelSelector: 'churn=bare' } })
      .catch(() => this.apiErrors++);
  }

  private async run(op: Op): Promise<void> {
    const { random } = this.o;
    switch (op) {
      case 'scale':
        return this.scale(Math.floor(random() * this.replicas.length), Math.floor(random() * (this.o.maxReplicas + 1)));
      case 'create':
        return this.createBare(`bare-${this.nextPod++}`);
      case 'delete':
        return this.deleteBare(this.pickBare(), GRACE_CHOICES[Math.floor(random() * GRACE_CHOICES.length)]!);
      case 'recreate': {
        const name = this.pickBare();
        await this.deleteBare(name, 0);
        return this.createBare(name);
      }
      case 'configmap':
        await this.o.client.patch(`/api/v1/namespaces/${this.o.namespace}/configmaps/${CONFIG_MAP}`, { data: { version: String(++this.configVersion) } });
    }
  }

  private async scale(index: number, replicas: number): Promise<void> {
    await this.o.client.patch(`/apis/apps/v1/namespaces/${this.o.namespace}/deployments/churn-${index}/scale`, { spec: { replicas } });
    this.podsRequested += Math.max(0, replicas - this.replicas[index]!);
    this.replicas[index] = replicas;
  }

  private async createBare(name: string): Promise<void> {
    const pod = await this.o.client.create<Pod>(`/api/v1/namespaces/${this.o.namespace}/pods`, {
      metadata: { name, labels: { churn: 'bare' } },
      spec: this.template({}).spec,
    });
    this.bare.set(name, pod.metadata!.uid!);
    this.podsRequested++;
  }

  private async deleteBare(name: string, graceSeconds: number): Promise<void> {
    const uid = this.bare.get(name)!;
    this.bare.delete(name);
    const atMs = Date.now();
    try {
      await this.o.client.delete(`/api/v1/namespaces/${this.o.namespace}/pods/${name}`, { gracePeriodSeconds: graceSeconds, preconditions: { uid } });
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
    }
    this.o.onDelete({ uid, key: `${this.o.namespace}/${name}`, atMs, graceSeconds });
  }

  private pickBare(): string {
    const names = [...this.bare.keys()];
    return names[Math.floor(this.o.random() * names.length)]!;
  }

  private template(labels: Record<string, string>) {
    return {
      metadata: { labels },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': this.o.nodeName },
        tolerations: [{ operator: 'Exists' }],
        terminationGracePeriodSeconds: 5,
        containers: [
          {
            name: 'app',
            image: this.o.image,
            ...(this.o.command.length > 0 && { command: this.o.command }),
            volumeMounts: [{ name: 'config', mountPath: '/config' }],
          },
        ],
        volumes: [{ name: 'config', configMap: { name: CONFIG_MAP } }],
      },
    };
  }
}
