// Builds, once per hash of its inputs, the Kubernetes e2e suite's test binary (`e2e.test`) and
// the test programs the images need (agnhost, nonewprivs' nnp) from the Go module in e2e/, which
// pins k8s.io/kubernetes at the control plane's release. Cached like the control plane.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cacheRoot, kubernetesVersion } from '../../src/cluster/binary.ts';
import { goBuild } from '../../src/cluster/go-build.ts';
import { VkError } from '../../src/errors.ts';

export const E2E_MODULE_DIR = path.resolve(import.meta.dirname, 'e2e');

export interface E2eBinaries {
  dir: string;
  /** The Ginkgo test binary of k8s.io/kubernetes/test/e2e. */
  e2eTest: string;
  /** test/images/agnhost (dynamically linked: the image carries its loader and libc). */
  agnhost: string;
  /** test/images/nonewprivs. */
  nnp: string;
  kubernetesVersion: string;
}

function inputsHash(goVersion: string): string {
  const hash = createHash('sha256').update(goVersion);
  for (const file of readdirSync(E2E_MODULE_DIR).sort()) {
    if (file === 'go.mod' || file === 'go.sum' || file.endsWith('.go')) hash.update(file).update(readFileSync(path.join(E2E_MODULE_DIR, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** The cached binaries, built first when the module, its pins or Go itself changed. */
export async function ensureE2eBinaries(progress: (line: string) => void): Promise<E2eBinaries> {
  let goVersion: string;
  try {
    goVersion = execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new VkError('VK_CLUSTER', 'the Go toolchain is needed to build the Kubernetes e2e suite: `go` is not on PATH');
  }
  const version = kubernetesVersion();
  const dir = path.join(cacheRoot(), `k8s-e2e-${version}-${inputsHash(goVersion)}`);
  const result: E2eBinaries = {
    dir,
    e2eTest: path.join(dir, 'e2e.test'),
    agnhost: path.join(dir, 'agnhost'),
    nnp: path.join(dir, 'nnp'),
    kubernetesVersion: version,
  };
  mkdirSync(dir, { recursive: true });
  const ldflags = `-s -w -X k8s.io/component-base/version.gitVersion=${version} -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${version.split('.')[1]}`;
  // -vet=off: otherwise `go test` vets the suite and every dependency first.
  const builds = [
    { output: result.e2eTest, name: `the Kubernetes ${version} e2e suite`, pkg: 'k8s.io/kubernetes/test/e2e', test: true, flags: ['-vet=off'] },
    { output: result.agnhost, name: 'agnhost', pkg: 'k8s.io/kubernetes/test/images/agnhost', test: false, flags: [] },
    { output: result.nnp, name: 'nnp', pkg: 'k8s.io/kubernetes/test/images/nonewprivs', test: false, flags: [] },
  ];
  for (const build of builds) {
    if (existsSync(build.output)) continue;
    await goBuild({ ...build, cwd: E2E_MODULE_DIR, ldflags, progress });
  }
  return result;
}
