import { pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr; VK_LOG_LEVEL or --log-level picks the level. */
export function createLogger(level = process.env.VK_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: undefined }, pino.destination(2));
}

export const silentLogger: Logger = pino({ level: 'silent' });
