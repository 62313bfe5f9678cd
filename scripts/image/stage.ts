// What goes into the vk image, as three layers (least to most often changed):
//   runtime: Node (the pinned npm `node` package's binary, stripped of debug symbols), the
//            shared libraries ldd says it loads, CA certificates, passwd/group with the
//            non-root user 65532, /tmp and the user's home;
//   deps:    the production dependencies (`npm ci --omit=dev`, cached by package-lock.json),
//            pruned of what Node never loads at run time;
//   app:     package.json, bin/ and src/ without tests.
// Node and the dependencies are prepared once per input hash under the cache root, like the
// control plane's binary (src/cluster/binary.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { cacheRoot } from '../../src/cluster/binary.ts';
import type { LayerEntry } from './layer.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
export const APP_DIR = 'app';
export const NODE_PATH = 'usr/local/bin/node';
export const NONROOT_UID = 65532;
const CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

type Progress = (line: string) => void;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The pinned Node binary, stripped of its debug sections (108 MB instead of 127 MB); cached by its hash. */
export async function strippedNode(progress: Progress): Promise<string> {
  const source = await realpath(path.join(REPO_ROOT, 'node_modules/node/bin/node'));
  const dir = path.join(cacheRoot(), `image-node-${(await sha256File(source)).slice(0, 16)}`);
  const stripped = path.join(dir, 'node');
  if (existsSync(stripped)) return stripped;
  await mkdir(dir, { recursive: true });
  const tmp = `${stripped}.tmp-${process.pid}`;
  try {
    execFileSync('strip', ['--strip-all', '-o', tmp, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    progress(`stripped ${source} into ${stripped}`);
  } catch (err) {
    progress(`strip failed (${(err as Error).message.split('\n')[0]}): the image gets Node with its debug symbols`);
    await copyFile(source, tmp);
  }
  await rename(tmp, stripped);
  return stripped;
}

/** The libraries `ldd` says a binary loads, as [path in the image, file on this host]. */
export function sharedLibraries(binary: string): [string, string][] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const found: [string, string][] = [];
  for (const line of out.split('\n')) {
    const match = /=>\s*(\/\S+)\s+\(|^\s*(\/\S+)\s+\(/.exec(line);
    const lib = match?.[1] ?? match?.[2];
    if (lib) found.push([lib.replace(/^\//, ''), lib]);
  }
  if (!found.some(([p]) => p.includes('ld-linux') || p.includes('ld-musl'))) throw new Error(`ldd ${binary} named no dynamic loader:\n${out}`);
  return found;
}

const PASSWD = `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n`;
const GROUP = `root:x:0:\nnonroot:x:${NONROOT_UID}:\nnobody:x:65534:\n`;

export async function runtimeEntries(progress: Progress): Promise<LayerEntry[]> {
  const node = await strippedNode(progress);
  const entries: LayerEntry[] = [{ path: NODE_PATH, type: 'file', mode: 0o755, source: node }];
  for (const [inImage, onHost] of sharedLibraries(node)) entries.push({ path: inImage, type: 'file', mode: 0o755, source: await realpath(onHost) });
  const bundle = CA_BUNDLES.find((file) => existsSync(file));
  if (!bundle) throw new Error(`no CA certificate bundle on this machine (looked for ${CA_BUNDLES.join(', ')}): apt-get install ca-certificates`);
  entries.push({ path: 'etc/ssl/certs/ca-certificates.crt', type: 'file', mode: 0o644, source: bundle });
  entries.push(
    { path: 'etc/passwd', type: 'file', mode: 0o644, content: Buffer.from(PASSWD) },
    { path: 'etc/group', type: 'file', mode: 0o644, content: Buffer.from(GROUP) },
    { path: 'etc/nsswitch.conf', type: 'file', mode: 0o644, content: Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n') },
    { path: 'tmp', type: 'directory', mode: 0o1777 },
    { path: 'home/nonroot', type: 'directory', mode: 0o755, owner: NONROOT_UID },
  );
  return entries;
}

/** Every file, symlink and directory under `dir` (absolute), as entries under `prefix`; `keep` filters by relative path. */
export async function treeEntries(dir: string, prefix: string, keep: (rel: string, isDir: boolean) => boolean = () => true): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const childRel = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, childRel);
      const info = await lstat(full);
      const inImage = `${prefix}/${childRel}`;
      if (info.isDirectory()) {
        if (!keep(childRel, true)) continue;
        entries.push({ path: inImage, type: 'directory' });
        await walk(childRel);
      } else if (!keep(childRel, false)) {
        continue;
      } else if (info.isSymbolicLink()) {
        entries.push({ path: inImage, type: 'symlink', target: await readlink(full) });
      } else if (info.isFile()) {
        entries.push({ path: inImage, type: 'file', mode: info.mode & 0o7777, source: full });
      }
    }
  };
  await walk('');
  return entries;
}

// Never loaded by Node at run time: type declarations, source maps, docs, TypeScript sources
// (Node does not strip types under node_modules), declaration-only packages, and the browser
// and react-native builds that only bundlers pick through package.json's `browser` field or
// export conditions.
const PRUNED_FILE = /\.(?:d\.[mc]?ts|map|md|markdown|tsbuildinfo|[mc]?ts)$/i;
const PRUNED_DIR =
  /(?:^|\/)(?:node_modules\/@types(?:\/[^/]+)?|node_modules\/undici-types|dist\/browser|dist\/react-native|node_modules\/@azure\/msal-browser)$/;

export function keepDependency(rel: string, isDir: boolean): boolean {
  const full = `node_modules/${rel}`;
  return isDir ? !PRUNED_DIR.test(full) : !PRUNED_FILE.test(rel);
}

/** node_modules with the production dependencies of package-lock.json, installed once per lock file. */
export async function productionDependencies(progress: Progress): Promise<string> {
  const lock = await readFile(path.join(REPO_ROOT, 'package-lock.json'));
  const dir = path.join(cacheRoot(), `image-deps-${createHash('sha256').update(lock).digest('hex').slice(0, 16)}`);
  const modules = path.join(dir, 'node_modules');
  if (existsSync(modules)) return modules;
  await mkdir(cacheRoot(), { recursive: true });
  const staging = await mkdtemp(path.join(cacheRoot(), 'image-deps-staging-'));
  try {
    await copyFile(path.join(REPO_ROOT, 'package.json'), path.join(staging, 'package.json'));
    await copyFile(path.join(REPO_ROOT, 'package-lock.json'), path.join(staging, 'package-lock.json'));
    progress(`installing the production dependencies into ${dir} (npm ci --omit=dev; once per package-lock.json)`);
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: staging,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await rename(staging, dir);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return modules;
}

export async function dependencyEntries(progress: Progress): Promise<LayerEntry[]> {
  return treeEntries(await productionDependencies(progress), `${APP_DIR}/node_modules`, keepDependency);
}

/** The app's sources: what `vk` runs, no tests or test data. */
export function keepSource(rel: string, isDir: boolean): boolean {
  if (isDir) return !/(?:^|\/)testdata$/.test(rel);
  return rel.endsWith('.ts') && !rel.endsWith('.test.ts');
}

export async function appEntries(): Promise<LayerEntry[]> {
  return [
    { path: `${APP_DIR}/package.json`, type: 'file', mode: 0o644, source: path.join(REPO_ROOT, 'package.json') },
    { path: `${APP_DIR}/bin/vk.js`, type: 'file', mode: 0o755, source: path.join(REPO_ROOT, 'bin/vk.js') },
    ...(await treeEntries(path.join(REPO_ROOT, 'src'), `${APP_DIR}/src`, keepSource)),
  ];
}
