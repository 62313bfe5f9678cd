// Builds the benchmark's Go programs once and caches them under
// ~/.cache/virtual-kubelet-ts/bench/<name>-<version>/ (like src/cluster/binary.ts does for the
// control plane): the ceiling client/loader from bench/go/ceiling, and the peers from their
// pinned upstream modules, each through its own go.mod under bench/go/<peer>/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cacheRoot } from '../src/cluster/binary.ts';
import { goBuild } from '../src/cluster/go-build.ts';

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

function goBuildIn(name: string, moduleDir: string, pkg: string, output: string, progress: Progress, ldflags = '-s -w'): Promise<void> {
  return goBuild({ name, cwd: path.join(BENCH_GO_DIR, moduleDir), pkg, output, ldflags, env: goEnv(), flags: ['-trimpath'], progress });
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
  if (!existsSync(binary)) await goBuildIn('the ceiling client (bench/go/ceiling)', 'ceiling', '.', binary, progress);
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
  if (!existsSync(binary)) await goBuildIn(`upstream virtual-kubelet ${version} (bench/go/upstream-vk)`, 'upstream-vk', '.', binary, progress);
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
  if (!existsSync(binary))
    await goBuildIn(`kwok ${version}`, 'kwok', `${KWOK_MODULE}/cmd/kwok`, binary, progress, `-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${version}`);
  {
    const moduleDir = execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', KWOK_MODULE], {
      cwd: path.join(BENCH_GO_DIR, 'kwok'),
      encoding: 'utf8',
      env: goEnv(),
    }).trim();
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
