// One ReferenceWatcher for all the virtual nodes of a process: a ConfigMap, Secret or namespace's
// Services referenced by pods on many nodes is watched once, not once per node (every pod needs
// `default`'s Services, so with a node per watcher 1,000 nodes kept 1,000 such watches, each
// listed again whenever the node's pods came back after it had none). A change re-syncs the
// referencing pods on the node that tracks them.
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import type { ReferenceTracker } from './pod-controller.ts';
import { ReferenceWatcher, type PodReferences, type ReferenceChange } from './references.ts';

/** What the shared watcher needs of a ReferenceWatcher (a fake in unit tests). */
export type ReferenceBackend = Pick<
  ReferenceWatcher,
  'track' | 'untrack' | 'stop' | 'getConfigMap' | 'getSecret' | 'listServices' | 'createServiceAccountToken'
>;

/** Pod keys are made unique per node: a pod re-created under the same name on another node is another entry. */
const SEPARATOR = '\u0000';

export class SharedReferences {
  private readonly backend: ReferenceBackend;
  private readonly nodes = new Map<string, ReferenceChange>();

  constructor(newBackend: (onChange: ReferenceChange) => ReferenceBackend) {
    this.backend = newBackend((kind, namespace, name, keys) => {
      const byNode = new Map<string, string[]>();
      for (const key of keys) {
        const at = key.indexOf(SEPARATOR);
        const node = key.slice(0, at);
        let pods = byNode.get(node);
        if (!pods) byNode.set(node, (pods = []));
        pods.push(key.slice(at + 1));
      }
      for (const [node, pods] of byNode) this.nodes.get(node)?.(kind, namespace, name, pods);
    });
  }

  static create(client: KubeClient, log: Logger): SharedReferences {
    return new SharedReferences((onChange) => new ReferenceWatcher(client, log, onChange));
  }

  /** The references of one node's pods; its stop() forgets them (the watches stay while other nodes need them). */
  forNode(nodeName: string, onChange: ReferenceChange): ReferenceTracker {
    const backend = this.backend;
    const tracked = new Set<string>();
    this.nodes.set(nodeName, onChange);
    const key = (podKey: string) => `${nodeName}${SEPARATOR}${podKey}`;
    return {
      track(podKey: string, refs: PodReferences) {
        tracked.add(podKey);
        backend.track(key(podKey), refs);
      },
      untrack(podKey: string) {
        if (!tracked.delete(podKey)) return;
        backend.untrack(key(podKey));
      },
      stop: async () => {
        for (const podKey of tracked) backend.untrack(key(podKey));
        tracked.clear();
        if (this.nodes.get(nodeName) === onChange) this.nodes.delete(nodeName);
      },
      getConfigMap: (namespace, name) => backend.getConfigMap(namespace, name),
      getSecret: (namespace, name) => backend.getSecret(namespace, name),
      listServices: (namespace) => backend.listServices(namespace),
      createServiceAccountToken: (namespace, serviceAccount, request) => backend.createServiceAccountToken(namespace, serviceAccount, request),
    };
  }

  /** Stops every watch (the process is stopping). */
  stop(): Promise<void> {
    return this.backend.stop();
  }
}
