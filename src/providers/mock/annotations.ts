// Per-pod overrides of the mock, read from the pod's annotations at createPod (and, for the
// lifecycle ones, again at updatePod):
//   mock.vk.io/create-delay-ms: integer; overrides lifecycle.createDelayMs.
//   mock.vk.io/running-delay-ms: integer; overrides lifecycle.runningDelayMs.
//   mock.vk.io/complete-after-ms: integer, or "never"; overrides lifecycle.completeAfterMs.
//   mock.vk.io/exit-code: 0-255; the code containers exit with when they complete (default 0).
//       Non-zero means reason Error: restartPolicy Never → pod Failed; OnFailure and Always →
//       restart with restartCount+1 (CrashLoopBackOff for lifecycle.restartDelayMs between).
//       Without a completion time the containers never exit, so this needs complete-after-ms.
//   mock.vk.io/log-lines: text each container prints (one log line per line) when it starts.
// Failure injection (createPod waits its create delay first, then throws; nothing is created):
//   mock.vk.io/fail-create: createPod rejects with this message (a plain backend failure,
//       VK_PROVIDER, which the core retries).
//   mock.vk.io/fail-delete: deletePod rejects with this message (VK_PROVIDER).
//   mock.vk.io/create-error: createPod throws one of the error contract's classes
//       (src/providers/provider.ts), checked before fail-create:
//         rejected:<Reason>[:<message>]   PodRejectedError with that CamelCase reason
//         unavailable[:<message>]         ProviderUnavailableError
//         try-later[:<ms>[:<message>]]    TryLaterError, retryAfterMs <ms> when given
// A malformed value makes createPod/updatePod reject with an InvalidRequestError naming the annotation.
import { InvalidRequestError, PodRejectedError, ProviderUnavailableError, TryLaterError, VkError } from '../../errors.ts';
import type { MockProviderConfig } from './config.ts';
import { MAX_TIMER_MS } from './lifecycle.ts';

export const ANNOTATION_CREATE_DELAY = 'mock.vk.io/create-delay-ms';
export const ANNOTATION_RUNNING_DELAY = 'mock.vk.io/running-delay-ms';
export const ANNOTATION_COMPLETE_AFTER = 'mock.vk.io/complete-after-ms';
export const ANNOTATION_EXIT_CODE = 'mock.vk.io/exit-code';
export const ANNOTATION_FAIL_CREATE = 'mock.vk.io/fail-create';
export const ANNOTATION_FAIL_DELETE = 'mock.vk.io/fail-delete';
export const ANNOTATION_CREATE_ERROR = 'mock.vk.io/create-error';
export const ANNOTATION_LOG_LINES = 'mock.vk.io/log-lines';

/** A failure injected by fail-create or fail-delete: a backend failure no other code names. */
export class InjectedFailureError extends VkError {
  constructor(message: string) {
    super('VK_PROVIDER', message);
  }
}

export interface Overrides {
  createDelayMs: number;
  runningDelayMs: number;
  completeAfterMs: number | undefined;
  exitCode: number;
}

function intAnnotation(annotations: Record<string, string>, key: string, max: number): number | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (!/^\d{1,10}$/.test(text) || Number(text) > max) {
    throw new InvalidRequestError(`annotation ${key}: expected an integer from 0 to ${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(text);
}

/** The lifecycle settings for a pod: its annotations over the config's lifecycle. */
export function readOverrides(annotations: Record<string, string>, lifecycle: MockProviderConfig['lifecycle']): Overrides {
  const complete = annotations[ANNOTATION_COMPLETE_AFTER]?.trim() === 'never' ? null : intAnnotation(annotations, ANNOTATION_COMPLETE_AFTER, MAX_TIMER_MS);
  return {
    createDelayMs: intAnnotation(annotations, ANNOTATION_CREATE_DELAY, MAX_TIMER_MS) ?? lifecycle.createDelayMs,
    runningDelayMs: intAnnotation(annotations, ANNOTATION_RUNNING_DELAY, MAX_TIMER_MS) ?? lifecycle.runningDelayMs,
    completeAfterMs: complete === null ? undefined : (complete ?? lifecycle.completeAfterMs),
    exitCode: intAnnotation(annotations, ANNOTATION_EXIT_CODE, 255) ?? 0,
  };
}

/** The error createPod is to throw for a pod (create-error, then fail-create), or undefined. */
export function createFailure(annotations: Record<string, string>): VkError | undefined {
  const spec = annotations[ANNOTATION_CREATE_ERROR];
  if (spec !== undefined) return contractError(spec);
  const message = annotations[ANNOTATION_FAIL_CREATE];
  if (message !== undefined) return new InjectedFailureError(message || `${ANNOTATION_FAIL_CREATE}: injected failure`);
  return undefined;
}

/** The error deletePod is to throw for a pod (fail-delete), or undefined. */
export function deleteFailure(annotations: Record<string, string>): VkError | undefined {
  const message = annotations[ANNOTATION_FAIL_DELETE];
  return message === undefined ? undefined : new InjectedFailureError(message || `${ANNOTATION_FAIL_DELETE}: injected failure`);
}

/** Parses a create-error value: `rejected:<Reason>[:<message>]`, `unavailable[:<message>]` or `try-later[:<ms>[:<message>]]`. */
export function contractError(raw: string): VkError {
  const text = raw.trim();
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? undefined : text.slice(colon + 1);
  const split = (s: string): [string, string | undefined] => {
    const i = s.indexOf(':');
    return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
  };
  const bad = (expected: string) => new InvalidRequestError(`annotation ${ANNOTATION_CREATE_ERROR}: ${expected}, got ${JSON.stringify(raw)}`);
  switch (kind) {
    case 'rejected': {
      const [reason, message] = split(rest ?? '');
      if (!/^[A-Z][A-Za-z0-9]*$/.test(reason)) throw bad('expected rejected:<CamelCaseReason>[:<message>]');
      return new PodRejectedError(reason, message || `mock: pod rejected (${ANNOTATION_CREATE_ERROR}): ${reason}`);
    }
    case 'unavailable':
      return new ProviderUnavailableError(rest || `mock: backend unavailable (${ANNOTATION_CREATE_ERROR})`);
    case 'try-later': {
      const [ms, message] = split(rest ?? '');
      if (ms !== '' && (!/^\d{1,10}$/.test(ms) || Number(ms) > MAX_TIMER_MS)) throw bad(`expected try-later[:<ms from 0 to ${MAX_TIMER_MS}>[:<message>]]`);
      const retryAfterMs = ms === '' ? undefined : Number(ms);
      return new TryLaterError(message || `mock: backend busy, try later (${ANNOTATION_CREATE_ERROR})`, retryAfterMs);
    }
    default:
      throw bad('expected rejected:<Reason>, unavailable or try-later[:<ms>]');
  }
}
