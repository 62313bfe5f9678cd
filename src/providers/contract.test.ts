// The contract suite checks itself: a provider that breaks a promise fails with a message that
// names the promise (here: getPod without the UID, a delete of an unknown pod that resolves).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Pod, PodStatus } from '../kube/types.ts';
import { makePod } from '../../test/harness/pods.ts';
import { checkCase, type ContractSubject } from './contract.ts';
import type { CallOptions, Provider, ResolvedPod } from './provider.ts';
import { NotFoundError } from '../errors.ts';

/** A minimal provider that keeps its promises, with switches that break them. */
class MapProvider implements Provider {
  readonly name = 'map';
  readonly pods = new Map<string, Pod>();
  dropUid = false;
  silentDeletes = false;
  async createPod({ pod }: ResolvedPod, { signal }: CallOptions): Promise<void> {
    signal.throwIfAborted();
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (this.pods.get(key)?.metadata?.uid !== pod.metadata?.uid) this.pods.set(key, { ...pod, status: { phase: 'Running' } });
  }
  async updatePod(): Promise<void> {}
  async deletePod(pod: Pod): Promise<void> {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    if (this.pods.get(key)?.metadata?.uid !== pod.metadata?.uid) {
      if (this.silentDeletes) return;
      throw new NotFoundError(`pod ${key} not found`);
    }
    this.pods.delete(key);
  }
  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    const pod = this.pods.get(`${namespace}/${name}`);
    if (!pod || !this.dropUid) return pod;
    return { ...pod, metadata: { ...pod.metadata, uid: undefined } };
  }
  async getPodStatus(namespace: string, name: string): Promise<PodStatus | undefined> {
    return this.pods.get(`${namespace}/${name}`)?.status;
  }
  async listPods(): Promise<Pod[]> {
    return [...this.pods.values()];
  }
}

const subject: ContractSubject = {
  name: 'map',
  make: async () => ({ provider: new MapProvider(), close: async () => {} }),
  pod: (name, uid) => makePod({ name, uid }),
  timeoutMs: 200,
};

test('a provider that keeps the promises passes every case', async () => {
  const provider = new MapProvider();
  for (const name of [
    'getPod, getPodStatus and listPods carry the pod with its UID',
    'unknown pods read as absent and deleting them is NotFound',
    'an aborted createPod rejects and leaves no pod behind',
  ] as const) {
    await checkCase(subject, provider, name);
  }
});

test('getPod without the UID fails with a message naming the promise', async () => {
  const provider = new MapProvider();
  provider.dropUid = true;
  await assert.rejects(checkCase(subject, provider, 'getPod, getPodStatus and listPods carry the pod with its UID'), {
    name: 'ContractViolation',
    message: 'map breaks the Provider contract: getPod must return metadata.uid (got undefined, created uid-get-1)',
  });
});

test('a delete of an unknown pod that resolves fails with a message naming the promise', async () => {
  const provider = new MapProvider();
  provider.silentDeletes = true;
  await assert.rejects(checkCase(subject, provider, 'unknown pods read as absent and deleting them is NotFound'), {
    message: 'map breaks the Provider contract: deletePod of an unknown pod must reject (it resolved)',
  });
});
