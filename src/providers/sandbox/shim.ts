// The per-container monitor (what conmon is to CRI-O): a small detached Node process that is
// the parent of one container instance, so it outlives a restart (or kill -9) of the virtual
// kubelet. It
//   - spawns the container command (nsenter … bwrap …, wrapped in `script` for a TTY),
//   - writes its stdout/stderr to the CRI log file (cri-log.ts), rotating by size,
//   - serves attach sessions on a unix socket (output fan-out, stdin, TTY resize),
//   - records the start (state file) and the exit status (exit file), then exits.
// Run as: node shim.ts <spec.json>. Imports nothing but Node, cri-log.ts and procfs.ts: it starts fast,
// provided Node's compile cache holds it (shimEnv: stripping the types of these files would take
// a Node process 100-200 ms more; `node shim.ts --prewarm` fills the cache and exits).
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { readFileSync, renameSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { CriLogWriter, formatRfc3339Nano, nowNs } from './cri-log.ts';
import { ptySlave, readStat } from './procfs.ts';

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

/** The environment to run the shim with: Node's compile cache in `cacheDir` (unless NODE_COMPILE_CACHE says otherwise). */
export function shimEnv(cacheDir: string): NodeJS.ProcessEnv {
  return { ...process.env, NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? cacheDir };
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

function writeAtomic(file: string, data: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(data));
  renameSync(`${file}.tmp`, file);
}

function main(): void {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ShimSpec;
  process.on('SIGHUP', () => {});
  process.on('SIGINT', () => {});
  process.on('SIGPIPE', () => {});

  const log = new CriLogWriter(spec.logFile, { maxBytes: spec.logMaxBytes, maxFiles: spec.logMaxFiles });
  const startedAt = formatRfc3339Nano(nowNs());
  const child = spawn(spec.argv[0]!, spec.argv.slice(1), { env: spec.env, stdio: [spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const clients = new Set<net.Socket>();
  let stdinClosed = !spec.stdin;
  let startError: string | undefined;
  let stderrHead: Buffer | undefined = Buffer.alloc(0); // until the first line is seen

  const broadcast = (type: number, data: Buffer) => {
    const f = frame(type, data);
    for (const c of clients) if (!c.destroyed) c.write(f);
  };
  child.stdout!.on('data', (data: Buffer) => {
    log.write('stdout', data);
    broadcast(FRAME_STDOUT, data);
  });
  child.stderr!.on('data', (data: Buffer) => {
    if (stderrHead !== undefined) {
      // bwrap reports a command it cannot execute on stderr before anything of the container's:
      // that is a start error (StartError), not container output.
      stderrHead = Buffer.concat([stderrHead, data]);
      const nl = stderrHead.indexOf(0x0a);
      if (nl < 0 && stderrHead.length < 4096) return;
      const first = stderrHead.subarray(0, nl < 0 ? stderrHead.length : nl).toString();
      const m = /^bwrap: (execvp .*)$/.exec(first);
      data = stderrHead;
      stderrHead = undefined;
      if (m) {
        startError = m[1]!;
        data = data.subarray(nl + 1);
      }
      if (data.length === 0) return;
    }
    log.write('stderr', data);
    broadcast(FRAME_STDERR, data);
  });
  child.stdin?.on('error', () => {});

  const resize = (payload: Buffer) => {
    if (!spec.tty || !spec.stty || child.pid === undefined) return;
    try {
      const { width, height } = JSON.parse(payload.toString()) as { width: number; height: number };
      const slave = ptySlave(child.pid);
      if (slave) execFile(spec.stty, ['-F', slave, 'rows', String(height), 'cols', String(width)], () => {});
    } catch {
      // malformed
    }
  };

  const server = net.createServer((socket) => {
    clients.add(socket);
    const reader = new FrameReader();
    let usedStdin = false;
    socket.on('data', (chunk: Buffer) => {
      for (const { type, payload } of reader.push(chunk)) {
        if (type === FRAME_STDIN && !stdinClosed) {
          usedStdin = true;
          child.stdin?.write(payload);
        } else if (type === FRAME_STDIN_EOF && !stdinClosed && spec.stdinOnce) {
          stdinClosed = true;
          child.stdin?.end();
        } else if (type === FRAME_RESIZE) {
          resize(payload);
        }
      }
    });
    const gone = () => {
      clients.delete(socket);
      // stdinOnce: the container's stdin closes when the first attach session that used it ends.
      if (usedStdin && spec.stdinOnce && !stdinClosed) {
        stdinClosed = true;
        child.stdin?.end();
      }
    };
    socket.on('close', gone);
    socket.on('error', () => socket.destroy());
  });
  rmSync(spec.socket, { force: true });
  server.listen(spec.socket);

  child.on('spawn', () => {
    const state: ShimState = { shimPid: process.pid, pid: child.pid!, startedAt };
    writeAtomic(spec.stateFile, state);
    if (spec.infoFile) {
      // bwrap writes its info file once the sandboxed child exists: record its pid. Looked at
      // when the directory changes (inotify), with a slow timer as a safety net.
      const infoFile = spec.infoFile;
      const deadline = Date.now() + 5000;
      let done = false;
      let watcher: FSWatcher | undefined;
      const stop = () => {
        done = true;
        watcher?.close();
        clearInterval(timer);
      };
      const check = () => {
        if (done) return;
        try {
          const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { 'child-pid'?: number };
          if (info['child-pid']) {
            stop();
            writeAtomic(spec.stateFile, { ...state, childPid: info['child-pid'] });
            watchChild(info['child-pid']);
            return;
          }
        } catch {
          // not yet
        }
        if (Date.now() > deadline || child.exitCode !== null || exited) stop();
      };
      const timer = setInterval(check, 25);
      try {
        watcher = watch(path.dirname(infoFile), check);
        watcher.on('error', () => watcher?.close());
      } catch {
        // the timer alone
      }
      check();
    }
  });

  // bwrap's monitor learns how a nested pid namespace's init ended from that init itself; when
  // the init is SIGKILLed (a stop past its grace period, the pod's sandbox going away) the monitor
  // would wait forever. So: once the sandboxed child is gone, the monitor gets a moment, then SIGKILL.
  const watchChild = (childPid: number) => {
    const startTicks = readStat(childPid)?.startTicks;
    const timer = setInterval(() => {
      if (exited) return clearInterval(timer);
      const stat = readStat(childPid);
      if (stat && stat.startTicks === startTicks && stat.state !== 'Z') return;
      clearInterval(timer);
      setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 500).unref();
    }, 200);
    timer.unref();
  };

  let exited = false;
  const finish = (exitCode: number, signal: string | undefined, error?: string) => {
    if (exited) return;
    exited = true;
    if (stderrHead && stderrHead.length > 0) log.write('stderr', stderrHead);
    log.close();
    const exit: ShimExit = {
      exitCode,
      ...(signal && { signal }),
      startedAt,
      finishedAt: formatRfc3339Nano(nowNs()),
      ...((startError ?? error) !== undefined && { startError: startError ?? error }),
    };
    if (exit.startError !== undefined) exit.exitCode = 128;
    writeAtomic(spec.exitFile, exit);
    broadcast(FRAME_EXIT, Buffer.from(JSON.stringify(exit)));
    for (const c of clients) c.end();
    server.close();
    rmSync(spec.socket, { force: true });
    setTimeout(() => process.exit(0), 200).unref();
  };
  child.on('error', (err) => finish(128, undefined, `failed to start ${spec.argv[0]}: ${err.message}`));
  // 'close' waits for stdout/stderr to end too, so the log holds everything.
  child.on('close', (code, signal) => {
    const signalCodes: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1, SIGQUIT: 3, SIGABRT: 6, SIGSEGV: 11, SIGPIPE: 13 };
    finish(code ?? 128 + (signal ? (signalCodes[signal] ?? 0) : 0), signal ?? undefined);
  });
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  // --prewarm: this module and its imports are compiled now; the compile cache is written at exit.
  if (process.argv[2] !== '--prewarm') main();
}
