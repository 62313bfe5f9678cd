// Fencing for standby replicas: once a process has lost its leader Lease, no call of its own may
// reach the provider, however late a queued sync or a kubelet API request comes in; the next
// holder is about to drive the same backend.
import { AbortedError } from '../errors.ts';
import type { Provider } from '../providers/provider.ts';

/** The provider, whose methods throw AbortedError once `valid()` is false (close() still runs). */
export function fenceProvider(provider: Provider, valid: () => boolean): Provider {
  return new Proxy(provider, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'close') return typeof value === 'function' ? value.bind(target) : value;
      return (...args: unknown[]) => {
        if (!valid()) throw new AbortedError(`provider ${target.name}: ${String(property)} refused, this process no longer holds the node's leader Lease`);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
