// conformance/k8s/results.{json,md}: every selected spec with its outcome and, for each failure
// or skip, one line saying why.
import { writeFileSync } from 'node:fs';
import { KNOWN_FAILURES, listed } from './skip-list.ts';
import type { SpecResult } from './suite.ts';

export interface RunSummary {
  kubernetesVersion: string;
  focus: string;
  commit: string;
  date: string;
  wallSeconds: number;
  results: SpecResult[];
  /** Later runs of some of the specs (--merge) whose results replaced the full run's. */
  reruns?: { focus: string; commit: string; date: string; specs: string[] }[];
}

export interface Counts {
  total: number;
  passed: number;
  failed: number;
  skipped: number;
}

export function countResults(results: readonly SpecResult[]): Counts {
  return {
    total: results.length,
    passed: results.filter((r) => r.outcome === 'passed').length,
    failed: results.filter((r) => r.outcome === 'failed').length,
    skipped: results.filter((r) => r.outcome === 'skipped').length,
  };
}

/** Why a spec did not pass: the skip list's or known failures' reason, else the failure's first line. */
export function reasonFor(result: SpecResult): string | undefined {
  if (result.outcome === 'passed') return undefined;
  const known = result.outcome === 'failed' ? listed(KNOWN_FAILURES, result.name) : undefined;
  if (known) return `${known.reason} (${result.message ?? 'failed'})`;
  return result.message ?? result.outcome;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function writeResults(summary: RunSummary, jsonFile: string, mdFile: string): Counts {
  const results = [...summary.results].sort((a, b) => a.name.localeCompare(b.name));
  const counts = countResults(results);
  writeFileSync(
    jsonFile,
    `${JSON.stringify({ ...summary, counts, results: results.map((r) => ({ ...r, duration: Math.round(r.duration * 10) / 10, reason: reasonFor(r) })) }, null, 2)}\n`,
  );
  const mark = { passed: 'pass', failed: '**fail**', skipped: 'skip' } as const;
  const lines = [
    `# Kubernetes ${summary.kubernetesVersion} conformance on the sandbox virtual node`,
    '',
    `Focus \`${summary.focus}\`, commit ${summary.commit}, ${summary.date}, ${Math.round(summary.wallSeconds / 60)} min wall time.`,
    `Reproduce: \`npm run k8s-conformance\` (see conformance/k8s/README.md).`,
    ...(summary.reruns ?? []).map((r) => `Re-run after a fix (\`--merge\`, commit ${r.commit}, ${r.date}): ${r.specs.length} spec(s) matching \`${r.focus}\`.`),
    '',
    `**${counts.passed} of ${counts.total} pass**, ${counts.failed} fail, ${counts.skipped} skipped.`,
    '',
    '| Spec | Result | Why not passed |',
    '| --- | --- | --- |',
    ...results.map((r) => `| ${cell(r.name)} | ${mark[r.outcome]} | ${cell(reasonFor(r) ?? '')} |`),
    '',
  ];
  writeFileSync(mdFile, lines.join('\n'));
  return counts;
}
