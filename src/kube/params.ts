// Query parameters as Kubernetes reads them (its parameter codec and v1 PodLogOptions): the
// kubelet API and the remote provider protocol read logs and flags the same way.
import { InvalidRequestError } from '../errors.ts';
import type { LogOptions } from '../providers/provider.ts';

/** A boolean query parameter as Kubernetes' parameter codec reads it: absent, 0, f or false (any case) are false, anything else true. */
export function boolParam(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name);
  if (raw === null) return false;
  return !['0', 'f', 'false'].includes(raw.toLowerCase());
}

/** An integer query parameter, or undefined when absent. */
export function intParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^[+-]?\d+$/.test(raw.trim())) throw new InvalidRequestError(`invalid value for ${name}: ${JSON.stringify(raw)} (expected an integer)`);
  return Number(raw.trim());
}

export type LogRequest = Omit<LogOptions, 'signal'>;

// RFC 3339 as Go's time.RFC3339 parses it: optional fraction, Z or an offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Reads and validates the kubelet's log query parameters (v1 PodLogOptions). */
export function parseLogOptions(query: URLSearchParams, now: Date = new Date()): LogRequest {
  // "tail" is the kubelet's legacy name for tailLines; "all" means no limit.
  const tail = query.get('tail');
  const tailLines =
    tail === 'all' ? undefined : tail !== null && tail !== '' ? intParam(new URLSearchParams({ tailLines: tail }), 'tailLines') : intParam(query, 'tailLines');
  const limitBytes = intParam(query, 'limitBytes');
  const sinceSeconds = intParam(query, 'sinceSeconds');
  const sinceTimeText = query.get('sinceTime');
  if (tailLines !== undefined && tailLines < 0) throw new InvalidRequestError(`invalid tailLines ${tailLines}: must be greater than or equal to 0`);
  if (limitBytes !== undefined && limitBytes < 1) throw new InvalidRequestError(`invalid limitBytes ${limitBytes}: must be greater than 0`);
  if (sinceSeconds !== undefined && sinceSeconds < 1) throw new InvalidRequestError(`invalid sinceSeconds ${sinceSeconds}: must be greater than 0`);
  if (sinceSeconds !== undefined && sinceTimeText) throw new InvalidRequestError('at most one of sinceTime or sinceSeconds may be specified');
  let sinceTime: Date | undefined;
  if (sinceTimeText) {
    const parsed = Date.parse(sinceTimeText);
    if (!RFC3339.test(sinceTimeText) || Number.isNaN(parsed))
      throw new InvalidRequestError(`invalid sinceTime ${JSON.stringify(sinceTimeText)}: expected an RFC 3339 time such as 2025-01-02T15:04:05Z`);
    sinceTime = new Date(parsed);
  } else if (sinceSeconds !== undefined) {
    sinceTime = new Date(now.getTime() - sinceSeconds * 1000);
  }
  const stream = query.get('stream');
  if (stream !== null && stream !== '' && !['All', 'Stdout', 'Stderr'].includes(stream))
    throw new InvalidRequestError(`invalid stream ${JSON.stringify(stream)}: must be one of All, Stdout, Stderr`);
  return {
    follow: boolParam(query, 'follow'),
    previous: boolParam(query, 'previous'),
    timestamps: boolParam(query, 'timestamps'),
    ...(tailLines !== undefined && { tailLines }),
    ...(limitBytes !== undefined && { limitBytes }),
    ...(sinceTime && { sinceTime }),
  };
}
