// JSON in and out of the provider SDK server: request bodies read within a size limit and
// validated with the protocol's schemas, answers and errors written in the version asked for.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { InvalidRequestError, errorMessage } from '../errors.ts';
import { WireStatusError, encodeError } from '../protocol/errors.ts';
import { VERSION_HEADER, type ProtocolVersion } from '../protocol/wire.ts';
import { formatZodError } from '../util/zod-error.ts';

/** Reads a JSON body within `maxBytes` and validates it; every problem is a 400/413/415 naming it. */
export async function readJson<S extends z.ZodType>(req: IncomingMessage, schema: S, maxBytes: number): Promise<z.output<S>> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\b/i.test(type))
    throw new WireStatusError('VK_INVALID_REQUEST', 'UnsupportedMediaType', `request body must be application/json, not ${type}`);
  const declaredLength = Number(req.headers['content-length']);
  if (Number.isFinite(declaredLength) && declaredLength > maxBytes)
    throw new WireStatusError('VK_INVALID_REQUEST', 'PayloadTooLarge', `request body of ${declaredLength} bytes exceeds the limit of ${maxBytes} bytes`);
  // Read with events, not for-await: breaking out of the loop would destroy the socket before
  // the 413 goes out. After an error the rest of the body is drained (and dropped) by the server,
  // so the answer reaches the client and the connection stays usable.
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off('data', onData);
        chunks.length = 0;
        reject(new WireStatusError('VK_INVALID_REQUEST', 'PayloadTooLarge', `request body exceeds the limit of ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve());
    req.once('error', reject);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new InvalidRequestError('request body is empty; expected JSON');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidRequestError(`malformed JSON in request body: ${errorMessage(err)}`);
  }
  const result = schema.safeParse(parsed);
  if (!result.success) throw new InvalidRequestError(`invalid request body: ${formatZodError(result.error)}`);
  return result.data;
}

export function sendJson(res: ServerResponse, version: ProtocolVersion, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), [VERSION_HEADER]: String(version), ...extraHeaders });
  res.end(text);
}

/** Answers `err` in `version`; a body left unread is drained by the server once the answer is out. */
export function sendError(res: ServerResponse, version: ProtocolVersion, err: unknown, extraHeaders: Record<string, string> = {}): { status: number } {
  const { status, body } = encodeError(err, version);
  sendJson(res, version, status, body, extraHeaders);
  return { status };
}
