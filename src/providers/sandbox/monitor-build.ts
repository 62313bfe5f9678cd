// The container monitor (monitor/monitor.c) is built with the machine's C compiler on first use
// and cached by the hash of its source, compiler and flags under
// ~/.cache/virtual-kubelet-ts/sandbox-monitor-<hash>/, so fresh clones on the same machine share
// it. A build takes about a second; concurrent builds (parallel tests) each write a temporary file
// and rename it into place.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { cacheRoot } from '../../cluster/binary.ts';
import { VkError } from '../../errors.ts';

const SOURCE = path.join(import.meta.dirname, 'monitor', 'monitor.c');
/** The compiler: $CC, else cc. */
const CC = process.env.CC || 'cc';
// Static: no dynamic loader at each container start, and nothing to share that would be worth it.
const FLAGS = ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-static', '-s'];

const run = promisify(execFile);
/** The binary's name (how leftover monitors are recognized on their command lines). */
export const MONITOR_NAME = 'sandbox-monitor';

async function compilerVersion(): Promise<string> {
  try {
    return (await run(CC, ['--version'])).stdout.split('\n')[0] ?? '';
  } catch {
    throw new VkError(
      'VK_PROVIDER',
      `the sandbox provider builds its container monitor with a C compiler: \`${CC}\` is not on PATH (Debian: apt-get install gcc libc6-dev)`,
    );
  }
}

let building: Promise<string> | undefined;

/** The monitor binary's path, built first when the cache lacks it; `progress` hears about a build. */
export function monitorBinary(progress: (line: string) => void = () => {}): Promise<string> {
  building ??= build(progress).catch((err: unknown) => {
    building = undefined; // a later call tries again (e.g. once gcc is installed)
    throw err;
  });
  return building;
}

async function build(progress: (line: string) => void): Promise<string> {
  const source = readFileSync(SOURCE);
  const compiler = await compilerVersion();
  const hash = createHash('sha256').update(source).update(compiler).update(FLAGS.join(' ')).digest('hex').slice(0, 16);
  const dir = path.join(cacheRoot(), `${MONITOR_NAME}-${hash}`);
  const binary = path.join(dir, MONITOR_NAME);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const tmp = `${binary}.tmp-${process.pid}`;
  progress(`building the sandbox's container monitor (${path.relative(process.cwd(), SOURCE)}) with ${compiler} into ${dir}`);
  const started = Date.now();
  try {
    await run(CC, [...FLAGS, '-o', tmp, SOURCE]);
  } catch (err) {
    rmSync(tmp, { force: true });
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new VkError('VK_PROVIDER', `cannot build the sandbox's container monitor (${CC} ${FLAGS.join(' ')} ${SOURCE}):\n${stderr.trim()}`);
  }
  renameSync(tmp, binary);
  progress(`built the container monitor in ${Date.now() - started} ms`);
  return binary;
}
