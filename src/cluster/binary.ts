// Builds the vk-cluster binary (controlplane/) once per source hash and caches it outside the
// work tree, so fresh clones on the same machine reuse it and Go's build cache covers the rest.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VkError } from '../errors.ts';
import { goBuild, goToolchainVersion } from './go-build.ts';

const CONTROLPLANE_DIR = path.resolve(import.meta.dirname, '../../controlplane');

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
  const goVersion = goToolchainVersion('the local control plane');
  const version = kubernetesVersion();
  const dir = path.join(cacheRoot(), `vk-cluster-${version}-${sourceHash(goVersion)}`);
  const result = { binary: path.join(dir, 'vk-cluster'), kubectl: path.join(dir, 'kubectl'), kubernetesVersion: version };
  if (existsSync(result.binary) && existsSync(result.kubectl)) return result;

  mkdirSync(dir, { recursive: true });
  const minor = version.split('.')[1];
  const ldflags = [
    '-s',
    '-w',
    `-X main.kubernetesVersion=${version}`,
    `-X k8s.io/component-base/version.gitVersion=${version}`,
    '-X k8s.io/component-base/version.gitMajor=1',
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    '-X k8s.io/component-base/version.gitTreeState=clean',
  ].join(' ');
  await goBuild({ name: `the Kubernetes ${version} control plane`, cwd: CONTROLPLANE_DIR, pkg: '.', output: result.binary, ldflags, progress });
  rmSync(result.kubectl, { force: true });
  symlinkSync('vk-cluster', result.kubectl);
  return result;
}
