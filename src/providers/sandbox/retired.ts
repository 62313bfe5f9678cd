// Logs of pods that finished (Succeeded/Failed) and were released: the core frees a finished
// pod's resources at once but its API object stays, and `kubectl logs` should still work, as it
// does on a kubelet. They are kept under <dataDir>/retired/<uid>/ for a bounded time and number
// (the provider is not told when the API object goes).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Pod } from '../../kube/types.ts';

export interface RetiredPod {
  namespace: string;
  name: string;
  uid: string;
  at: number;
  containers: Record<string, { logAttempt?: number; lastAttempt?: number }>;
  /** The pod with its final status. */
  pod: Pod;
  dir: string;
}

export class RetiredLogs {
  private readonly root: string;
  private readonly maxPods: number;
  private readonly maxAgeMs: number;
  private readonly pods = new Map<string, RetiredPod>();

  constructor(root: string, maxPods = 200, maxAgeMs = 3_600_000) {
    this.root = root;
    this.maxPods = maxPods;
    this.maxAgeMs = maxAgeMs;
    let names: string[] = [];
    try {
      names = readdirSync(root);
    } catch {
      // none yet
    }
    for (const uid of names) {
      const dir = path.join(root, uid);
      try {
        const meta = JSON.parse(readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Omit<RetiredPod, 'dir'>;
        this.remember({ ...meta, dir });
      } catch {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    this.prune();
  }

  /** Where a pod's logs go when it is released. */
  dirFor(uid: string): string {
    return path.join(this.root, uid);
  }

  /** Records a pod whose logs were moved to dirFor(uid). */
  add(pod: Omit<RetiredPod, 'dir'>): void {
    this.remember({ ...pod, dir: this.dirFor(pod.uid) });
    this.prune();
  }

  load(uid: string): void {
    try {
      const meta = JSON.parse(readFileSync(path.join(this.dirFor(uid), 'meta.json'), 'utf8')) as Omit<RetiredPod, 'dir'>;
      this.add(meta);
    } catch {
      // nothing was kept
    }
  }

  get(namespace: string, name: string): RetiredPod | undefined {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (pod && Date.now() - pod.at > this.maxAgeMs) {
      this.drop(pod);
      return undefined;
    }
    return pod;
  }

  all(): RetiredPod[] {
    return [...this.pods.values()].filter((p) => this.get(p.namespace, p.name) === p);
  }

  /** Forgets a retired pod of that name (a new incarnation runs now, or its API object is gone). */
  forget(namespace: string, name: string): void {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (pod) this.drop(pod);
  }

  logFile(pod: RetiredPod, container: string, attempt: number): string {
    return path.join(pod.dir, 'logs', container, `${attempt}.log`);
  }

  private remember(pod: RetiredPod): void {
    const key = `${pod.namespace}/${pod.name}`;
    const old = this.pods.get(key);
    if (old && old.uid !== pod.uid) this.drop(old);
    this.pods.set(key, pod);
  }

  private drop(pod: RetiredPod): void {
    this.pods.delete(`${pod.namespace}/${pod.name}`);
    rmSync(pod.dir, { recursive: true, force: true });
  }

  private prune(): void {
    const now = Date.now();
    const all = [...this.pods.values()].sort((a, b) => a.at - b.at);
    for (const [i, pod] of all.entries()) {
      if (now - pod.at > this.maxAgeMs || all.length - i > this.maxPods) this.drop(pod);
    }
  }
}
