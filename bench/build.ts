// Builds the benchmark's Go programs once and caches them under
// ~/.cache/virtual-kubelet-ts/bench/<name>-<version>/ (like src/cluster/binary.ts does for the
// control plane): the ceiling client/loader from bench/go/ceiling, and the peers from their
// pinned upstream modules, each through its own go.mod under bench/go/<peer>/.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { cacheRoot } from '../src/cluster/binary.ts';

export const BENCH_GO_DIR = path.resolve(import.meta.dirname, 'go');

export interface BuiltBinary {
  name: string;
  version: string;
  binary: string;
  /** kwok: its configuration file with the default stages. */
  config?: string;
}

type Progress = (line: string) => void;

function goEnv(): NodeJS.ProcessEnv {
  const goBin = '/usr/local/go/bin';
  const pathVar = process.env.PATH ?? '';
  return { ...process.env, PATH: pathVar.split(':').includes(goBin) ? pathVar : `${pathVar}:${goBin}` };
}

export function goVersion(): string {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8', env: goEnv() }).trim();
  } catch {
    throw new Error('the benchmark needs the Go toolchain (`go` on PATH or in /usr/local/go/bin)');
  }
}

/** The version a module's go.mod requires of `module`. */
export function requiredVersion(moduleDir: string, module: string): string {
  const goMod = readFileSync(path.join(BENCH_GO_DIR, moduleDir, 'go.mod'), 'utf8');
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped} (v[^\\s]+)`, 'm').exec(goMod);
  if (!match?.[1]) throw new Error(`bench/go/${moduleDir}/go.mod does not require ${module}`);
  return match[1];
}

async function goBuild(name: string, moduleDir: string, pkg: string, output: string, progress: Progress, ldflags = '-s -w'): Promise<void> {
  const cwd = path.join(BENCH_GO_DIR, moduleDir);
  const env = goEnv();
  const total = execFileSync('go', ['list', '-deps', pkg], { cwd, encoding: 'utf8', env, maxBuffer: 64 << 20 }).split('\n').filter(Boolean).length;
  progress(`building ${name} (${total} Go packages; the first build takes minutes, later ones are cached)`);
  const tmp = `${output}.tmp-${process.pid}`;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['build', '-v', '-trimpath', `-ldflags=${ldflags}`, '-o', tmp, pkg], { cwd, env, stdio: ['ignore', 'inherit', 'pipe'] });
    let compiled = 0;
    let lastReport = 0;
    const tail: string[] = [];
    createInterface({ input: child.stderr }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      compiled++;
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        progress(`  ${name}: compiled ${compiled} packages not in Go's build cache (of ${total}), ${Math.round((Date.now() - started) / 1000)}s: ${line}`);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go build of ${pkg} failed (exit ${code}):\n${tail.join('\n')}`))));
  });
  renameSync(tmp, output);
  progress(`built ${output} in ${Math.round((Date.now() - started) / 1000)}s`);
}

function hashDir(dir: string): string {
  const hash = createHash('sha256').update(goVersion());
  for (const file of readdirSync(dir).sort()) {
    if (file === 'go.mod' || file === 'go.sum' || file.endsWith('.go')) hash.update(file).update(readFileSync(path.join(dir, file)));
  }
  return hash.digest('hex').slice(0, 12);
}

function benchCache(dirName: string): string {
  const dir = path.join(cacheRoot(), 'bench', dirName);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** bench/go/ceiling: `benchtool ceiling|load|mkcert`, rebuilt when its sources change. */
export async function ensureBenchtool(progress: Progress = () => {}): Promise<BuiltBinary> {
  const version = `client-go-${requiredVersion('ceiling', 'k8s.io/client-go')}-${hashDir(path.join(BENCH_GO_DIR, 'ceiling'))}`;
  const binary = path.join(benchCache(`ceiling-${version}`), 'benchtool');
  if (!existsSync(binary)) await goBuild('the ceiling client (bench/go/ceiling)', 'ceiling', '.', binary, progress);
  return { name: 'ceiling', version, binary };
}

export const UPSTREAM_VK_MODULE = 'github.com/virtual-kubelet/virtual-kubelet';

/**
 * One node of upstream virtual-kubelet at the release bench/go/upstream-vk pins: its node/nodeutil
 * library with cmd/virtual-kubelet's settings and a mock provider (bench/go/upstream-vk/main.go:
 * the release's own cmd crashes under load, see there).
 */
export async function ensureUpstreamVk(progress: Progress = () => {}): Promise<BuiltBinary> {
  const version = requiredVersion('upstream-vk', UPSTREAM_VK_MODULE);
  const binary = path.join(benchCache(`upstream-vk-${version}-${hashDir(path.join(BENCH_GO_DIR, 'upstream-vk'))}`), 'upstream-vk');
  if (!existsSync(binary)) await goBuild(`upstream virtual-kubelet ${version} (bench/go/upstream-vk)`, 'upstream-vk', '.', binary, progress);
  return { name: 'upstream', version, binary };
}

export const KWOK_MODULE = 'sigs.k8s.io/kwok';

/**
 * kwok at the release bench/go/kwok pins, plus a configuration with the stages kwokctl gives a
 * cluster by default (node-initialize, node-heartbeat-with-lease, pod-ready, pod-complete,
 * pod-delete), read from that release's own kustomize/stage files.
 */
export async function ensureKwok(progress: Progress = () => {}): Promise<BuiltBinary> {
  const version = requiredVersion('kwok', KWOK_MODULE);
  const dir = benchCache(`kwok-${version}`);
  const binary = path.join(dir, 'kwok');
  const config = path.join(dir, 'kwok-default-stages.yaml');
  if (!existsSync(binary)) await goBuild(`kwok ${version}`, 'kwok', `${KWOK_MODULE}/cmd/kwok`, binary, progress, `-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${version}`);
  {
    const moduleDir = execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', KWOK_MODULE], { cwd: path.join(BENCH_GO_DIR, 'kwok'), encoding: 'utf8', env: goEnv() }).trim();
    const stages = [
      'kustomize/stage/node/fast/node-initialize.yaml',
      'kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
      'kustomize/stage/pod/fast/pod-ready.yaml',
      'kustomize/stage/pod/fast/pod-complete.yaml',
      'kustomize/stage/pod/fast/pod-delete.yaml',
    ].map((file) => readFileSync(path.join(moduleDir, file), 'utf8').trim());
    // kwok applies its option defaults only when no KwokConfiguration is given: spell them out.
    const options = [
      'apiVersion: config.kwok.x-k8s.io/v1alpha1',
      'kind: KwokConfiguration',
      'options:',
      '  podPlayStageParallelism: 4',
      '  nodePlayStageParallelism: 4',
      '  nodeLeaseParallelism: 4',
      '  podsOnNodeSyncParallelism: 1',
      '  enablePodsOnNodeSyncListPager: true',
      '  enablePodsOnNodeSyncStreamWatch: false',
    ].join('\n');
    writeFileSync(config, `${[options, ...stages].join('\n---\n')}\n`);
  }
  return { name: 'kwok', version, binary, config };
}
