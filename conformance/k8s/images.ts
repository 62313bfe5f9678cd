// The test images the [sig-node] conformance specs pull, built without the internet: agnhost and
// nonewprivs from the Kubernetes module (conformance/k8s/build.ts), the rest as stand-ins on
// Debian's static busybox (with a static bash as /bin/sh: busybox's ash drops environment
// variables whose names are not shell identifiers, which the real image keeps). Each is pushed
// to a local registry under the name and tag the suite asks for (test/utils/image/manifest.go).
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { type ImageSpec, type LayerSpec, type TarEntrySpec, busyboxEntries } from '../../test/fixtures/registry/image-builder.ts';
import type { TestRegistry } from '../../test/fixtures/registry/registry.ts';
import type { E2eBinaries } from './build.ts';

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const STATIC_BASH = '/bin/bash-static';

/** Where the suite's registry keys point (KUBE_TEST_REPO_LIST), relative to the registry's host. */
export const REPO_PATHS = {
  promoterE2eRegistry: 'e2e-test-images',
  gcRegistry: '',
  gcEtcdRegistry: '',
  dockerLibraryRegistry: 'library',
  sigStorageRegistry: 'sig-storage',
  buildImageRegistry: 'build-image',
  cloudProviderGcpRegistry: 'cloud-provider-gcp',
} as const;

/** The KUBE_TEST_REPO_LIST file's content for a registry at `host`. */
export function repoList(host: string): string {
  return Object.entries(REPO_PATHS)
    .map(([key, sub]) => `${key}: ${sub ? `${host}/${sub}` : host}\n`)
    .join('');
}

function moduleDir(): string {
  return execFileSync('go', ['list', '-m', '-f', '{{.Dir}}', 'k8s.io/kubernetes'], { cwd: path.resolve(import.meta.dirname, 'e2e'), encoding: 'utf8' }).trim();
}

/** The shared libraries a dynamically linked binary loads (ldd), as layer entries at their paths. */
function sharedLibraries(binary: string): TarEntrySpec[] {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const files = new Set<string>();
  for (const line of out.split('\n')) {
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (match?.[1]) files.add(match[1]);
  }
  const entries: TarEntrySpec[] = [];
  for (const file of files) {
    const real = realpathSync(file);
    entries.push({ path: real.slice(1), content: readFileSync(real), mode: 0o755 });
    if (real !== file) entries.push({ path: file.slice(1), type: 'symlink', target: real });
  }
  return entries;
}

async function busyboxBase(extra: { passwd?: string; group?: string } = {}): Promise<TarEntrySpec[]> {
  const entries = (await busyboxEntries()).filter(
    (e) => e.path !== 'bin/sh' && (!extra.passwd || e.path !== 'etc/passwd') && (!extra.group || e.path !== 'etc/group'),
  );
  return [
    ...entries,
    { path: 'bin/sh', content: readFileSync(STATIC_BASH), mode: 0o755 },
    ...(extra.passwd ? [{ path: 'etc/passwd', content: extra.passwd }] : []),
    ...(extra.group ? [{ path: 'etc/group', content: extra.group }] : []),
    { path: 'usr/', type: 'directory' },
    { path: 'usr/local/', type: 'directory' },
    { path: 'usr/local/bin/', type: 'directory' },
  ];
}

// Uncompressed layers: they travel over loopback only, and gzip of agnhost (100 MB, four images) costs more than it saves.
function layer(entries: TarEntrySpec[]): LayerSpec {
  return { entries, compression: 'none' };
}

/** An image of `base` (a layer, shared between images: archived once) and, on top, `entries`. */
function image(base: LayerSpec, entries: TarEntrySpec[], config: ImageSpec['config']): ImageSpec {
  return { layers: entries.length ? [base, layer(entries)] : [base], config: { Env: [PATH_ENV], WorkingDir: '/', ...config } };
}

async function agnhostEntries(binaries: E2eBinaries, k8s: string): Promise<TarEntrySpec[]> {
  // Users and groups agnhost's Dockerfile adds (the SupplementalGroups specs look them up).
  const passwd =
    'root:x:0:0:root:/root:/bin/sh\nuser-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
  const group = 'root:x:0:\nuser-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\nnogroup:x:65534:\n';
  const porter = path.join(k8s, 'test/images/agnhost/porter');
  return [
    ...(await busyboxBase({ passwd, group })),
    ...sharedLibraries(binaries.agnhost),
    { path: 'agnhost', content: readFileSync(binaries.agnhost), mode: 0o755 },
    { path: 'agnhost-2', type: 'symlink', target: 'agnhost' },
    // The real image has curl; the lifecycle-hook specs' exec hooks run `curl http://…` (plain GETs only).
    { path: 'usr/bin/', type: 'directory' },
    { path: 'usr/bin/curl', content: '#!/bin/sh\n# curl stand-in (busybox wget): plain GETs of the URL arguments\nexec wget -q -O - "$@"\n', mode: 0o755 },
    { path: 'uploads/', type: 'directory' },
    { path: 'localhost.crt', content: readFileSync(path.join(porter, 'localhost.crt')) },
    { path: 'localhost.key', content: readFileSync(path.join(porter, 'localhost.key')) },
    { path: 'home/user-defined-in-image/', type: 'directory', uid: 1000, gid: 1000 },
  ];
}

/** Builds every image and pushes it; returns the references pushed. */
export async function pushTestImages(registry: TestRegistry, binaries: E2eBinaries, progress: (line: string) => void): Promise<string[]> {
  const k8s = moduleDir();
  const busybox = layer(await busyboxBase());
  const agnhost = layer(await agnhostEntries(binaries, k8s));
  const html = (name: 'kitten' | 'nautilus'): TarEntrySpec[] => [
    { path: `${name}.jpg`, content: readFileSync(path.join(k8s, `test/images/${name}/html/${name}.jpg`)) },
    { path: 'data.json', content: readFileSync(path.join(k8s, `test/images/${name}/html/data.json`)) },
  ];
  const nginx = image(
    busybox,
    [
      { path: 'usr/share/', type: 'directory' },
      { path: 'usr/share/nginx/', type: 'directory' },
      { path: 'usr/share/nginx/html/', type: 'directory' },
      { path: 'usr/share/nginx/html/index.html', content: '<html><body><h1>Welcome to nginx!</h1></body></html>\n' },
    ],
    { Cmd: ['httpd', '-f', '-p', '80', '-h', '/usr/share/nginx/html'], ExposedPorts: { '80/tcp': {} } },
  );
  const images: [string, ImageSpec][] = [
    ['e2e-test-images/agnhost:2.63.0', image(agnhost, [], { Entrypoint: ['/agnhost'], Cmd: ['pause'] })],
    // AgnhostPrev: the Pods lifecycle spec switches a pod from it to the current one; the same build stands in.
    ['e2e-test-images/agnhost:2.55', image(agnhost, [], { Entrypoint: ['/agnhost'], Cmd: ['pause'] })],
    ['e2e-test-images/busybox:1.37.0-1', image(busybox, [], { Cmd: ['sh'] })],
    ['e2e-test-images/nginx:1.15-4', nginx],
    ['e2e-test-images/nginx:1.27-0', nginx],
    ['e2e-test-images/kitten:1.8', image(agnhost, html('kitten'), { Entrypoint: ['/agnhost'], Cmd: ['test-webserver'] })],
    ['e2e-test-images/nautilus:1.8', image(agnhost, html('nautilus'), { Entrypoint: ['/agnhost'], Cmd: ['test-webserver'] })],
    ['e2e-test-images/nonroot:1.5', image(busybox, [], { Cmd: ['sh'], User: '1234' })],
    ['e2e-test-images/nonewprivs:1.4', image(busybox, [{ path: 'usr/local/bin/nnp', content: readFileSync(binaries.nnp), mode: 0o4755 }], { Cmd: ['nnp'] })],
    ['pause:3.10.2', image(agnhost, [], { Entrypoint: ['/agnhost', 'pause'] })],
  ];
  const pushed: string[] = [];
  for (const [ref, spec] of images) {
    const colon = ref.lastIndexOf(':');
    const result = await registry.pushImage(ref.slice(0, colon), spec, { tag: ref.slice(colon + 1) });
    progress(`pushed ${result.reference}`);
    pushed.push(result.reference);
  }
  return pushed;
}
