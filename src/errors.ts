// One error hierarchy with stable codes, so callers branch on `code`, never on message text.

export type VkErrorCode =
  | 'VK_CONFIG' // bad flag or config file
  | 'VK_KUBE_API' // the API server answered with an error status
  | 'VK_KUBE_CONNECT' // the API server could not be reached
  | 'VK_PROVIDER' // a provider call failed
  | 'VK_NOT_FOUND' // a provider does not know the pod
  | 'VK_UNSUPPORTED' // a provider lacks a capability, or a pod uses an unsupported field
  | 'VK_CLUSTER' // the local control plane failed to build or start
  | 'VK_TIMEOUT';

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

export class NotFoundError extends VkError {
  constructor(message: string) {
    super('VK_NOT_FOUND', message);
  }
}

export class UnsupportedError extends VkError {
  constructor(message: string) {
    super('VK_UNSUPPORTED', message);
  }
}

export function isStatus(err: unknown, status: number): boolean {
  return err instanceof KubeApiError && err.status === status;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
