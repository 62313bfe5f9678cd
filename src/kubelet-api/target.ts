// Which pod and container a kubelet API request names, checked against the provider before any
// work (or any upgrade) happens, with the 404 messages the kubelet gives.
import type { Container, Pod } from '../kube/types.ts';
import type { Provider } from '../providers/provider.ts';
import { InvalidRequestError, NotFoundError } from '../errors.ts';

export interface Target {
  pod: Pod;
  /** Set when a container name was given. */
  container?: Container;
}

function allContainers(pod: Pod): Container[] {
  const spec = pod.spec;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? []), ...((spec?.ephemeralContainers ?? []) as Container[])];
}

/**
 * The pod (and container) a request addresses. Throws NotFoundError (404) when the provider does not
 * run the pod, runs another incarnation than `uid`, or the pod has no such container; a container
 * name that is omitted defaults to the pod's only container (an error when it has several).
 */
export async function findTarget(
  provider: Provider,
  namespace: string,
  podName: string,
  options: { container?: string; uid?: string; requireContainer?: boolean; signal: AbortSignal },
): Promise<Target> {
  const pod = await provider.getPod(namespace, podName, { signal: options.signal });
  if (!pod) throw new NotFoundError(`pod "${podName}" does not exist in namespace "${namespace}" on this node`);
  if (options.uid && pod.metadata?.uid !== options.uid)
    throw new NotFoundError(
      `pod "${podName}" with UID ${options.uid} does not exist in namespace "${namespace}" on this node (it runs UID ${pod.metadata?.uid ?? 'unknown'})`,
    );
  if (options.container === undefined || options.container === '') {
    if (!options.requireContainer) return { pod };
    const containers = pod.spec?.containers ?? [];
    if (containers.length === 1) return { pod, container: containers[0] };
    throw new InvalidRequestError(`a container name must be specified for pod "${podName}", choose one of: [${containers.map((c) => c.name).join(' ')}]`);
  }
  const container = allContainers(pod).find((c) => c.name === options.container);
  if (!container) throw new NotFoundError(`container "${options.container}" not found in pod "${podName}" in namespace "${namespace}"`);
  return { pod, container };
}
