// The mock's attach: the container's main process prints its new log lines and echoes stdin
// back; the session ends with the container, at the client's abort, or at stdin's end when the
// container has stdinOnce (the runtime closes the process's stdin after the session, like cat).
import type { Container } from '../../kube/types.ts';
import type { ExecStreams, LogOptions } from '../provider.ts';
import { waitForDrain } from '../../util/streams.ts';

/** `output(options)` is the main process's log from now on (follow, no history). */
export async function attachSession(spec: Container, streams: ExecStreams, output: (options: LogOptions) => AsyncIterable<string | Buffer>): Promise<void> {
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, streams.signal]);
  const out = streams.stdout;
  const aborted = () => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  const write = async (data: string | Buffer) => {
    if (!out || out.destroyed || out.writableEnded) return;
    const text = streams.tty ? Buffer.from(data.toString().replace(/\r?\n/g, '\r\n')) : data;
    if (!out.write(text)) await waitForDrain(out, signal);
  };
  const tasks: Promise<void>[] = [
    // The main process's output: its log lines from now on, until the container stops.
    (async () => {
      for await (const chunk of output({ follow: true, previous: false, timestamps: false, tailLines: 0, signal })) await write(chunk);
    })(),
  ];
  if (streams.stdin) {
    const stdin = streams.stdin;
    tasks.push(
      (async () => {
        try {
          for await (const chunk of stdin as AsyncIterable<Buffer>) {
            if (signal.aborted) return;
            await write(streams.tty ? Buffer.from(chunk.toString('latin1').replace(/\r/g, '\n'), 'latin1') : chunk);
          }
        } catch {
          // The client went away.
        }
        if (!spec.stdinOnce) await aborted();
      })(),
    );
  }
  try {
    await Promise.race([...tasks, aborted()]);
  } finally {
    stop.abort();
  }
}
