// Faults a chaos run injects into a running mock from outside the process: a JSON file the
// mock re-reads when it changes (polled every 500 ms, so a test needs no hook into the process):
//   { "seed": 7, "failRate": 0.2, "hangRate": 0.1, "hangMs": 5000, "clockOffsetMs": 3600000 }
// failRate: share of provider calls (create, update, delete, list, ping) that throw a backend
// failure (VK_PROVIDER, which the core retries); hangRate: share that wait hangMs first (until
// the caller aborts); clockOffsetMs: added to every timestamp the mock reports (a clock jump).
// The draws come from a PRNG seeded by "seed", so a run is repeatable. A missing file is no
// faults; an unreadable one is logged and keeps the last good settings.
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../../log.ts';
import { errorMessage } from '../../errors.ts';
import { seededRandom } from '../../util/seeded-random.ts';
import { formatZodError } from '../../util/zod-error.ts';
import { InjectedFailureError } from './annotations.ts';
import type { Delays } from './delays.ts';

const POLL_MS = 500;

const faultSchema = z.strictObject({
  seed: z.number().int().default(1),
  failRate: z.number().min(0).max(1).default(0),
  hangRate: z.number().min(0).max(1).default(0),
  hangMs: z.number().int().nonnegative().default(0),
  clockOffsetMs: z.number().int().default(0),
});

export type MockFaults = z.output<typeof faultSchema>;

const NO_FAULTS: MockFaults = faultSchema.parse({});

export class FaultFile {
  faults: MockFaults = NO_FAULTS;
  /** Calls failed and hung so far. */
  readonly injected = { failed: 0, hung: 0 };
  private readonly file: string;
  private readonly log: Logger;
  private readonly delays: Delays;
  private random = seededRandom(NO_FAULTS.seed);
  private mtimeMs = -1;
  private readonly timer: NodeJS.Timeout;

  constructor(file: string, delays: Delays, log: Logger) {
    this.file = file;
    this.delays = delays;
    this.log = log;
    this.reload();
    this.timer = setInterval(() => this.reload(), POLL_MS);
    this.timer.unref();
  }

  get clockOffsetMs(): number {
    return this.faults.clockOffsetMs;
  }

  /** Before a provider call: maybe hang (until hangMs or the caller's abort), maybe throw. */
  async before(what: string, signal: AbortSignal | undefined): Promise<void> {
    const f = this.faults;
    if (f.failRate === 0 && f.hangRate === 0) return;
    if (this.random() < f.hangRate) {
      this.injected.hung++;
      await this.delays.wait(f.hangMs, signal, what);
    }
    if (this.random() < f.failRate) {
      this.injected.failed++;
      throw new InjectedFailureError(`${what}: injected failure (faultsFile ${this.file})`);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private reload(): void {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch {
      mtimeMs = 0; // no file: no faults
    }
    if (mtimeMs === this.mtimeMs) return;
    this.mtimeMs = mtimeMs;
    let next = NO_FAULTS;
    if (mtimeMs !== 0) {
      try {
        const parsed = faultSchema.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
        if (!parsed.success) throw new Error(formatZodError(parsed.error));
        next = parsed.data;
      } catch (err) {
        this.log.warn({ file: this.file, err: errorMessage(err) }, 'mock faultsFile unreadable; keeping the last settings');
        return;
      }
    }
    if (next.seed !== this.faults.seed) this.random = seededRandom(next.seed);
    this.faults = next;
    this.log.info({ file: this.file, faults: next }, 'mock faults changed');
  }
}
