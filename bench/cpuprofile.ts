// Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. ours in a benchmark run with
// BENCH_OURS_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): self time by function and by area.
//
//   node bench/cpuprofile.ts FILE.cpuprofile [--top 40]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Coarse areas, first match wins (matched against "url functionName"). */
const AREAS: [string, RegExp][] = [
  ['idle', /^ \(idle\)$/],
  ['garbage collection', /\(garbage collector\)/],
  ['JSON parse/stringify', / (parse|stringify)$|JSON/],
  ['TLS/crypto', /node:internal\/tls|_tls_|node:tls|crypto|\(program\).*tls/],
  ['HTTP client (node:http/_http_*)', /node:_http|node:http|node:https|_http_|internal\/http/],
  ['net/streams', /node:net|node:stream|internal\/streams|node:internal\/stream_base|internal\/net|TCPWRAP|writev|onStreamRead/],
  ['logging (pino)', /pino|sonic-boom|thread-stream/],
  ['validation (zod)', /zod/],
  ['prom-client', /prom-client/],
  ['kube client (src/kube/client.ts)', /src\/kube\/client\.ts/],
  ['informer (src/kube/informer.ts)', /src\/kube\/informer\.ts/],
  ['pod controller + status (src/pods/)', /src\/pods\//],
  ['node controller (src/node/)', /src\/node\//],
  ['mock provider (src/providers/)', /src\/providers\//],
  ['other src/', /\/src\//],
  ['timers/promises/microtasks', /node:internal\/timers|processTicksAndRejections|runMicrotasks|node:internal\/process\/task_queues|async_hooks/],
  ['program (native, unattributed)', /\(program\)/],
  ['other node internals', /^node:|internal\//],
  ['other', /.*/],
];

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: node bench/cpuprofile.ts FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFunction = new Map<string, number>();
const byArea = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/');
  const name = `${n.callFrame.functionName || '(anonymous)'} ${url}${url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const key = `${n.callFrame.url} ${n.callFrame.functionName}`;
  const area = AREAS.find(([, re]) => re.test(key))![0];
  byArea.set(area, (byArea.get(area) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
const busy = total - (byArea.get('idle') ?? 0);
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy\n\nby area (self time, % of all samples):\n`);
for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${pct(us)}  ${(us / 1e6).toFixed(2).padStart(7)} s  ${area}\n`);
process.stdout.write(`\ntop ${values.top} functions by self time:\n`);
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) process.stdout.write(`  ${pct(us)}  ${name}\n`);
