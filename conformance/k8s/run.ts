// `npm run k8s-conformance [-- --focus <regex>] [--shards <n>] [--reports <dir>] [--no-results] [--render] [--merge]`:
// Kubernetes' own [sig-node] conformance specs against a sandbox virtual node; writes
// conformance/k8s/results.{json,md} (unless --no-results or a non-default focus).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '../../src/errors.ts';
import { type RunSummary, writeResults } from './results.ts';
import { DEFAULT_FOCUS, runK8sConformance } from './runner.ts';

const HERE = import.meta.dirname;

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: HERE, encoding: 'utf8' }).trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      focus: { type: 'string', default: DEFAULT_FOCUS },
      shards: { type: 'string', default: '3' },
      reports: { type: 'string', default: path.resolve(HERE, '../../.vk/k8s-conformance') },
      'no-results': { type: 'boolean', default: false },
      render: { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
    },
  });
  if (values.render) {
    // Re-renders results.{json,md} from results.json with the skip list's current reasons (no run).
    const summary = JSON.parse(readFileSync(path.join(HERE, 'results.json'), 'utf8')) as RunSummary;
    const counts = writeResults(summary, path.join(HERE, 'results.json'), path.join(HERE, 'results.md'));
    process.stderr.write(`[k8s-conformance] re-rendered: ${counts.passed} of ${counts.total} pass\n`);
    return 0;
  }
  const shards = Number(values.shards);
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`--shards: expected a positive integer, got ${values.shards}`);
  const progress = (line: string) => process.stderr.write(`[k8s-conformance] ${line}\n`);
  // Ctrl-C or SIGTERM: interrupt the specs, then stop the node, control plane and registry.
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort(new Error(`interrupted by ${sig}`)));
  const startCommit = commit(); // the code the node runs: the commit when it started
  const run = await runK8sConformance({ focus: values.focus, shards, reportDir: path.resolve(values.reports), signal: stop.signal, progress });
  if (values.merge) {
    // A re-run of some specs (after a fix): their results replace the full run's, and results.md says so.
    const summary = JSON.parse(readFileSync(path.join(HERE, 'results.json'), 'utf8')) as RunSummary;
    const rerun = new Map(run.results.map((r) => [r.name, r]));
    const results = summary.results.map((r) => rerun.get(r.name) ?? r);
    const reruns = [...(summary.reruns ?? []), { focus: values.focus, commit: startCommit, date: new Date().toISOString(), specs: [...rerun.keys()] }];
    const counts = writeResults({ ...summary, results, reruns }, path.join(HERE, 'results.json'), path.join(HERE, 'results.md'));
    progress(`merged ${rerun.size} re-run spec(s): ${counts.passed} of ${counts.total} pass`);
    return counts.failed > 0 ? 1 : 0;
  }
  const writeFiles = !values['no-results'] && values.focus === DEFAULT_FOCUS;
  const jsonFile = writeFiles ? path.join(HERE, 'results.json') : path.join(path.resolve(values.reports), 'results.json');
  const mdFile = writeFiles ? path.join(HERE, 'results.md') : path.join(path.resolve(values.reports), 'results.md');
  const counts = writeResults({ ...run, commit: startCommit, date: new Date().toISOString() }, jsonFile, mdFile);
  for (const r of run.results.filter((x) => x.outcome === 'failed')) progress(`FAILED ${r.name}: ${r.message ?? ''}`);
  progress(
    `Kubernetes ${run.kubernetesVersion} ${values.focus}: ${counts.passed} of ${counts.total} pass (${counts.failed} fail, ${counts.skipped} skipped); ${mdFile}`,
  );
  return counts.failed > 0 ? 1 : 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  process.stderr.write(`k8s-conformance: ${errorMessage(err)}\n`);
  process.exitCode = 1;
}
