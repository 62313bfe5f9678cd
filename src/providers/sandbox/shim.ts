// The interface of the per-container monitor (monitor/monitor.c, started by shim-launcher.ts):
// the spec it runs from, the state and exit files it writes, and the frames of its attach socket.
// The monitor itself is C (a Node process cost ~10 MB of memory and tens of ms per container).
import { Buffer } from 'node:buffer';
import { VkError } from '../../errors.ts';

export interface ShimSpec {
  argv: string[];
  env: Record<string, string>;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  logFile: string;
  logMaxBytes: number;
  logMaxFiles: number;
  socket: string;
  /** Written once the process runs: ShimState. */
  stateFile: string;
  /** Written when the process has exited: ShimExit. */
  exitFile: string;
  /** bwrap --info-fd output ({"child-pid": N}); its pid is recorded in the state file. */
  infoFile?: string;
  /** `stty` on the host, to size the TTY. */
  stty?: string;
}

/**
 * The spec as the monitor reads it: NUL-terminated `key=value` entries, argv and env as one entry
 * per element (in order), booleans as 0/1. No JSON parser in C; NUL cannot occur in an argument.
 */
export function encodeSpec(spec: ShimSpec): Buffer {
  const entries: string[] = [
    ...spec.argv.map((arg) => `argv=${arg}`),
    ...Object.entries(spec.env).map(([name, value]) => `env=${name}=${value}`),
    `tty=${spec.tty ? 1 : 0}`,
    `stdin=${spec.stdin ? 1 : 0}`,
    `stdinOnce=${spec.stdinOnce ? 1 : 0}`,
    `logFile=${spec.logFile}`,
    `logMaxBytes=${spec.logMaxBytes}`,
    `logMaxFiles=${spec.logMaxFiles}`,
    `socket=${spec.socket}`,
    `stateFile=${spec.stateFile}`,
    `exitFile=${spec.exitFile}`,
    ...(spec.infoFile !== undefined ? [`infoFile=${spec.infoFile}`] : []),
    ...(spec.stty !== undefined ? [`stty=${spec.stty}`] : []),
  ];
  for (const entry of entries)
    if (entry.includes('\0')) throw new VkError('VK_PROVIDER', `a container command or environment holds a NUL byte: ${JSON.stringify(entry)}`);
  return Buffer.from(entries.map((entry) => `${entry}\0`).join(''));
}

export interface ShimState {
  shimPid: number;
  /** Host pid of the spawned command (the bwrap monitor, or `script` with a TTY). */
  pid: number;
  /** Host pid of the sandboxed child (bwrap's, inside the container's pid namespace), when known. */
  childPid?: number;
  startedAt: string;
}

export interface ShimExit {
  exitCode: number;
  signal?: string;
  startedAt: string;
  finishedAt: string;
  /** Set when the command never ran (e.g. executable not found): the kubelet's StartError. */
  startError?: string;
}

// Attach protocol: frames of [type u8][length u32 BE][payload].
export const FRAME_STDIN = 0;
export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_EXIT = 3;
export const FRAME_RESIZE = 4;
export const FRAME_STDIN_EOF = 5;

export function frame(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames; call with each chunk, get complete frames back. */
export class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: { type: number; payload: Buffer }[] = [];
    while (this.buffer.length >= 5) {
      const length = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 5 + length) break;
      out.push({ type: this.buffer[0]!, payload: Buffer.from(this.buffer.subarray(5, 5 + length)) });
      this.buffer = this.buffer.subarray(5 + length);
    }
    return out;
  }
}
