// Temporary directories that go when the test (or file scope) that made them ends.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A fresh directory under the system's temp dir, removed (recursively) by `scope`'s cleanup.
 * node:test runs a test's after-hooks first-registered first, so processes the test stops in
 * later hooks may still write here meanwhile: the removal retries, and writers must tolerate
 * the directory going (see restart.test.ts).
 */
export function tempDir(scope: { after(fn: () => unknown): void }, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  scope.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
  return dir;
}
