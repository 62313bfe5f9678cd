// The mock provider's port-forward: every port of a running pod is an echo server (what is
// written comes back, and the connection closes when the client closes its side), except port
// 80, which answers each HTTP/1.1 request with 200 and the body "hello from <pod>\n" (then
// closes), so `curl` through `kubectl port-forward` works.
import type { Duplex } from 'node:stream';

export const HTTP_PORT = 80;

function finished(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed) return resolve();
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
  });
}

export function httpResponse(podName: string): string {
  const body = `hello from ${podName}\n`;
  return ['HTTP/1.1 200 OK', 'Content-Type: text/plain; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close', '', body].join(
    '\r\n',
  );
}

/** Serves one forwarded connection; resolves when it is closed on either side. */
export async function servePort(podName: string, port: number, stream: Duplex, signal?: AbortSignal): Promise<void> {
  const done = finished(stream);
  const onAbort = () => stream.destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (port === HTTP_PORT) {
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        if (head.includes('\r\n\r\n') || head.includes('\n\n')) {
          stream.off('data', onData);
          stream.end(httpResponse(podName));
        }
      };
      stream.on('data', onData);
      stream.once('end', () => {
        if (!stream.writableEnded) stream.end();
      });
    } else {
      // pipe() waits for 'drain', so a fast writer is slowed to the reader's pace.
      stream.pipe(stream);
    }
    await done;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
