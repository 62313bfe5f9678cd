// The pieces of exec/attach shared by every wire that carries them (the kubelet API's SPDY and
// WebSocket adapters, and the remote provider protocol on both of its sides): the final
// metav1.Status of a session and the terminal-resize stream.
import type { Readable } from 'node:stream';
import type { TerminalSize } from '../providers/provider.ts';

export interface StreamStatus {
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason: string; message: string }[] };
  code?: number;
}

/**
 * The cause a provider SDK server adds to a failed session's Status (protocol version 2 and
 * later): `{reason: 'VkErrorCode', message: 'VK_NOT_FOUND'}`, so the client can rethrow the class.
 */
export const ERROR_CODE_CAUSE = 'VkErrorCode';

export function exitStatus(command: string[], exitCode: number): StreamStatus {
  if (exitCode === 0) return { status: 'Success' };
  return {
    status: 'Failure',
    reason: 'NonZeroExitCode',
    message: `command terminated with non-zero exit code: command '${command.join(' ')}' exited with ${exitCode}`,
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** Parses the resize stream: concatenated JSON objects {"Width":N,"Height":N}. */
export async function* terminalSizes(stream: Readable): AsyncGenerator<TerminalSize> {
  let buffered = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    buffered += chunk.toString('utf8');
    // Objects are flat, so each ends at the first closing brace.
    let end: number;
    while ((end = buffered.indexOf('}')) >= 0) {
      const text = buffered.slice(0, end + 1);
      buffered = buffered.slice(end + 1);
      try {
        const size = JSON.parse(text) as { Width?: number; Height?: number };
        if (typeof size.Width === 'number' && typeof size.Height === 'number') yield { width: size.Width, height: size.Height };
      } catch {
        return; // the kubelet stops reading resize events on a malformed one
      }
    }
  }
}
