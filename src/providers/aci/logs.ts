// Container logs from ACI's listLogs call. ACI answers with the whole log (or its tail) as one
// string and has no stream, so `follow` polls and emits only what is new: the lines after the
// last one already sent (matched by content, since ACI gives no offsets), which upstream lacks
// (virtual-kubelet/azure-aci#147).
import { Readable } from 'node:stream';
import type { LogOptions } from '../provider.ts';

export type FetchLog = (query: { tail?: number; timestamps: boolean }, signal: AbortSignal) => Promise<string>;

function lines(content: string): string[] {
  const out = content.split('\n');
  if (out.at(-1) === '') out.pop();
  return out;
}

/**
 * The lines of `next` not yet sent, `sent` being the log as last read: what follows it when it
 * is a prefix, else what follows the longest end of `sent` that `next` starts with (ACI returns a
 * bounded window), else everything (the log was replaced, e.g. by a restart).
 */
export function newLines(sent: string[], next: string[]): string[] {
  for (let overlap = Math.min(sent.length, next.length); overlap > 0; overlap--) {
    let same = true;
    for (let i = 0; i < overlap && same; i++) same = sent[sent.length - overlap + i] === next[i];
    if (same) return next.slice(overlap);
  }
  return next;
}

const TIMESTAMP = /^(\S+) /;

/** A readable of the container's log; with follow it polls every `intervalMs` until the signal aborts or `stillRunning` says no. */
export function containerLogStream(fetch: FetchLog, options: LogOptions, intervalMs: number, stillRunning: () => Promise<boolean>): Readable {
  const out = new Readable({ read() {} });
  let limit = options.limitBytes;
  const push = (text: string): boolean => {
    if (limit !== undefined) {
      if (Buffer.byteLength(text) > limit) text = Buffer.from(text).subarray(0, limit).toString('utf8');
      limit -= Buffer.byteLength(text);
    }
    out.push(text);
    return limit === undefined || limit > 0;
  };
  // sinceTime needs ACI's timestamps to filter on; they are cut off again unless asked for.
  const timestamps = options.timestamps || options.sinceTime !== undefined;
  const shape = (all: string[]) => {
    let kept = all;
    if (options.sinceTime) {
      const since = options.sinceTime.getTime();
      kept = kept.filter((l) => {
        const t = Date.parse(TIMESTAMP.exec(l)?.[1] ?? '');
        return Number.isNaN(t) || t >= since;
      });
    }
    return options.timestamps ? kept : timestamps ? kept.map((l) => l.replace(TIMESTAMP, '')) : kept;
  };
  const run = async () => {
    // Follow reads the whole log each time (to find where it left off); a one-off read lets ACI cut the tail.
    const first = lines(await fetch({ tail: options.follow ? undefined : options.tailLines, timestamps }, options.signal));
    let seen = first;
    const tail = options.tailLines;
    const initial = shape(tail !== undefined ? first.slice(Math.max(0, first.length - tail)) : first);
    if (initial.length && !push(`${initial.join('\n')}\n`)) return;
    while (options.follow && !options.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
      if (options.signal.aborted) return;
      const next = lines(await fetch({ timestamps }, options.signal));
      const fresh = shape(newLines(seen, next));
      seen = next;
      if (fresh.length && !push(`${fresh.join('\n')}\n`)) return;
      if (!(await stillRunning())) return;
    }
  };
  run().then(
    () => out.push(null),
    (err: unknown) => (options.signal.aborted ? out.push(null) : out.destroy(err as Error)),
  );
  return out;
}
