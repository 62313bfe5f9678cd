// The chaos results as JSON (reliability/results/latest.json) and Markdown (latest.md).
import type { Findings } from './checker.ts';
import type { InjectedFault } from './faults.ts';

export interface FaultResult extends InjectedFault {
  /**
   * From the end of the fault (the killed process back, the stall over) to convergence; undefined
   * when it did not converge within the cap. The fault itself lasted endMs - atMs.
   */
  convergedAfterMs: number | undefined;
}

export interface ChaosResult {
  startedAt: string;
  command: string;
  commit: string;
  /** loadavg: the machine's 1, 5 and 15 min load at the start and the end (other work shares it). */
  machine: { cpuModel: string; cores: number; node: string; loadavg?: { start: number[]; end: number[] } };
  settings: { pods: number; minutes: number; seed: number; provider: 'mock' | 'sandbox'; convergenceCapMs: number; faultKinds?: string[] };
  durationSeconds: number;
  workload: { podsRequested: number; ops: Record<string, number>; apiErrors: number; backendCreations: number };
  faults: FaultResult[];
  faultCounts: Record<string, number>;
  convergence: { p50Ms: number | undefined; p99Ms: number | undefined; maxMs: number | undefined; notConverged: number };
  counts: { duplicates: number; lost: number; leaked: number; diverged: number };
  findings: Findings;
  /** Every count is 0, every fault converged within the cap and p99 ≤ 30 s. */
  passed: boolean;
}

export function renderMarkdown(r: ChaosResult): string {
  const ms = (v: number | undefined) => (v === undefined ? '—' : `${(v / 1000).toFixed(1)} s`);
  const lines = [
    '# Chaos results',
    '',
    `\`${r.command}\` at ${r.startedAt}, commit ${r.commit}, ${r.machine.cores} × ${r.machine.cpuModel}, Node ${r.machine.node}${
      r.machine.loadavg
        ? `, load average ${r.machine.loadavg.start.map((n) => n.toFixed(2)).join(' ')} at the start, ${r.machine.loadavg.end.map((n) => n.toFixed(2)).join(' ')} at the end`
        : ''
    }. Provider: ${r.settings.provider}. ${r.passed ? '**Passed.**' : '**Failed.**'}`,
    '',
    `${r.workload.podsRequested} pods asked for over ${(r.durationSeconds / 60).toFixed(1)} min (${r.workload.backendCreations} backend creations; operations: ${Object.entries(
      r.workload.ops,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; ${r.workload.apiErrors} workload API errors while kube-apiserver was down or stalled).`,
    '',
    '| duplicates | lost | leaked | diverged | convergence p50 | p99 | max | not converged |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${r.counts.duplicates} | ${r.counts.lost} | ${r.counts.leaked} | ${r.counts.diverged} | ${ms(r.convergence.p50Ms)} | ${ms(r.convergence.p99Ms)} | ${ms(r.convergence.maxMs)} | ${r.convergence.notConverged} |`,
    '',
    `Faults injected: ${Object.entries(r.faultCounts)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}.${r.settings.provider === 'sandbox' ? ' provider-fail, provider-hang and clock-jump are mock-only (the sandbox has no hook to inject them).' : ''}`,
    '',
    '| # | fault | what | fault lasted | converged after it ended |',
    '| ---: | --- | --- | ---: | ---: |',
    ...r.faults.map(
      (f, i) =>
        `| ${i + 1} | ${f.kind} | ${f.detail} | ${ms(f.endMs - f.atMs)} | ${f.convergedAfterMs === undefined ? `not within ${r.settings.convergenceCapMs / 1000} s` : ms(f.convergedAfterMs)} |`,
    ),
    '',
  ];
  for (const [name, list] of Object.entries(r.findings) as [string, string[]][])
    if (list.length) lines.push(`**${name}**:`, '', ...list.slice(0, 20).map((l) => `- ${l}`), '');
  return lines.join('\n');
}
