// `promtool check metrics` for the tests: test/harness/promlint/ wraps Prometheus's own linter
// (client_golang's testutil/promlint, the package promtool runs), built once per source hash
// and cached like the control plane (src/cluster/binary.ts).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cacheRoot } from '../../src/cluster/binary.ts';
import { goBuild } from '../../src/cluster/go-build.ts';

const SOURCE_DIR = path.resolve(import.meta.dirname, 'promlint');

function clientGolangVersion(): string {
  const match = /^require github\.com\/prometheus\/client_golang (v\S+)/m.exec(readFileSync(path.join(SOURCE_DIR, 'go.mod'), 'utf8'));
  if (!match?.[1]) throw new Error('test/harness/promlint/go.mod does not pin github.com/prometheus/client_golang');
  return match[1];
}

function sourceHash(): string {
  const hash = createHash('sha256').update(execFileSync('go', ['version'], { encoding: 'utf8' }));
  for (const file of readdirSync(SOURCE_DIR).sort()) {
    if (file === 'go.mod' || file === 'go.sum' || file.endsWith('.go')) hash.update(file).update(readFileSync(path.join(SOURCE_DIR, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** The cached linter binary, built on first use. */
export async function ensurePromlint(progress: (line: string) => void = () => {}): Promise<string> {
  const dir = path.join(cacheRoot(), `promlint-${clientGolangVersion()}-${sourceHash()}`);
  const binary = path.join(dir, 'promlint');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  await goBuild({ name: 'promlint', cwd: SOURCE_DIR, pkg: '.', output: binary, ldflags: '-s -w', flags: ['-trimpath'], progress });
  return binary;
}

/** Lints a text exposition as `promtool check metrics` does: the problems, one "metric: text" line each (none: []). */
export async function lintMetrics(text: string): Promise<string[]> {
  const binary = await ensurePromlint((line) => process.stderr.write(`${line}\n`));
  return new Promise((resolve, reject) => {
    const child = execFile(binary, { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const problems = stdout.split('\n').filter(Boolean);
      if (!err || (err.code === 1 && problems.length)) resolve(problems);
      else reject(new Error(`promlint failed: ${stderr.trim() || err.message}`));
    });
    child.stdin?.end(text);
  });
}
