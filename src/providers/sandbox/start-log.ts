// The sandbox's start log (config.createLog): one JSON line per pod the provider starts, on disk
// (fsynced) before createPod returns, so a chaos run can count starts per UID across kill -9s.
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Pod } from '../../kube/types.ts';

export interface PodStart {
  uid: string;
  namespace: string;
  name: string;
  at: string;
}

export function podStartLine(pod: Pod, now = new Date()): string {
  const start: PodStart = { uid: pod.metadata?.uid ?? '', namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', at: now.toISOString() };
  return `${JSON.stringify(start)}\n`;
}

/** Appends `line` and waits until it is on disk. */
export function appendDurably(file: string, line: string): void {
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, line);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The UIDs of a start log, in order (a line cut short by a crash mid-write is skipped). */
export function readPodStarts(file: string): PodStart[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: PodStart[] = [];
  for (const line of text.split('\n')) {
    try {
      if (line) out.push(JSON.parse(line) as PodStart);
    } catch {
      // torn last line
    }
  }
  return out;
}
