// AWS SDK errors as the provider contract's errors. The SDK has already retried what it deems
// transient (maxAttempts, with backoff); what is left is classified here: throttling and quota →
// TryLaterError (retried after the backoff), 5xx and network failures → ProviderUnavailableError,
// aborts → AbortedError, credentials and permissions → a VK_PROVIDER error saying so.
import { AbortedError, PodRejectedError, ProviderUnavailableError, TryLaterError, VkError } from '../../errors.ts';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
]);
const AUTH = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'MissingAuthenticationTokenException',
  'InvalidClientTokenId',
  'CredentialsProviderError',
]);
const UNAVAILABLE = new Set(['ServerException', 'ServiceUnavailableException', 'InternalFailure', 'InternalServerError', 'TimeoutError']);

interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  code?: string;
}

export function isAuthError(err: unknown): boolean {
  return AUTH.has((err as SdkError | undefined)?.name ?? '');
}

export function awsErrorName(err: unknown): string {
  return (err as SdkError | undefined)?.name ?? 'Error';
}

/**
 * The contract's error for a failed AWS call; `what` says which call for which pod.
 * `specRejects`: the call validates the pod's mapping (RegisterTaskDefinition), so a
 * ClientException or InvalidParameterException means this spec can never run.
 */
export function toProviderError(err: unknown, what: string, specRejects = false): Error {
  if (err instanceof VkError) return err;
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? 'Error';
  const text = `${what}: ${name}: ${e.message ?? String(err)}`;
  if (name === 'AbortError') return new AbortedError(`${what}: aborted`, { cause: err });
  if (THROTTLING.has(name)) return new TryLaterError(text, undefined, { cause: err });
  if (AUTH.has(name)) return new VkError('VK_PROVIDER', `${text} (check the AWS credentials and their IAM permissions)`, { cause: err });
  if (specRejects && (name === 'ClientException' || name === 'InvalidParameterException')) return new PodRejectedError('FargateRejected', text, { cause: err });
  const status = e.$metadata?.httpStatusCode;
  if (UNAVAILABLE.has(name) || (status !== undefined && status >= 500) || (status === undefined && e.code !== undefined))
    return new ProviderUnavailableError(text, { cause: err });
  if (status === undefined && !('$fault' in (e as object))) return new ProviderUnavailableError(text, { cause: err }); // no HTTP answer at all
  return new VkError('VK_PROVIDER', text, { cause: err });
}
