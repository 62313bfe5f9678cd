// One error hierarchy with stable codes. Callers branch on `code` (or the class, which fixes
// the code), never on message text; `httpStatus` is the one mapping from code to an HTTP
// answer, used by the kubelet API and the provider SDK alike.

export type VkErrorCode =
  | 'VK_CONFIG' // bad flag or config file
  | 'VK_KUBE_API' // the API server answered with an error status
  | 'VK_KUBE_CONNECT' // the API server could not be reached
  | 'VK_CLUSTER' // the local control plane failed to build or start
  | 'VK_NOT_FOUND' // a provider does not know the pod or container
  | 'VK_UNSUPPORTED' // a provider lacks a capability (the operation cannot be served here)
  | 'VK_POD_REJECTED' // the pod's spec cannot run on this provider; the core fails the pod, no retry
  | 'VK_POD_CONFIG' // the pod cannot start yet: a missing ConfigMap/Secret/key; retried when it appears
  | 'VK_PROVIDER_UNAVAILABLE' // the provider's backend cannot be reached; retried with backoff
  | 'VK_TRY_LATER' // the backend is busy or throttling; retried after `retryAfterMs`
  | 'VK_CONFLICT' // the request conflicts with the current state (e.g. another incarnation of the pod)
  | 'VK_CONTAINER_STATE' // the container is not in a state that allows the request (not running, no previous run)
  | 'VK_INVALID_REQUEST' // a request's parameters are malformed
  | 'VK_IMAGE_PULL' // an image could not be pulled or unpacked
  | 'VK_IMAGE_PUSH' // an image could not be pushed to a registry (`npm run image -- --push`)
  | 'VK_PROTOCOL' // a peer broke a wire protocol (remote provider protocol, SPDY, WebSocket channels)
  | 'VK_PROVIDER' // a provider's backend failed in a way none of the codes above names
  | 'VK_TIMEOUT' // a deadline passed
  | 'VK_ABORTED'; // the caller aborted (shutdown, client gone); not a failure of the operation

export class VkError extends Error {
  readonly code: VkErrorCode;
  constructor(code: VkErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class ConfigError extends VkError {
  constructor(message: string) {
    super('VK_CONFIG', message);
  }
}

export class KubeApiError extends VkError {
  readonly status: number;
  readonly reason: string;
  readonly verb: string;
  readonly path: string;
  constructor(verb: string, path: string, status: number, reason: string, message: string) {
    super('VK_KUBE_API', `${verb} ${path}: ${status} ${reason}: ${message}`);
    this.status = status;
    this.reason = reason;
    this.verb = verb;
    this.path = path;
  }
}

/** The provider does not know the pod (or the container); deleting an unknown pod throws this. */
export class NotFoundError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_NOT_FOUND', message, options);
  }
}

/** The provider does not implement the operation (a capability it does not declare). */
export class UnsupportedError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_UNSUPPORTED', message, options);
  }
}

/**
 * The pod as written can never run on this provider (an image platform it lacks, a field or
 * volume type it cannot map). The core ends the pod `Failed` with `reason` and a Warning Event,
 * as the kubelet does for pods it rejects at admission, and does not retry.
 */
export class PodRejectedError extends VkError {
  /** A CamelCase reason for the pod status, e.g. 'UnsupportedPlatform'. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super('VK_POD_REJECTED', message, options);
    this.reason = reason;
  }
}

/**
 * The provider's backend cannot be reached. The core retries with backoff, shows
 * `ProviderUnavailable` on pods that never ran, and the node's `ping` turns it NotReady.
 */
export class ProviderUnavailableError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_PROVIDER_UNAVAILABLE', message, options);
  }
}

/** The backend asks to be called again later (throttling, quota, capacity); the core retries after `retryAfterMs`. */
export class TryLaterError extends VkError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryAfterMs?: number, options?: ErrorOptions) {
    super('VK_TRY_LATER', message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The container exists but is not in a state that allows the request: not running, waiting, no previous run. */
export class ContainerStateError extends VkError {
  constructor(message: string) {
    super('VK_CONTAINER_STATE', message);
  }

  static notRunning(pod: string, container: string): ContainerStateError {
    return new ContainerStateError(`container "${container}" in pod "${pod}" is not running`);
  }

  static waiting(pod: string, container: string, reason = 'ContainerCreating'): ContainerStateError {
    return new ContainerStateError(`container "${container}" in pod "${pod}" is waiting to start: ${reason}`);
  }

  static noPrevious(pod: string, container: string): ContainerStateError {
    return new ContainerStateError(`previous terminated container "${container}" in pod "${pod}" not found`);
  }
}

/** A request's parameters are malformed (bad query value, missing command). */
export class InvalidRequestError extends VkError {
  constructor(message: string) {
    super('VK_INVALID_REQUEST', message);
  }
}

/** A peer broke a wire protocol: an answer that does not parse, a frame out of order, a version we do not speak. */
export class ProtocolError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_PROTOCOL', message, options);
  }
}

export class TimeoutError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_TIMEOUT', message, options);
  }
}

/** The caller aborted the operation (shutdown, client went away). */
export class AbortedError extends VkError {
  constructor(message = 'aborted', options?: ErrorOptions) {
    super('VK_ABORTED', message, options);
  }
}

/** Throws an AbortedError naming `what` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what}: aborted`, { cause: signal.reason });
}

/** True for a VkError with the code, an AbortSignal's DOMException AbortError counting as VK_ABORTED. */
export function hasCode(err: unknown, code: VkErrorCode): boolean {
  if (err instanceof VkError) return err.code === code;
  return code === 'VK_ABORTED' && err instanceof Error && err.name === 'AbortError';
}

/** The HTTP status for an error, by code: the kubelet API and the provider SDK answer with it. */
export function httpStatus(err: unknown): number {
  if (!(err instanceof VkError)) return hasCode(err, 'VK_ABORTED') ? 499 : 500;
  switch (err.code) {
    case 'VK_NOT_FOUND':
      return 404;
    case 'VK_CONFIG':
    case 'VK_INVALID_REQUEST':
    case 'VK_CONTAINER_STATE': // the kubelet answers 400 for "container is not running/waiting to start"
    case 'VK_POD_REJECTED':
    case 'VK_POD_CONFIG':
      return 400;
    case 'VK_CONFLICT':
      return 409;
    case 'VK_UNSUPPORTED':
      return 501;
    case 'VK_KUBE_CONNECT':
    case 'VK_PROVIDER_UNAVAILABLE':
    case 'VK_TRY_LATER':
      return 503;
    case 'VK_TIMEOUT':
      return 504;
    case 'VK_ABORTED':
      return 499; // nginx's "client closed request": nobody is left to read it
    case 'VK_KUBE_API':
      return err instanceof KubeApiError && err.status >= 400 ? err.status : 502;
    case 'VK_IMAGE_PULL':
    case 'VK_IMAGE_PUSH':
    case 'VK_PROTOCOL':
      return 502;
    case 'VK_CLUSTER':
    case 'VK_PROVIDER':
      return 500;
  }
}

/** The code an HTTP status maps back to on the client side of the provider protocol. */
export function codeForHttpStatus(status: number): VkErrorCode {
  switch (status) {
    case 400:
      return 'VK_INVALID_REQUEST';
    case 404:
      return 'VK_NOT_FOUND';
    case 409:
      return 'VK_CONFLICT';
    case 501:
      return 'VK_UNSUPPORTED';
    case 503:
      return 'VK_PROVIDER_UNAVAILABLE';
    case 504:
      return 'VK_TIMEOUT';
    default:
      return 'VK_PROVIDER';
  }
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof KubeApiError && err.status === status;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
