import { readFileSync } from 'node:fs';

export const VK_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The RFC 3339 form with microseconds that metav1.MicroTime requires (Lease renewTime, Event eventTime). */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** RFC 3339 without fractional seconds, as metav1.Time is serialized. */
export function rfc3339(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
