// Errors on the wire, both directions. The server turns whatever a handler or the provider threw
// into an error body in the version the client asked for; the client turns an error body back
// into the VkError class it stands for, so the core can branch on it as if the provider ran
// in-process.
//
//   version 1  {"error": {"code": "NotFound", "message": "..."}}: the names of V1_ERROR_STATUS
//   version 2  {"error": {"code": "VK_NOT_FOUND", "message": "...", "reason"?: "...", "retryAfterMs"?: 5000}}
//              with the HTTP status httpStatus() gives for the code (src/errors.ts: one mapping)
import { STATUS_CODES } from 'node:http';
import { z } from 'zod';
import {
  AbortedError,
  ConfigError,
  ContainerStateError,
  InvalidRequestError,
  NotFoundError,
  PodRejectedError,
  ProtocolError,
  ProviderUnavailableError,
  TimeoutError,
  TryLaterError,
  UnsupportedError,
  VkError,
  codeForHttpStatus,
  errorMessage,
  hasCode,
  httpStatus,
  type VkErrorCode,
} from '../errors.ts';
import type { ProtocolVersion } from './wire.ts';

/** The error codes of version 1, each with its HTTP status. */
export type V1ErrorCode =
  | 'BadRequest' // 400: malformed JSON, a missing or invalid field, a bad query parameter
  | 'UnsupportedVersion' // 400: /v2/... or a VK-Provider-Protocol header this server does not speak
  | 'Unauthorized' // 401: missing or wrong bearer token
  | 'NotFound' // 404: the pod or container is unknown to the provider
  | 'UnknownPath' // 404: no such endpoint
  | 'MethodNotAllowed' // 405
  | 'PayloadTooLarge' // 413
  | 'UnsupportedMediaType' // 415: a body that is not application/json
  | 'ProviderError' // 500: the provider refused or failed the operation (its message is passed on)
  | 'Internal' // 500: a bug in the server
  | 'Unsupported' // 501: the capability is not implemented
  | 'Unhealthy'; // 503: GET /v1/ping when the backend is unhealthy

export const V1_ERROR_STATUS: Record<V1ErrorCode, number> = {
  BadRequest: 400,
  UnsupportedVersion: 400,
  Unauthorized: 401,
  NotFound: 404,
  UnknownPath: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  ProviderError: 500,
  Internal: 500,
  Unsupported: 501,
  Unhealthy: 503,
};

// A Record, so a code added to VkErrorCode fails to compile here until it is listed (and documented).
const V2_CODES: Record<VkErrorCode, true> = {
  VK_CONFIG: true,
  VK_KUBE_API: true,
  VK_KUBE_CONNECT: true,
  VK_CLUSTER: true,
  VK_NOT_FOUND: true,
  VK_UNSUPPORTED: true,
  VK_POD_REJECTED: true,
  VK_POD_CONFIG: true,
  VK_PROVIDER_UNAVAILABLE: true,
  VK_TRY_LATER: true,
  VK_CONFLICT: true,
  VK_CONTAINER_STATE: true,
  VK_INVALID_REQUEST: true,
  VK_IMAGE_PULL: true,
  VK_IMAGE_PUSH: true,
  VK_PROTOCOL: true,
  VK_PROVIDER: true,
  VK_TIMEOUT: true,
  VK_ABORTED: true,
};

/** The error codes of version 2: every VkErrorCode. */
export const V2_ERROR_CODES = Object.keys(V2_CODES) as VkErrorCode[];

function isVkErrorCode(code: string): code is VkErrorCode {
  return Object.hasOwn(V2_CODES, code);
}

/**
 * An error the protocol layer itself answers, with an HTTP status of its own where HTTP has one
 * (401, 404 for an unknown path, 405, 413, 415, 503 for an unhealthy ping) and its version-1 code.
 */
export class WireStatusError extends VkError {
  readonly status: number;
  readonly v1Code: V1ErrorCode;
  constructor(code: VkErrorCode, v1Code: V1ErrorCode, message: string, status = V1_ERROR_STATUS[v1Code]) {
    super(code, message);
    this.status = status;
    this.v1Code = v1Code;
  }
}

/** The body of a non-2xx answer. */
export interface WireError {
  code: string;
  message: string;
  /** Version 2, VK_POD_REJECTED: the CamelCase reason for the pod status. */
  reason?: string;
  /** Version 2, VK_TRY_LATER: when to call again. */
  retryAfterMs?: number;
}

export const errorBodySchema = z.looseObject({
  error: z.looseObject({ code: z.string(), message: z.string(), reason: z.string().optional(), retryAfterMs: z.number().nonnegative().optional() }),
});

function v1Code(err: unknown): V1ErrorCode {
  if (err instanceof WireStatusError) return err.v1Code;
  if (err instanceof InvalidRequestError) return 'BadRequest';
  if (err instanceof NotFoundError) return 'NotFound';
  if (err instanceof UnsupportedError) return 'Unsupported';
  return 'ProviderError';
}

/** The status and body that answer `err` in `version`. */
export function encodeError(err: unknown, version: ProtocolVersion): { status: number; body: { error: WireError } } {
  const message = errorMessage(err);
  if (version === 1) {
    const code = v1Code(err);
    return { status: err instanceof WireStatusError ? err.status : V1_ERROR_STATUS[code], body: { error: { code, message } } };
  }
  const code: VkErrorCode = err instanceof VkError ? err.code : hasCode(err, 'VK_ABORTED') ? 'VK_ABORTED' : 'VK_PROVIDER';
  const error: WireError = { code, message };
  if (err instanceof PodRejectedError) error.reason = err.reason;
  if (err instanceof TryLaterError && err.retryAfterMs !== undefined) error.retryAfterMs = err.retryAfterMs;
  const status = err instanceof WireStatusError ? err.status : err instanceof VkError ? httpStatus(err) : 500;
  return { status, body: { error } };
}

const V1_TO_V2: Record<V1ErrorCode, VkErrorCode> = {
  BadRequest: 'VK_INVALID_REQUEST',
  UnsupportedVersion: 'VK_PROTOCOL',
  Unauthorized: 'VK_INVALID_REQUEST',
  NotFound: 'VK_NOT_FOUND',
  UnknownPath: 'VK_UNSUPPORTED',
  MethodNotAllowed: 'VK_INVALID_REQUEST',
  PayloadTooLarge: 'VK_INVALID_REQUEST',
  UnsupportedMediaType: 'VK_INVALID_REQUEST',
  ProviderError: 'VK_PROVIDER',
  Internal: 'VK_PROVIDER',
  Unsupported: 'VK_UNSUPPORTED',
  Unhealthy: 'VK_PROVIDER_UNAVAILABLE',
};

/** The VkErrorCode an answer stands for: its code (either version's names), else its HTTP status's. */
export function wireCode(status: number, code: string | undefined): VkErrorCode {
  if (code !== undefined && isVkErrorCode(code)) return code;
  if (code !== undefined && Object.hasOwn(V1_TO_V2, code)) return V1_TO_V2[code as V1ErrorCode];
  return codeForHttpStatus(status);
}

/** The VkError class an answer's code stands for, carrying the message as sent. */
export function decodeError(status: number, error: { code?: string; message: string; reason?: string; retryAfterMs?: number }): VkError {
  const { message } = error;
  const code = wireCode(status, error.code);
  switch (code) {
    case 'VK_NOT_FOUND':
      return new NotFoundError(message);
    case 'VK_UNSUPPORTED':
      return new UnsupportedError(message);
    case 'VK_POD_REJECTED':
      return new PodRejectedError(error.reason || 'Rejected', message);
    case 'VK_PROVIDER_UNAVAILABLE':
      return new ProviderUnavailableError(message);
    case 'VK_TRY_LATER':
      return new TryLaterError(message, error.retryAfterMs);
    case 'VK_CONTAINER_STATE':
      return new ContainerStateError(message);
    case 'VK_INVALID_REQUEST':
      return new InvalidRequestError(message);
    case 'VK_PROTOCOL':
      return new ProtocolError(message);
    case 'VK_TIMEOUT':
      return new TimeoutError(message);
    case 'VK_ABORTED':
      return new AbortedError(message);
    case 'VK_CONFIG':
      return new ConfigError(message);
    default:
      return new VkError(code, message);
  }
}

/**
 * Whether an error answer is the provider's own (its message is passed on as it is) rather than
 * the server refusing the request (a client/server mismatch, reported with the call and status).
 */
export function isProviderAnswer(status: number, code: string): boolean {
  if (status === 401 || status === 405 || status === 413 || status === 415) return false;
  return !['VK_INVALID_REQUEST', 'VK_PROTOCOL', 'BadRequest', 'UnsupportedVersion', 'UnknownPath', 'Internal'].includes(code);
}

/** "PayloadTooLarge" for 413: a v1 code when the answer had one, else the status text without spaces. */
export function statusName(status: number, code: string | undefined): string {
  if (code !== undefined && Object.hasOwn(V1_ERROR_STATUS, code)) return code;
  return (STATUS_CODES[status] ?? '').replace(/[^A-Za-z]/g, '');
}
