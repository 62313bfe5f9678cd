// A fuzz target in a child process: a crash is seen (the process exits) and its RSS is its own,
// sampled every 100 ms. The script prints {"port":N} on stdout once listening and stops on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export class TargetProcess {
  readonly child: ChildProcess;
  readonly port: number;
  exit: string | undefined;
  peakRssMiB = 0;
  private readonly sampler: NodeJS.Timeout;

  protected constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
    child.once('exit', (code, signal) => (this.exit = `exit code ${code} signal ${signal}`));
    this.sampler = setInterval(() => (this.peakRssMiB = Math.max(this.peakRssMiB, this.rssMiB())), 100);
    this.sampler.unref();
  }

  /** Spawns `script` under this Node and waits for its port. */
  protected static async spawn(script: string): Promise<{ child: ChildProcess; port: number }> {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { port: number }).port);
      });
      child.once('exit', (code, signal) => reject(new Error(`${script} exited before listening: code ${code} signal ${signal}`)));
    });
    return { child, port };
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** VmRSS in MiB (0 once exited). */
  rssMiB(): number {
    if (!this.alive) return 0;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : 0;
    } catch {
      return 0;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000)]);
    if (this.alive) this.child.kill('SIGKILL');
  }
}
