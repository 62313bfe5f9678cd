// Where the pod controller reads the API's pods bound to its node. In production an Informer
// (list + resumable watch with a field selector); in unit tests an in-memory fake.
import type { InformerHandlers } from '../kube/informer.ts';
import type { Pod } from '../kube/types.ts';

export interface PodSource {
  addHandlers(handlers: InformerHandlers<Pod>): void;
  start(): void;
  /** Resolves once the first full list is in the cache. */
  waitForSync(signal?: AbortSignal): Promise<void>;
  hasSynced(): boolean;
  /** The cached pod by `namespace/name`. */
  get(key: string): Pod | undefined;
  list(): Pod[];
  stop(): Promise<void>;
}
