// What a failed call to the target's API means for the core: unreachable (retry, node NotReady),
// refused (the pod fails with the reason), or busy (retry later).
import { KubeApiError, PodRejectedError, ProviderUnavailableError, TryLaterError, VkError, errorMessage, hasCode } from '../../errors.ts';

export function isConnectFailure(err: unknown): boolean {
  return hasCode(err, 'VK_KUBE_CONNECT') || hasCode(err, 'VK_TIMEOUT') || (err instanceof KubeApiError && (err.status >= 500 || err.status === 429));
}

export function isStatus(err: unknown, status: number): err is KubeApiError {
  return err instanceof KubeApiError && err.status === status;
}

/** A failure of a write for `what` (e.g. "create pod ns/name") as the error class the core acts on. */
export function classify(err: unknown, origin: string, what: string): unknown {
  if (hasCode(err, 'VK_ABORTED') || (err as Error)?.name === 'AbortError') return err;
  if (err instanceof KubeApiError) {
    if (err.status === 429) return new TryLaterError(`target cluster ${origin} throttles us (${what}): ${err.message}`, 1000, { cause: err });
    if (err.status >= 500) return new ProviderUnavailableError(`target cluster ${origin} failed (${what}): ${err.message}`, { cause: err });
    if (err.status === 401)
      return new ProviderUnavailableError(`target cluster ${origin} rejected our credentials (${what}): 401 Unauthorized`, { cause: err });
    if (err.status === 403) {
      // Admission's transient refusals: a namespace's ServiceAccount not created yet, a full quota.
      if (/error looking up service account|exceeded quota/i.test(err.message))
        return new TryLaterError(`target cluster ${origin} refused ${what} for now: ${err.message}`, 1000, { cause: err });
      return new PodRejectedError('TargetForbidden', `target cluster ${origin} forbids ${what}: ${err.message}`, { cause: err });
    }
    if (err.status === 422 || err.status === 400)
      return new PodRejectedError('TargetRejected', `target cluster ${origin} rejected ${what}: ${err.message}`, { cause: err });
    return err;
  }
  if (isConnectFailure(err)) return new ProviderUnavailableError(`target cluster ${origin} is unreachable (${what}): ${errorMessage(err)}`, { cause: err });
  return err instanceof VkError ? err : new VkError('VK_PROVIDER', `${what}: ${errorMessage(err)}`, { cause: err });
}
