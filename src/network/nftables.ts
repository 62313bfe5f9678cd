// One nftables table owned by this node: replaced whole, one `nft -f` transaction per change
// (the script creates, deletes and defines the table, see service-rules.ts), removed on stop.
// Replacements are serialized and coalesced: while one runs, only the newest waiting script runs
// next, so a burst of Service changes costs two nft runs, not one per change.
import { CommandError, run } from '../util/command.ts';
import type { Logger } from '../log.ts';

export class NftTable {
  private readonly nft: string;
  readonly name: string;
  private readonly log: Logger;
  private running: Promise<void> | undefined;
  private pending: { script: string; done: PromiseWithResolvers<void> } | undefined;
  /** Replacements applied; for tests and metrics. */
  applied = 0;

  constructor(nft: string, name: string, log: Logger) {
    this.nft = nft;
    this.name = name;
    this.log = log.child({ nftTable: name });
  }

  /** Applies `script` (a whole-table replacement); resolves when it, or a newer one, is in place. */
  replace(script: string): Promise<void> {
    if (this.pending) {
      // A newer script supersedes the waiting one: both callers wait for the newer.
      this.pending.script = script;
      return this.pending.done.promise;
    }
    const done = Promise.withResolvers<void>();
    this.pending = { script, done };
    void this.drain();
    return done.promise;
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    while (this.pending) {
      const { script, done } = this.pending;
      this.pending = undefined;
      this.running = run([this.nft, '-f', '-'], { input: script, timeoutMs: 30_000 }).then(() => {
        this.applied++;
      });
      try {
        await this.running;
        done.resolve();
      } catch (err) {
        this.log.error({ err }, 'nftables table not applied');
        done.reject(err);
      } finally {
        this.running = undefined;
      }
    }
  }

  /** Removes the table (no error when it is not there). */
  async remove(): Promise<void> {
    await this.running?.catch(() => {});
    try {
      await run([this.nft, 'delete', 'table', 'ip', this.name], { timeoutMs: 30_000 });
    } catch (err) {
      if (!(err instanceof CommandError && /No such file or directory|does not exist/.test(err.stderr))) throw err;
    }
  }
}
