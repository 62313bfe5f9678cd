// Query parameters of the protocol, written by the client and read by the server from one
// definition: the log options of GET .../logs (read with the kubelet's parser, src/kube/params.ts)
// and the flags of exec/attach.
import { boolParam, type LogRequest } from '../kube/params.ts';
export type Query = Record<string, string | number | boolean | string[] | undefined>;

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
  return { stdin: boolParam(query, 'input'), stdout: boolParam(query, 'output'), stderr: boolParam(query, 'error'), tty: boolParam(query, 'tty') };
}
