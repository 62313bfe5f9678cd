// `go build` (or `go test -c`) with progress lines and an atomic rename into place: used for the control plane,
// metrics-server, the benchmark's Go peers and the Kubernetes e2e suite.
import { execFileSync, spawn } from 'node:child_process';
import { renameSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { VkError } from '../errors.ts';

export interface GoBuildOptions {
  /** What the progress lines call it. */
  name: string;
  cwd: string;
  pkg: string;
  output: string;
  ldflags: string;
  env?: NodeJS.ProcessEnv;
  /** Extra `go build` flags, e.g. -trimpath. */
  flags?: string[];
  /** Compile the package's test binary (`go test -c`) instead of the package. */
  test?: boolean;
  progress: (line: string) => void;
}

/** `go version`'s line (part of every build cache key), or an error saying what needs Go. */
export function goToolchainVersion(needed: string): string {
  try {
    return execFileSync('go', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    throw new VkError('VK_CLUSTER', `the Go toolchain is needed to build ${needed}: \`go\` is not on PATH`);
  }
}

export async function goBuild(options: GoBuildOptions): Promise<void> {
  const { name, cwd, pkg, output, ldflags, env = process.env, flags = [], test = false, progress } = options;
  const total = execFileSync('go', ['list', '-deps', ...(test ? ['-test'] : []), pkg], { cwd, encoding: 'utf8', env, maxBuffer: 64 << 20 })
    .split('\n')
    .filter(Boolean).length;
  progress(`building ${name} (${total} Go packages; the first build takes minutes, later ones are cached)`);
  const tmp = `${output}.tmp-${process.pid}`;
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    // `go test -c` lists no packages as it compiles them (its -v is the test binary's flag): a timer reports instead.
    const command = test ? ['test', '-c'] : ['build', '-v'];
    const child = spawn('go', [...command, ...flags, `-ldflags=${ldflags}`, '-o', tmp, pkg], { cwd, env, stdio: ['ignore', 'inherit', 'pipe'] });
    const ticker = test ? setInterval(() => progress(`  ${name}: compiling, ${Math.round((Date.now() - started) / 1000)}s`), 30_000) : undefined;
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
    child.on('exit', () => clearInterval(ticker));
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new VkError('VK_CLUSTER', `go build of ${name} (${pkg}) failed (exit ${code}):\n${tail.join('\n')}`)),
    );
  });
  renameSync(tmp, output);
  progress(`built ${output} in ${Math.round((Date.now() - started) / 1000)}s`);
}
