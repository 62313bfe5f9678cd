// A `vk run` child process that a restart test can kill -9 and start again with the same flags.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Scope } from './cluster.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

export interface VkProcess {
  /** kill -9, resolved once the process is gone. */
  kill9(): Promise<void>;
  /** Starts it again with the same arguments (after kill9). */
  start(): void;
}

/** Starts `vk <args>`; the scope's end kills it. An exit other than by SIGKILL or 0 prints its stderr tail. */
export function startVkProcess(t: Scope, args: string[]): VkProcess {
  const spawnOne = (): ChildProcess => {
    const child = spawn(process.execPath, [VK, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
    child.on('exit', (code, signal) => signal !== 'SIGKILL' && code !== 0 && process.stderr.write(`vk exited ${code}: ${stderr}\n`));
    return child;
  };
  let child = spawnOne();
  t.after(() => void child.kill('SIGKILL'));
  return {
    async kill9() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
    },
    start() {
      child = spawnOne();
    },
  };
}
