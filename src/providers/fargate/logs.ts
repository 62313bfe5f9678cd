// Container logs from CloudWatch Logs (the awslogs driver's stream <prefix>/<container>/<task id>):
// GetLogEvents forward from the head (or from sinceTime), the last tailLines kept, follow by
// polling with the forward token until the task has stopped or the caller goes away.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetLogEventsCommand, type CloudWatchLogsClient, type OutputLogEvent } from '@aws-sdk/client-cloudwatch-logs';
import type { LogOptions } from '../provider.ts';
import { awsErrorName, toProviderError } from './aws-errors.ts';

export interface LogSource {
  group: string;
  stream: string;
  /** True once no more lines can come (the task has stopped). */
  finished(): boolean;
}

function rfc3339Nano(ms: number): string {
  return new Date(ms).toISOString().replace('Z', '000000Z');
}

async function* lines(client: CloudWatchLogsClient, source: LogSource, options: LogOptions, pollMs: number): AsyncGenerator<string> {
  let token: string | undefined;
  const fetchPage = async () => {
    try {
      const out = await client.send(
        new GetLogEventsCommand({
          logGroupName: source.group,
          logStreamName: source.stream,
          startFromHead: true,
          ...(options.sinceTime && { startTime: options.sinceTime.getTime() }),
          ...(token && { nextToken: token }),
        }),
        { abortSignal: options.signal },
      );
      const done = out.nextForwardToken === token;
      token = out.nextForwardToken;
      return { events: out.events ?? [], done };
    } catch (err) {
      // The stream appears with the container's first line.
      if (awsErrorName(err) === 'ResourceNotFoundException') return { events: [], done: true };
      throw toProviderError(err, `CloudWatch Logs GetLogEvents ${source.group} ${source.stream}`);
    }
  };
  const format = (e: OutputLogEvent) => `${options.timestamps ? `${rfc3339Nano(e.timestamp ?? 0)} ` : ''}${e.message ?? ''}\n`;

  // Everything there is now; with tailLines only the last ones.
  const backlog: OutputLogEvent[] = [];
  for (;;) {
    const page = await fetchPage();
    backlog.push(...page.events);
    if (options.tailLines !== undefined && backlog.length > options.tailLines) backlog.splice(0, backlog.length - options.tailLines);
    if (page.done || page.events.length === 0) break;
  }
  for (const e of backlog) yield format(e);
  if (!options.follow) return;
  while (!options.signal.aborted) {
    const last = source.finished();
    try {
      await sleep(pollMs, undefined, { signal: options.signal });
    } catch {
      return;
    }
    for (;;) {
      const page = await fetchPage();
      for (const e of page.events) yield format(e);
      if (page.done || page.events.length === 0) break;
    }
    if (last) return;
  }
}

/** The log as a stream of lines; limitBytes cuts it. */
export function readContainerLog(client: CloudWatchLogsClient, source: LogSource, options: LogOptions, pollMs: number): Readable {
  let left = options.limitBytes ?? Infinity;
  async function* limited() {
    for await (const line of lines(client, source, options, pollMs)) {
      const bytes = Buffer.from(line);
      if (bytes.length >= left) {
        yield bytes.subarray(0, left);
        return;
      }
      left -= bytes.length;
      yield bytes;
    }
  }
  return Readable.from(limited(), { objectMode: false });
}
