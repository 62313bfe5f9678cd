// Drives the e2e.test binary: lists the specs a focus selects (Ginkgo's dry run), splits them
// into shards that run as parallel processes ([Serial] ones alone, afterwards), runs a shard with
// JUnit and JSON reports, and reads the outcome of every spec back from the JSON report.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VkError } from '../../src/errors.ts';

export interface Spec {
  /** The full text Ginkgo matches --ginkgo.focus against: containers and leaf, space-separated. */
  name: string;
  serial: boolean;
}

export type Outcome = 'passed' | 'failed' | 'skipped';

export interface SpecResult {
  name: string;
  outcome: Outcome;
  /** Seconds. */
  duration: number;
  /** The failure's or skip's first line. */
  message?: string;
}

interface GinkgoSpecReport {
  ContainerHierarchyTexts: string[] | null;
  LeafNodeText: string;
  LeafNodeType: string;
  State: string;
  RunTime: number;
  Failure?: { Message?: string; Location?: { FileName?: string; LineNumber?: number } };
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A focus regex matching these specs by their full text (Ginkgo matches it against the suite's description and the text: no anchors). */
export function focusFor(specs: readonly Spec[]): string {
  return specs.map((s) => escapeRegex(s.name)).join('|');
}

function fullText(report: GinkgoSpecReport): string {
  return [...(report.ContainerHierarchyTexts ?? []), report.LeafNodeText].join(' ');
}

function firstLine(text: string | undefined): string | undefined {
  const line = text
    ?.split('\n')
    .map((l) => l.trim())
    .find(Boolean);
  return line && line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** Reads a Ginkgo JSON report: every It's outcome. */
export async function readReport(file: string): Promise<SpecResult[]> {
  const suites = JSON.parse(await readFile(file, 'utf8')) as { SpecReports: GinkgoSpecReport[] | null }[];
  const results: SpecResult[] = [];
  for (const suite of suites) {
    for (const report of suite.SpecReports ?? []) {
      if (report.LeafNodeType !== 'It') continue;
      const outcome: Outcome = report.State === 'passed' ? 'passed' : report.State === 'skipped' || report.State === 'pending' ? 'skipped' : 'failed';
      const message = outcome === 'passed' ? undefined : (firstLine(report.Failure?.Message) ?? report.State);
      results.push({ name: fullText(report), outcome, duration: report.RunTime / 1e9, ...(message && { message }) });
    }
  }
  return results;
}

export interface RunOptions {
  e2eTest: string;
  kubeconfig: string;
  repoList: string;
  /** Where the reports and the log go: <outDir>/<label>.{junit.xml,json,log}. */
  outDir: string;
  label: string;
  focus: string;
  skip?: string;
  dryRun?: boolean;
  /** Interrupts the run (Ginkgo cleans up and writes its report). */
  signal?: AbortSignal;
  progress: (line: string) => void;
}

/** Runs e2e.test once; resolves with the JSON report's results (the binary exits non-zero when a spec fails). */
export async function runE2e(options: RunOptions): Promise<SpecResult[]> {
  const base = path.join(options.outDir, options.label);
  const args = [
    `--kubeconfig=${options.kubeconfig}`,
    '--provider=skeleton',
    '--minStartupPods=0',
    '--disable-log-dump',
    '--dump-logs-on-failure=false',
    `--ginkgo.focus=${options.focus}`,
    ...(options.skip ? [`--ginkgo.skip=${options.skip}`] : []),
    `--ginkgo.junit-report=${base}.junit.xml`,
    `--ginkgo.json-report=${base}.json`,
    '--ginkgo.flake-attempts=1',
    '--ginkgo.timeout=3h',
    '--ginkgo.no-color',
    ...(options.dryRun ? ['--ginkgo.dry-run'] : []),
  ];
  const log = createWriteStream(`${base}.log`);
  // Some specs (kubectl's kuberc ones) leave directories in TMPDIR: a scratch one, removed after the run.
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'vk-k8s-e2e-'));
  const started = Date.now();
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('nice', ['-n', '10', options.e2eTest, ...args], {
        env: { ...process.env, KUBE_TEST_REPO_LIST: options.repoList, TMPDIR: tmpDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.pipe(log, { end: false });
      child.stderr.pipe(log, { end: false });
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          // Ginkgo's one line per finished spec ("•" passed, "S" skipped, "[FAILED]").
          if (/^\s*(•|\[FAILED\]|\[PANICKED\]|\[TIMEDOUT\])/.test(line) && !options.dryRun)
            options.progress(`  ${options.label}: ${line.trim().slice(0, 160)}`);
        }
      });
      const interrupt = () => child.kill('SIGINT');
      options.signal?.addEventListener('abort', interrupt, { once: true });
      child.on('error', reject);
      child.on('exit', (exitCode) => {
        options.signal?.removeEventListener('abort', interrupt);
        resolve(exitCode);
      });
    });
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
  await new Promise((resolve) => log.end(resolve));
  try {
    const results = await readReport(`${base}.json`);
    if (!options.dryRun) options.progress(`${options.label}: ${results.length} specs in ${Math.round((Date.now() - started) / 1000)}s (exit ${code})`);
    return results;
  } catch (err) {
    throw new VkError('VK_CLUSTER', `e2e.test (${options.label}) exited ${code} without a report: see ${base}.log (${(err as Error).message})`);
  }
}

/** Deals the specs round-robin into `count` shards (the slow probe and hook specs spread out by name order). */
export function shard<T>(items: readonly T[], count: number): T[][] {
  const shards: T[][] = Array.from({ length: Math.max(1, count) }, () => []);
  items.forEach((item, i) => shards[i % shards.length]!.push(item));
  return shards.filter((s) => s.length > 0);
}
