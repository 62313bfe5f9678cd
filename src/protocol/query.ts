// Query parameters of the protocol, written by the client and read by the server from one
// definition: the log options of GET .../logs and the flags of exec/attach.
import { InvalidRequestError } from '../errors.ts';
import type { LogOptions } from '../providers/provider.ts';

export type LogRequest = Omit<LogOptions, 'signal'>;
export type Query = Record<string, string | number | boolean | string[] | undefined>;

// RFC 3339 as Go's time.RFC3339 parses it: optional fraction, Z or an offset.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** A boolean parameter: absent, empty, 0, f or false (any case) are false, anything else true. */
export function flagParam(query: URLSearchParams, name: string): boolean {
  const value = query.get(name);
  return value !== null && !['0', 'false', 'f', ''].includes(value.toLowerCase());
}

function intParam(query: URLSearchParams, name: string, min: number, rule: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^[+-]?\d+$/.test(raw.trim())) throw new InvalidRequestError(`invalid value for ${name}: ${JSON.stringify(raw)} (expected an integer)`);
  const value = Number(raw.trim());
  if (value < min) throw new InvalidRequestError(`invalid ${name} ${value}: ${rule}`);
  return value;
}

/** The query of GET .../logs for the options (what the client sends). */
export function encodeLogQuery(options: LogRequest): Query {
  return {
    follow: options.follow ? 'true' : undefined,
    previous: options.previous ? 'true' : undefined,
    timestamps: options.timestamps ? 'true' : undefined,
    tailLines: options.tailLines,
    limitBytes: options.limitBytes,
    sinceTime: options.sinceTime?.toISOString(),
  };
}

/** The options a GET .../logs query asks for (what the server reads); bad values are InvalidRequestErrors. */
export function parseLogQuery(query: URLSearchParams): LogRequest {
  const tailLines = intParam(query, 'tailLines', 0, 'must be greater than or equal to 0');
  const limitBytes = intParam(query, 'limitBytes', 1, 'must be greater than 0');
  const sinceTimeText = query.get('sinceTime');
  let sinceTime: Date | undefined;
  if (sinceTimeText) {
    const parsed = Date.parse(sinceTimeText);
    if (!RFC3339.test(sinceTimeText) || Number.isNaN(parsed)) throw new InvalidRequestError(`invalid sinceTime ${JSON.stringify(sinceTimeText)}: expected an RFC 3339 time such as 2025-01-02T15:04:05Z`);
    sinceTime = new Date(parsed);
  }
  return {
    follow: flagParam(query, 'follow'),
    previous: flagParam(query, 'previous'),
    timestamps: flagParam(query, 'timestamps'),
    ...(tailLines !== undefined && { tailLines }),
    ...(limitBytes !== undefined && { limitBytes }),
    ...(sinceTime && { sinceTime }),
  };
}

export interface CommandFlags {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** The query of exec/attach for the streams wanted (with a TTY, stderr is merged into stdout). */
export function encodeCommandQuery(command: string[] | undefined, flags: CommandFlags): Query {
  return {
    ...(command && { command }),
    input: flags.stdin ? '1' : undefined,
    output: flags.stdout ? '1' : undefined,
    error: flags.stderr && !flags.tty ? '1' : undefined,
    tty: flags.tty ? '1' : undefined,
  };
}

export function parseCommandQuery(query: URLSearchParams): CommandFlags {
  return { stdin: flagParam(query, 'input'), stdout: flagParam(query, 'output'), stderr: flagParam(query, 'error'), tty: flagParam(query, 'tty') };
}
