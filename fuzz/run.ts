// npm run fuzz -- [--runs N] [--seed S] [--idle N] [--slow-clients N] [--slow-seconds S] [--only kubelet-api|remote-protocol|pod-specs]
// Runs the fuzz targets with fast-check (a fixed default seed, so a run repeats) and writes
// fuzz/results/latest.json and latest.md. Exits 1 when a property failed or a target crashed;
// each failure names its seed, fast-check's replay path and the shrunk input.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fuzzKubeletApi, type KubeletApiFuzzResult } from './kubelet-api.ts';
import { fuzzPodSpecs, type PodSpecFuzzResult } from './pod-specs.ts';
import { fuzzRemoteProtocol, type RemoteProtocolFuzzResult } from './remote-protocol.ts';
import { DEFAULT_SEED } from './property.ts';
import { renderMarkdown } from './report.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '1000' },
    seed: { type: 'string', default: String(DEFAULT_SEED) },
    idle: { type: 'string', default: '10000' },
    'slow-clients': { type: 'string', default: '500' },
    'slow-seconds': { type: 'string', default: '20' },
    only: { type: 'string' },
    out: { type: 'string', default: path.join(import.meta.dirname, 'results') },
  },
});
const runs = Number(values.runs);
const seed = Number(values.seed);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${values.runs}: expected a positive integer`);
if (!Number.isInteger(seed)) throw new Error(`--seed ${values.seed}: expected an integer`);

const startedAt = new Date().toISOString();
const targets: (KubeletApiFuzzResult | RemoteProtocolFuzzResult | PodSpecFuzzResult)[] = [];
if (!values.only || values.only === 'kubelet-api') {
  console.log(`kubelet-api: ${runs} runs per property, seed ${seed}`);
  targets.push(
    await fuzzKubeletApi({
      runs,
      seed,
      idleConnections: Number(values.idle),
      slowClients: Number(values['slow-clients']),
      slowSeconds: Number(values['slow-seconds']),
    }),
  );
}
if (!values.only || values.only === 'remote-protocol') {
  console.log(`remote-protocol: ${runs} runs per property, seed ${seed}`);
  targets.push(await fuzzRemoteProtocol({ runs, seed }));
}
if (!values.only || values.only === 'pod-specs') {
  console.log(`pod-specs: ${runs} runs, seed ${seed}`);
  targets.push(await fuzzPodSpecs({ runs, seed }));
}

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: import.meta.dirname, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'fuzz/*.ts'], {
    cwd: path.join(import.meta.dirname, '..'),
    encoding: 'utf8',
  }).trim();
  if (dirty) commit += '+dirty';
} catch {
  // not a git checkout
}
const result = {
  schema: 1,
  startedAt,
  finishedAt: new Date().toISOString(),
  command: `npm run fuzz -- ${process.argv.slice(2).join(' ')}`.trim(),
  commit,
  machine: { cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version },
  settings: { runs, seed, idle: Number(values.idle), slowClients: Number(values['slow-clients']), slowSeconds: Number(values['slow-seconds']) },
  targets,
};
mkdirSync(values.out, { recursive: true });
writeFileSync(path.join(values.out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
const markdown = renderMarkdown(result);
writeFileSync(path.join(values.out, 'latest.md'), markdown);
console.log(markdown);
const failed = targets.some((t) => t.crashed || t.properties.some((p) => p.failed));
process.exitCode = failed ? 1 : 0;
