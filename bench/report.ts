// The benchmark's output: the JSON shape, a Markdown report with ratios, and a small SVG chart.
import type { ApiCounts } from './measure.ts';

export interface Scenario {
  id: string;
  kind: 'direct' | 'deployment';
  nodes: number;
  podsPerNode: number;
  pods: number;
}

export interface RunResult {
  scenario: string;
  peer: string;
  version: string;
  how: string;
  pods: number;
  nodes: number;
  ok: boolean;
  error?: string;
  /** Why the run was not attempted (it would not fit this machine); ok is false. */
  notRun?: string;
  /** The repository commit (of ours: the work tree it ran from), "+dirty" with uncommitted changes under src/ or bin/. */
  commit?: string;
  /** Peer started to all its nodes Ready (node registration). */
  startupSeconds?: number;
  /**
   * The peer's Events over the window: writes counted by kube-apiserver (create/update/patch of events), Events the
   * peer says it dropped (ours: vk_events_dropped_total; undefined when the peer does not say), and when the bench's
   * Event watch saw the last write, in seconds after the first pod was created and after the last pod was gone.
   */
  events?: { written: number; perPod: number; dropped?: number; lastSeconds?: number; lastAfterGoneSeconds?: number };
  /** Creation to Running: the first pod's creation (as the watch saw it) to the last pod Running. */
  up?: { seconds: number; podsPerSecond: number; loaderSeconds?: number };
  /** Deletion to gone: the first deletionTimestamp seen to the last pod gone. */
  down?: { seconds: number; podsPerSecond: number };
  /** Per pod: bound (created with spec.nodeName, or scheduled) to Running, both as the driver's watch saw them. */
  latencyMs?: { p50: number; p90: number; p99: number; max: number; samples: number };
  deleteLatencyMs?: { p50: number; p90: number; p99: number; samples: number };
  process?: { count: number; peakRssMiB: number; cpuSeconds: number; cpuSecondsUp: number; cpuSecondsTotal: number; cpuMsPerPod: number };
  /** kube-apiserver's count of the peer's requests (APF FlowSchemas per verb for the peer's user), over the measured window. */
  api?: { perPod: ApiCounts; perPodUp: ApiCounts; total: number };
  windowSeconds?: number;
  /** Busy CPU seconds of the whole machine over the window (/proc/stat), and the 1-minute load average when it began. */
  machineBusyCpuSeconds?: number;
  loadAverageAtStart?: number;
  watchEvents?: number;
  /** How often the bench's watch was closed by kube-apiserver and resumed from its last resourceVersion. */
  watchResumes?: number;
  /** The paced round after a direct run: the same offered rate for every peer (not in the figures above). */
  paced?: PacedRound;
  /** With --repeat: every round's headline figures, in the order they ran; this run is the one with the median up rate. */
  rounds?: RoundSummary[];
}

/** One round of a repeated scenario, in brief. */
export interface RoundSummary {
  ok: boolean;
  upPodsPerSecond?: number;
  downPodsPerSecond?: number;
  latencyP99Ms?: number;
  pacedP99Ms?: number;
  cpuMsPerPod?: number;
  loadAverageAtStart?: number;
  error?: string;
}

/**
 * The round to report of several of one peer in one scenario: the successful one with the median up rate (the
 * slower middle one of an even count), kept in full, with every round in brief; the first round when none succeeded.
 */
export function medianRound(results: RunResult[]): RunResult {
  const ok = results.filter((r) => r.ok && r.up).sort((a, b) => a.up!.podsPerSecond - b.up!.podsPerSecond);
  const chosen = ok[Math.floor((ok.length - 1) / 2)] ?? results[0]!;
  const rounds = results.map((r): RoundSummary => ({
    ok: r.ok,
    upPodsPerSecond: r.up?.podsPerSecond,
    downPodsPerSecond: r.down?.podsPerSecond,
    latencyP99Ms: r.latencyMs?.p99,
    pacedP99Ms: r.paced?.latencyMs?.p99,
    cpuMsPerPod: r.process?.cpuMsPerPod,
    loadAverageAtStart: r.loadAverageAtStart,
    error: r.error,
  }));
  return { ...chosen, rounds };
}

/** " (rounds: a, b, c)" for a figure of a repeated run, sorted; "" for a single run. */
function roundsNote(r: RunResult, figure: (round: RoundSummary) => number | undefined): string {
  if (!r.rounds || r.rounds.length < 2) return '';
  const values = r.rounds.map(figure).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return ` (rounds: ${values
    .sort((a, b) => a - b)
    .map((v) => fmt(v))
    .join(', ')}${values.length < r.rounds.length ? `; ${r.rounds.length - values.length} failed` : ''})`;
}

/** Pods created on a fixed schedule (open loop) at `rate` pods/s, bound round-robin to the run's nodes. */
export interface PacedRound {
  rate: number;
  pods: number;
  /** How long the loader took to create them all: about pods ÷ rate when it kept to the schedule. */
  loaderSeconds?: number;
  /** Per pod: created (bound) to Running, as the driver's watch saw them. */
  latencyMs?: { p50: number; p90: number; p99: number; max: number; samples: number };
  error?: string;
}

export interface BenchResult {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  /** The invocations whose runs are in this file (several with --merge). */
  commands: string[];
  machine: { cpuModel: string; cores: number; memoryGiB: number; kernel: string; node: string; go: string; kubernetes: string; etcdFsync: boolean };
  peers: Record<string, string>;
  settings: Record<string, unknown>;
  /** Free-text remarks on this result set (added by hand: conditions of the run, runs kept from earlier invocations). */
  notes?: string[];
  runs: RunResult[];
}

const PEER_ORDER = ['ours', 'baseline', 'upstream', 'kwok', 'ceiling'];
const COLORS: Record<string, string> = { ours: '#2563eb', baseline: '#93c5fd', upstream: '#9333ea', kwok: '#ea580c', ceiling: '#6b7280' };

function scenarioIds(result: BenchResult): string[] {
  const ids: string[] = [];
  for (const r of result.runs) if (!ids.includes(r.scenario)) ids.push(r.scenario);
  return ids;
}

function sortedRuns(result: BenchResult, scenario: string): RunResult[] {
  return result.runs.filter((r) => r.scenario === scenario).sort((a, b) => PEER_ORDER.indexOf(a.peer) - PEER_ORDER.indexOf(b.peer));
}

function describeScenario(runs: RunResult[], id: string): string {
  const r = runs[0];
  if (!r) return id;
  const kind = id.startsWith('deployment')
    ? 'one Deployment, pods placed by kube-scheduler (end to end: kube-controller-manager and kube-scheduler pace the creation)'
    : 'pods created with spec.nodeName by the Go loader';
  return `${r.pods} pods on ${r.nodes} node${r.nodes > 1 ? 's' : ''}: ${kind}`;
}

function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  if (Math.abs(n) >= 100) return String(Math.round(n));
  return n.toFixed(digits).replace(/\.0+$/, '');
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (!a || !b || !Number.isFinite(a) || !Number.isFinite(b)) return '–';
  const r = a / b;
  return `${r >= 10 ? r.toFixed(0) : r >= 0.01 ? r.toFixed(r >= 1 ? 2 : 3) : r.toPrecision(2)}×`;
}

function verbs(c: ApiCounts | undefined): string {
  if (!c) return '–';
  return Object.entries(c.byVerb)
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fmt(v, 2)}`)
    .join(', ');
}

function resources(c: ApiCounts | undefined): string {
  if (!c) return '–';
  return Object.entries(c.byResource)
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k.replace('-', '/')} ${fmt(v, 2)}`)
    .join(', ');
}

export function renderMarkdown(result: BenchResult): string {
  const m = result.machine;
  const out: string[] = [
    '# Benchmark: virtual-kubelet-ts against the physical limit and the Go peers',
    '',
    `Run ${result.startedAt} – ${result.finishedAt} on ${m.cores} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}; Node ${m.node}, ${m.go}; ` +
      `Kubernetes ${m.kubernetes} (this repository's local control plane, etcd fsync ${m.etcdFsync ? 'on' : 'off'}), a fresh control plane per run.`,
    `Peers: ${Object.entries(result.peers)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. Commands: ${(result.commands ?? []).map((c) => `\`${c}\``).join('; ')}.`,
    '',
    "Up: pods/s from the first pod's creation to the last pod Running; down: pods/s from the first deletion to the last pod gone; " +
      "latency: per pod, bound (created with spec.nodeName, or bound by the scheduler) to Running, both as the bench's own watch saw them; " +
      "RSS: peak resident set (VmHWM) of the peer's process(es), summed; CPU: utime+stime of the peer during the measured window; " +
      "API requests: kube-apiserver's own count of the peer's requests (per-peer client certificate, APF FlowSchemas per verb), per pod, over the window.",
    '',
  ];
  if (result.runs.some((r) => (r.rounds?.length ?? 0) > 1))
    out.push(
      'Rounds: where a scenario ran several rounds (--repeat), the peers took turns, each round starting with the next peer; ' +
        'a row is the peer\'s round with the median up rate, in full, and "rounds:" lists every round\'s figure, sorted.',
      '',
    );
  for (const id of scenarioIds(result)) {
    const runs = sortedRuns(result, id);
    const oursRun = runs.find((r) => r.peer === 'ours' && r.ok);
    out.push(`## ${id}`, '', describeScenario(runs, id), '');
    out.push(
      '| peer | up pods/s | down pods/s | latency p50 / p90 / p99 ms | peak RSS MiB | CPU s (ms/pod) | API requests/pod | by verb | by resource | ours ÷ peer, up pods/s | window s (machine busy CPU s, load) |',
    );
    out.push('|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|');
    for (const r of runs) {
      if (!r.ok) {
        const upFirst = r.up ? `up ${fmt(r.up.podsPerSecond)} pods/s, then ` : '';
        const why = r.notRun !== undefined ? `not run: ${r.notRun}` : `${upFirst}failed: ${r.error ?? ''}`;
        out.push(`| ${r.peer} | ${why.replace(/\|/g, '/')} | | | | | | | | | |`);
        continue;
      }
      const loader = r.up?.loaderSeconds !== undefined ? ` (loader ${fmt(r.pods / r.up.loaderSeconds, 0)}/s)` : '';
      out.push(
        `| ${r.peer} | ${fmt(r.up?.podsPerSecond)}${loader}${roundsNote(r, (x) => x.upPodsPerSecond)} | ${fmt(r.down?.podsPerSecond)} | ` +
          `${fmt(r.latencyMs?.p50)} / ${fmt(r.latencyMs?.p90)} / ${fmt(r.latencyMs?.p99)}${roundsNote(r, (x) => x.latencyP99Ms)} | ` +
          `${fmt(r.process?.peakRssMiB)}${r.process && r.process.count > 1 ? ` (${r.process.count} processes)` : ''} | ${fmt(r.process?.cpuSeconds, 2)} (${fmt(r.process?.cpuMsPerPod, 2)}) | ` +
          `${fmt(r.api?.perPod.total, 2)} | ${verbs(r.api?.perPod)} | ${resources(r.api?.perPod)} | ${r.peer === 'ours' ? '' : ratio(oursRun?.up?.podsPerSecond, r.up?.podsPerSecond)} | ` +
          `${fmt(r.windowSeconds)}${r.machineBusyCpuSeconds !== undefined ? ` (${fmt(r.machineBusyCpuSeconds)}, ${fmt(r.loadAverageAtStart)})` : ''} |`,
      );
    }
    out.push('');
    const withFigures = runs.filter((r) => r.ok && (r.events || r.startupSeconds !== undefined));
    if (withFigures.length > 0) {
      const paced = withFigures.find((r) => r.paced)?.paced;
      const pacedHead = paced ? ` paced: latency p50 / p90 / p99 ms, ${fmt(paced.pods, 0)} pods offered at ${fmt(paced.rate)}/s (loader s) |` : '';
      out.push(
        `| peer | nodes Ready s (from peer start) | Events written (per pod) | Events dropped | last Event written, s after first pod created (after last pod gone) |${pacedHead}`,
        `|---|---:|---:|---:|---:|${paced ? '---:|' : ''}`,
      );
      for (const r of withFigures) {
        const e = r.events;
        const last = e?.lastSeconds !== undefined ? `${fmt(e.lastSeconds)} (${fmt(e.lastAfterGoneSeconds)})` : e ? 'none seen' : '–';
        out.push(
          `| ${r.peer} | ${fmt(r.startupSeconds, 2)} | ${e ? `${fmt(e.written, 0)} (${fmt(e.perPod, 2)})` : '–'} | ${e?.dropped !== undefined ? fmt(e.dropped, 0) : 'not reported'} | ${last} |` +
            (paced ? ` ${pacedCell(r.paced)}${roundsNote(r, (x) => x.pacedP99Ms)} |` : ''),
        );
      }
      out.push('');
    }
  }
  out.push(
    '## Ours relative to each peer',
    '',
    'Throughput: ours ÷ peer (above 1: ours is faster); latency, RSS, CPU, requests: ours ÷ peer (below 1: ours uses less).',
    '',
  );
  out.push(
    '| scenario | peer | up pods/s | down pods/s | p50 latency | p99 latency | p99 latency, paced | peak RSS | CPU | API requests/pod |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const id of scenarioIds(result)) {
    const runs = sortedRuns(result, id);
    const o = runs.find((r) => r.peer === 'ours' && r.ok);
    if (!o) continue;
    for (const r of runs) {
      if (r.peer === 'ours' || !r.ok) continue;
      out.push(
        `| ${id} | ${r.peer} | ${ratio(o.up?.podsPerSecond, r.up?.podsPerSecond)} | ${ratio(o.down?.podsPerSecond, r.down?.podsPerSecond)} | ${ratio(o.latencyMs?.p50, r.latencyMs?.p50)} | ` +
          `${ratio(o.latencyMs?.p99, r.latencyMs?.p99)} | ${ratio(o.paced?.latencyMs?.p99, r.paced?.latencyMs?.p99)} | ${ratio(o.process?.peakRssMiB, r.process?.peakRssMiB)} | ${ratio(o.process?.cpuSeconds, r.process?.cpuSeconds)} | ${ratio(o.api?.perPod.total, r.api?.perPod.total)} |`,
      );
    }
  }
  if (result.notes?.length) out.push('', '## Notes', '', ...result.notes.map((n) => `- ${n}`));
  out.push('', '## How each peer ran', '');
  const seen = new Set<string>();
  for (const r of result.runs) {
    const key = `${r.peer}:${r.how}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(`- **${r.peer}** (${r.nodes} node${r.nodes > 1 ? 's' : ''}): ${r.how}`);
  }
  const commits = [...new Set(result.runs.filter((r) => r.peer === 'ours' && r.commit).map((r) => `${r.scenario}: ${r.commit}`))];
  if (commits.length) out.push('', `Ours ran from: ${commits.join('; ')}.`);
  out.push('');
  return out.join('\n');
}

function pacedCell(paced: PacedRound | undefined): string {
  if (!paced) return '–';
  if (!paced.latencyMs) return `failed: ${(paced.error ?? '').replace(/\|/g, '/')}`;
  const l = paced.latencyMs;
  return `${fmt(l.p50)} / ${fmt(l.p90)} / ${fmt(l.p99)} (${fmt(paced.loaderSeconds)})`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Horizontal bars: creation and deletion throughput per scenario and peer (each panel on its own linear scale). */
export function renderSvg(result: BenchResult): string {
  const ids = scenarioIds(result);
  const rowH = 16;
  const labelW = 150;
  const panelW = 300;
  const gap = 30;
  const width = labelW + 2 * panelW + gap + 60;
  const rows: { id: string; run: RunResult }[] = [];
  for (const id of ids) for (const run of sortedRuns(result, id)) rows.push({ id, run });
  const maxUp = Math.max(1, ...rows.map((r) => r.run.up?.podsPerSecond ?? 0));
  const maxDown = Math.max(1, ...rows.map((r) => r.run.down?.podsPerSecond ?? 0));
  const parts: string[] = [];
  let y = 48;
  for (const id of ids) {
    parts.push(`<text x="8" y="${y + 11}" font-weight="bold">${esc(id)}</text>`);
    y += rowH + 2;
    for (const run of sortedRuns(result, id)) {
      const color = COLORS[run.peer] ?? '#444';
      parts.push(`<text x="20" y="${y + 11}">${esc(run.peer)}</text>`);
      if (!run.ok) {
        parts.push(`<text x="${labelW}" y="${y + 11}" fill="#b91c1c">failed</text>`);
      } else {
        const up = run.up?.podsPerSecond ?? 0;
        const down = run.down?.podsPerSecond ?? 0;
        const wUp = Math.max(1, (up / maxUp) * panelW);
        const wDown = Math.max(1, (down / maxDown) * panelW);
        const x2 = labelW + panelW + gap;
        parts.push(`<rect x="${labelW}" y="${y + 2}" width="${wUp.toFixed(1)}" height="${rowH - 4}" fill="${color}"/>`);
        parts.push(`<text x="${(labelW + wUp + 4).toFixed(1)}" y="${y + 11}">${fmt(up)}</text>`);
        parts.push(`<rect x="${x2}" y="${y + 2}" width="${wDown.toFixed(1)}" height="${rowH - 4}" fill="${color}" opacity="0.6"/>`);
        parts.push(`<text x="${(x2 + wDown + 4).toFixed(1)}" y="${y + 11}">${fmt(down)}</text>`);
      }
      y += rowH;
    }
    y += 8;
  }
  const height = y + 24;
  const m = result.machine;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">Pods/s: creation → Running (left), deletion → gone (right)</text>`,
    `<text x="8" y="32" fill="#555">${esc(
      `${m.cores} cores, Kubernetes ${m.kubernetes}, ${m.node}, ${result.startedAt.slice(0, 10)}; ${Object.entries(result.peers)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    )}</text>`,
    ...parts,
    `<text x="8" y="${height - 8}" fill="#555">Each panel has its own linear scale. Details: latest.md</text>`,
    '</svg>',
    '',
  ].join('\n');
}
