// The fuzz results as Markdown: one table of properties per target, then the load figures.
import type { KubeletApiFuzzResult } from './kubelet-api.ts';
import type { PodSpecFuzzResult } from './pod-specs.ts';
import type { RemoteProtocolFuzzResult } from './remote-protocol.ts';

export interface FuzzResult {
  startedAt: string;
  command: string;
  commit: string;
  machine: { cpuModel: string; cores: number; node: string };
  settings: { runs: number; seed: number };
  targets: (KubeletApiFuzzResult | RemoteProtocolFuzzResult | PodSpecFuzzResult)[];
}

export function renderMarkdown(result: FuzzResult): string {
  const lines = [
    '# Fuzz results',
    '',
    `\`${result.command}\` at ${result.startedAt}, commit ${result.commit}, ${result.machine.cores} × ${result.machine.cpuModel}, Node ${result.machine.node}.`,
    '',
  ];
  for (const t of result.targets) {
    lines.push(
      `## ${t.target}`,
      '',
      `Process crashed: **${t.crashed ? `yes (${t.exit})` : 'no'}**.`,
      '',
      '| property | cases | seed | result |',
      '| --- | ---: | ---: | --- |',
    );
    for (const p of t.properties) {
      const outcome = p.failed
        ? `**failed**: ${p.error?.replaceAll('|', '\\|')}; path ${p.path}; input ${p.counterexample?.slice(0, 300).replaceAll('|', '\\|')}`
        : 'ok';
      lines.push(`| ${p.name} | ${p.runs} | ${p.seed} | ${outcome} |`);
    }
    lines.push('');
    if (t.target === 'kubelet-api') {
      const s = t.slowloris;
      lines.push(
        `- Slowloris: ${s.clients} clients sending a request head a byte every 200 ms for ${s.seconds} s; meanwhile GET /healthz served ${s.healthzServed} times, failed ${s.healthzFailed}, slowest ${s.slowestHealthzMs} ms.`,
        `- Idle connections: ${t.idle.opened} TLS connections open at once (${t.idle.failedToOpen} failed to open); GET /healthz meanwhile: ${t.idle.healthzWhileOpenMs === undefined ? 'failed' : `${t.idle.healthzWhileOpenMs} ms`}.`,
        `- Server RSS after each of two idle-connection rounds: ${t.idleRoundsRssMiB.join(' MiB, ')} MiB.`,
        `- Server RSS: ${t.rssMiB.start} MiB at start, ${t.rssMiB.peak} MiB peak, ${t.rssMiB.end} MiB at the end.`,
        '',
      );
    } else if (t.target === 'pod-specs') {
      lines.push(
        `- How the pods ended: ${Object.entries(t.outcomes)
          .map(([k, n]) => `${k}: ${n}`)
          .join('; ')}.`,
        `- Uncaught exceptions or unhandled rejections: ${t.uncaught.length === 0 ? 'none' : t.uncaught.join('; ')}.`,
        `- Heap: ${t.heapMiB.start} MiB at start, ${t.heapMiB.peak} MiB peak, ${t.heapMiB.end} MiB at the end (pods removed after each case).`,
        '',
      );
    } else {
      lines.push(
        `- Uncaught exceptions or unhandled rejections on the client side: ${t.clientUncaught.length === 0 ? 'none' : t.clientUncaught.join('; ')}.`,
        `- Server RSS: ${t.serverRssMiB.start} MiB at start, ${t.serverRssMiB.peak} MiB peak, ${t.serverRssMiB.end} MiB at the end.`,
        '',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
