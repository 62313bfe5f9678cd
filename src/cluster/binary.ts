// Builds the vk-cluster binary (controlplane/) once per source hash and caches it outside the
// work tree, so fresh clones on the same machine reuse it and Go's build cache covers the rest.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { VkError } from '../errors.ts';

export const CONTROLPLANE_DIR = path.resolve(import.meta.dirname, '../../controlplane');

export interface ClusterBinary {
  binary: string;
  kubectl: string;
  kubernetesVersion: string;
}

export function cacheRoot(): string {
  return process.env.VK_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'virtual-kubelet-ts');
}

export function kubernetesVersion(): string {
  const goMod = readFileSync(path.join(CONTROLPLANE_DIR, 'go.mod'), 'utf8');
  const match = /^\s*(?:require\s+)?k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\s*$/m.exec(goMod);
  if (!match?.[1]) throw new VkError('VK_CLUSTER', 'controlplane/go.mod does not pin k8s.io/kubernetes');
  return match[1];
}

function sourceHash(goVersion: string): string {
  const hash = createHash('sha256').update(goVersion);
  for (const file of readdirSync(CONTROLPLANE_DIR).sort()) {
    if (file === 'go.mod' || file === 'go.sum' || file.endsWith('.go')) {
      hash.update(file).update(readFileSync(path.join(CONTROLPLANE_DIR, file)));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** Returns the cached binary, building it first when the Go sources or Go itself changed. */
export async function ensureClusterBinary(progress: (line: string) => void = () => {}): Promise<ClusterBinary> {
  let goVersion: string;
  try {
    goVersion = execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new VkError('VK_CLUSTER', 'the Go toolchain is needed to build the local control plane: `go` is not on PATH');
  }
  const version = kubernetesVersion();
  const dir = path.join(cacheRoot(), `vk-cluster-${version}-${sourceHash(goVersion)}`);
  const result = { binary: path.join(dir, 'vk-cluster'), kubectl: path.join(dir, 'kubectl'), kubernetesVersion: version };
  if (existsSync(result.binary) && existsSync(result.kubectl)) return result;

  mkdirSync(dir, { recursive: true });
  const minor = version.split('.')[1];
  const ldflags = [
    '-s', '-w',
    `-X main.kubernetesVersion=${version}`,
    `-X k8s.io/component-base/version.gitVersion=${version}`,
    '-X k8s.io/component-base/version.gitMajor=1',
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    '-X k8s.io/component-base/version.gitTreeState=clean',
  ].join(' ');
  const total = execFileSync('go', ['list', '-deps', '.'], { cwd: CONTROLPLANE_DIR, encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n').filter(Boolean).length;
  progress(`building the Kubernetes ${version} control plane (${total} Go packages; first build takes minutes, later ones are cached)`);
  const tmp = `${result.binary}.tmp-${process.pid}`;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', ['build', '-v', `-ldflags=${ldflags}`, '-o', tmp, '.'], { cwd: CONTROLPLANE_DIR, stdio: ['ignore', 'inherit', 'pipe'] });
    let compiled = 0;
    let lastReport = 0;
    const tail: string[] = [];
    createInterface({ input: child.stderr }).on('line', (line) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      compiled++;
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        progress(`  compiled ${compiled} packages not in Go's build cache (of ${total}), ${Math.round((Date.now() - started) / 1000)}s: ${line}`);
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new VkError('VK_CLUSTER', `go build of controlplane/ failed (exit ${code}):\n${tail.join('\n')}`));
    });
  });
  renameSync(tmp, result.binary);
  rmSync(result.kubectl, { force: true });
  symlinkSync('vk-cluster', result.kubectl);
  progress(`built ${result.binary} in ${Math.round((Date.now() - started) / 1000)}s`);
  return result;
}
