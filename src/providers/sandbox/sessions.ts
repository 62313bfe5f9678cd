// The sandbox's interactive sessions: exec (with a pseudo-terminal from util-linux script when
// asked, resized with stty), attach over the container monitor's socket, and port-forward into the
// pod's network namespace.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { ContainerStateError, VkError } from '../../errors.ts';
import type { ExecStreams } from '../provider.ts';
import { run } from '../../util/command.ts';
import type { SandboxPod } from './pod-runtime.ts';
import { descendantsOf, isAlive, ptySlave, signal as sendSignal } from './procfs.ts';
import { FRAME_EXIT, FRAME_RESIZE, FRAME_STDERR, FRAME_STDIN, FRAME_STDIN_EOF, FRAME_STDOUT, FrameReader, frame } from './shim.ts';
import type { ContainerRecord, Instance } from './state.ts';

/** Runs `command` in the container's namespaces and cgroup (pod.spawnExec); resolves with its exit code. */
export async function execInContainer(
  pod: SandboxPod,
  inst: Instance,
  name: string,
  container: string,
  command: string[],
  streams: ExecStreams,
  stty: string,
): Promise<number> {
  const child = pod.spawnExec(inst, command, streams.tty);
  if (!child) throw ContainerStateError.notRunning(name, container);
  const done = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, sig) => resolve(code ?? (sig ? 128 + (sig === 'SIGKILL' ? 9 : 15) : 1)));
  });
  if (streams.stdout) child.stdout!.pipe(streams.stdout, { end: false });
  else child.stdout!.resume();
  if (streams.stderr) child.stderr!.pipe(streams.stderr, { end: false });
  else child.stderr!.resume();
  child.stdin!.on('error', () => {});
  if (streams.stdin) streams.stdin.pipe(child.stdin!);
  else child.stdin!.end();
  if (streams.tty && streams.resize) void forwardResize(child.pid!, streams.resize, stty);
  const onAbort = () => {
    for (const p of descendantsOf(child.pid ?? 0)) sendSignal(p.pid, 'SIGKILL');
  };
  streams.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const code = await done;
    // Let the last output through before the caller ends the streams.
    return code;
  } finally {
    streams.signal.removeEventListener('abort', onAbort);
    if (streams.stdin) streams.stdin.unpipe(child.stdin!);
  }
}

/** Applies terminal size changes to the pty `script` made for the session. */
async function forwardResize(scriptPid: number, sizes: AsyncIterable<{ width: number; height: number }>, stty: string): Promise<void> {
  try {
    let slave: string | undefined;
    for await (const size of sizes) {
      // The first size usually comes before `script` has made the pty: wait for it a little.
      for (let i = 0; !slave && i < 100 && isAlive(scriptPid, undefined); i++) {
        slave = ptySlave(scriptPid);
        if (!slave) await new Promise((r) => setTimeout(r, 20));
      }
      if (slave) await run([stty, '-F', slave, 'rows', String(size.height), 'cols', String(size.width)]).catch(() => undefined);
    }
  } catch {
    // the session ended
  }
}

/** Connects the streams to the container's monitor (shim) over its attach socket until the container or the client ends. */
export async function attachToContainer(pod: SandboxPod, c: ContainerRecord, name: string, container: string, streams: ExecStreams): Promise<void> {
  const socketPath = pod.attachSocket(c);
  if (!socketPath || !existsSync(socketPath)) throw ContainerStateError.notRunning(name, container);
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new FrameReader();
  await new Promise<void>((resolve) => {
    const finish = () => {
      socket.destroy();
      resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.type === FRAME_STDOUT) streams.stdout?.write(f.payload);
        else if (f.type === FRAME_STDERR) (streams.tty ? streams.stdout : streams.stderr)?.write(f.payload);
        else if (f.type === FRAME_EXIT) finish();
      }
    });
    socket.on('close', finish);
    socket.on('error', finish);
    streams.signal.addEventListener('abort', finish, { once: true });
    if (streams.stdin) {
      streams.stdin.on('data', (chunk: Buffer) => socket.write(frame(FRAME_STDIN, chunk)));
      streams.stdin.on('end', () => {
        socket.write(frame(FRAME_STDIN_EOF, ''));
        // Without stdinOnce the session stays until the client leaves or the container ends.
      });
    }
    if (streams.tty && streams.resize) {
      void (async () => {
        try {
          for await (const size of streams.resize!) socket.write(frame(FRAME_RESIZE, JSON.stringify(size)));
        } catch {
          // ended
        }
      })();
    }
  });
}

/** Connects `stream` to 127.0.0.1:`port` inside the pod's network namespace (busybox nc), like the kubelet. */
export async function forwardPort(pod: SandboxPod, name: string, port: number, stream: Duplex, tools: { busybox: string; nsenter: string }): Promise<void> {
  const pause = pod.state.sandbox?.pause;
  if (!pause || !isAlive(pause.pid, pause.startTicks)) throw new ContainerStateError(`pod "${name}" has no running sandbox`);
  // Like the kubelet: connect to localhost:port inside the pod's network namespace.
  const nc = [tools.busybox, 'nc', '127.0.0.1', String(port)];
  const argv = pod.state.pod.spec?.hostNetwork ? nc : [tools.nsenter, `--net=/proc/${pause.pid}/ns/net`, '--', ...nc];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  stream.pipe(child.stdin);
  child.stdout.pipe(stream);
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0 && stderr) reject(new VkError('VK_PROVIDER', `port-forward to ${name}:${port}: ${stderr.trim()}`));
      else resolve();
    });
    stream.once('close', () => child.kill('SIGTERM'));
    stream.once('error', () => child.kill('SIGTERM'));
  });
}
