// The provider as the kubelet API calls it: the calls a request makes (pod lookup, logs, exec,
// attach, port-forward, stats) are counted and timed like the pod controller's
// (kubelet_runtime_operations_*, vk_provider_call_*) and, when tracing, each gets a span, the
// child of the request's. exec, attach and port-forward calls last as long as their sessions.
import type { Provider } from '../providers/provider.ts';
import { tracer } from '../tracing/tracer.ts';

export type ProviderCallObserver = (operation: string, seconds: number, ok: boolean) => void;

const INSTRUMENTED = new Set(['getPod', 'getContainerLogs', 'runInContainer', 'attachToContainer', 'portForward', 'getStats']);

/** The provider itself when there is nothing to record (no metrics, tracing off). */
export function instrumentedProvider(provider: Provider, observe: ProviderCallObserver | undefined): Provider {
  if (!observe && !tracer().enabled) return provider;
  const wrappers = new Map<string, unknown>();
  return new Proxy(provider, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      const name = String(prop);
      let wrapper = wrappers.get(name);
      if (!wrapper) {
        const method = value as (...args: unknown[]) => Promise<unknown>;
        wrapper = INSTRUMENTED.has(name)
          ? (...args: unknown[]) => traced(name, () => timed(name, () => method.apply(target, args), observe))
          : method.bind(target);
        wrappers.set(name, wrapper);
      }
      return wrapper;
    },
  });
}

function traced<T>(operation: string, call: () => Promise<T>): Promise<T> {
  const tracing = tracer();
  return tracing.enabled ? tracing.inSpan(`provider ${operation}`, {}, call, { kind: 'client' }) : call();
}

async function timed<T>(operation: string, call: () => Promise<T>, observe: ProviderCallObserver | undefined): Promise<T> {
  const started = performance.now();
  try {
    const result = await call();
    observe?.(operation, (performance.now() - started) / 1000, true);
    return result;
  } catch (err) {
    observe?.(operation, (performance.now() - started) / 1000, false);
    throw err;
  }
}
