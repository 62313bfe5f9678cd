// helm v4, built from its Go module at the version tools/helm/go.mod pins and cached under
// ~/.cache/virtual-kubelet-ts/helm-<version>-<hash of go.mod, go.sum and Go>/ like the control
// plane (src/cluster/binary.ts): the chart's tests and CI need no helm on the machine.
//
//   node scripts/helm.ts lint charts/virtual-kubelet     # builds once, then runs helm with these arguments
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cacheRoot } from '../src/cluster/binary.ts';
import { goBuild } from '../src/cluster/go-build.ts';

const HELM_MODULE_DIR = path.resolve(import.meta.dirname, '../tools/helm');
const HELM_MODULE = 'helm.sh/helm/v4';

export function helmVersion(): string {
  const goMod = readFileSync(path.join(HELM_MODULE_DIR, 'go.mod'), 'utf8');
  const match = /^\s*(?:require\s+)?helm\.sh\/helm\/v4 (v\d+\.\d+\.\d+)/m.exec(goMod);
  if (!match?.[1]) throw new Error('tools/helm/go.mod does not require helm.sh/helm/v4');
  return match[1];
}

/** The cached helm binary, built first when tools/helm or Go changed. */
export async function ensureHelm(progress: (line: string) => void = () => {}): Promise<string> {
  let goVersion: string;
  try {
    goVersion = execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('building helm needs the Go toolchain: `go` is not on PATH');
  }
  const version = helmVersion();
  const hash = createHash('sha256').update(goVersion);
  for (const file of ['go.mod', 'go.sum']) hash.update(file).update(readFileSync(path.join(HELM_MODULE_DIR, file)));
  const dir = path.join(cacheRoot(), `helm-${version}-${hash.digest('hex').slice(0, 16)}`);
  const binary = path.join(dir, 'helm');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const ldflags = `-s -w -X ${HELM_MODULE}/internal/version.version=${version} -X ${HELM_MODULE}/internal/version.gitTreeState=clean`;
  await goBuild({
    name: `helm ${version}`,
    cwd: HELM_MODULE_DIR,
    pkg: `${HELM_MODULE}/cmd/helm`,
    output: binary,
    ldflags,
    flags: ['-trimpath'],
    progress,
  });
  return binary;
}

if (import.meta.main) {
  const helm = await ensureHelm((line) => process.stderr.write(`${line}\n`));
  const result = spawnSync(helm, process.argv.slice(2), { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
