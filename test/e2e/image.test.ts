// `npm run image` end to end: two builds from the same inputs give the same digest and the same
// archive bytes; the image's root filesystem runs vk as user 65532 with every lazily loaded
// dependency present after pruning; the push client uploads it to a real registry (Debian's
// docker-registry on loopback), which then serves the same manifest digest to the pull client.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { RegistryClient } from '../../src/providers/sandbox/image/registry-client.ts';
import { parseImageReference } from '../../src/providers/sandbox/image/reference.ts';
import { buildImage, type BuiltImage, IMAGE_RUNTIME_CONFIG, pushBuiltImage } from '../../scripts/image/build.ts';
import { blobPath } from '../../scripts/image/oci-layout.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { fileScope } from '../harness/cluster.ts';
import { tempDir } from '../harness/temp.ts';

const execFileAsync = promisify(execFile);
const scope = fileScope();
const progress = (line: string) => process.stderr.write(`[image] ${line}\n`);
const isRoot = process.getuid?.() === 0;

let first: BuiltImage;

test('two builds from the same inputs give the same image digest and the same archive bytes', async () => {
  first = await buildImage({ outDir: tempDir(scope, 'vk-image-a-'), tag: 'virtual-kubelet-ts:test', progress });
  const second = await buildImage({ outDir: tempDir(scope, 'vk-image-b-'), tag: 'virtual-kubelet-ts:test', progress });
  assert.equal(second.digest, first.digest);
  assert.deepEqual(
    second.layers.map((l) => l.layer.digest),
    first.layers.map((l) => l.layer.digest),
  );
  assert.ok(readFileSync(second.archive).equals(readFileSync(first.archive)), 'the archives differ');
  const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
  progress(`digest ${first.digest}: ${mib(first.uncompressedSize)} MiB uncompressed, ${mib(first.compressedSize)} MiB compressed`);
  for (const { name, layer } of first.layers) progress(`  ${name}: ${mib(layer.uncompressedSize)} MiB`);

  const config = JSON.parse(readFileSync(blobPath(first.layoutDir, first.documents.config.descriptor.digest), 'utf8')) as {
    config: typeof IMAGE_RUNTIME_CONFIG;
    rootfs: { diff_ids: string[] };
  };
  assert.equal(config.config.User, '65532:65532');
  assert.deepEqual(config.config.Entrypoint, ['/usr/local/bin/node', '/app/bin/vk.js']);
  assert.deepEqual(
    config.rootfs.diff_ids,
    first.layers.map((l) => l.layer.diffId),
  );
  const index = JSON.parse(readFileSync(path.join(first.layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(index.manifests[0]?.digest, first.digest);
  const { stdout } = await execFileAsync('tar', ['-tf', first.archive]);
  const names = stdout.split('\n');
  for (const name of ['oci-layout', 'index.json', 'manifest.json', `blobs/sha256/${first.digest.slice(7)}`])
    assert.ok(names.includes(name), `archive lacks ${name}`);
  // skopeo (when installed) reads the archive both as an OCI archive and as what `docker load` reads.
  const skopeo = await execFileAsync('skopeo', ['--version']).then(
    () => true,
    () => false,
  );
  if (skopeo) {
    const oci = JSON.parse((await execFileAsync('skopeo', ['inspect', `oci-archive:${first.archive}`])).stdout) as { Digest: string };
    assert.equal(oci.Digest, first.digest);
    const docker = JSON.parse((await execFileAsync('skopeo', ['inspect', '--raw', `docker-archive:${first.archive}`])).stdout) as {
      config: { digest: string };
    };
    assert.equal(docker.config.digest, first.documents.config.descriptor.digest);
  } else {
    progress('skopeo not installed: the archive was not read back as oci-archive/docker-archive');
  }
});

test(
  "the image's root filesystem runs vk as user 65532, and the dependencies loaded lazily (Azure, client-node, AWS) survived the pruning",
  { skip: isRoot ? false : 'chroot needs root' },
  async () => {
    assert.ok(first, 'the build test ran first');
    const root = tempDir(scope, 'vk-image-root-');
    chmodSync(root, 0o755); // the image's "/" (mkdtemp made it 0700)
    for (const { layer } of first.layers) await execFileAsync('tar', ['-xzf', blobPath(first.layoutDir, layer.digest), '-C', root]);
    const [node, vk] = IMAGE_RUNTIME_CONFIG.Entrypoint!;
    const help = await execFileAsync('chroot', ['--userspec=65532:65532', root, node!, vk!, 'run', '--help'], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    assert.match(help.stdout, /--provider <name>/);
    // Inside /app, so bare specifiers resolve from /app/node_modules as they do for vk.
    const smoke = [
      "const { DefaultAzureCredential } = await import('@azure/identity');",
      'new DefaultAzureCredential();',
      "const { KubeConfig } = await import('@kubernetes/client-node');",
      'new KubeConfig();',
      "await import('@aws-sdk/client-ecs'); await import('@aws-sdk/client-cloudwatch-logs');",
      "for (const p of ['aci', 'fargate', 'cluster', 'remote', 'sandbox', 'mock']) await import(`/app/src/providers/${p}/${p}-provider.ts`);",
      "await import('/app/src/cli/main.ts');",
      "console.log('loaded', process.getuid(), process.version);",
    ].join('\n');
    writeFileSync(path.join(root, 'app/image-smoke.mjs'), smoke);
    const loaded = await execFileAsync('chroot', ['--userspec=65532:65532', root, node!, '/app/image-smoke.mjs'], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/home/nonroot' },
    });
    assert.match(loaded.stdout, /^loaded 65532 v24\./m);
  },
);

test('--push uploads the image to a registry, which serves the same manifest digest back', async () => {
  assert.ok(first, 'the build test ran first');
  const registry = await startTestRegistry();
  scope.after(() => registry.stop());
  const reference = `${registry.host}/tools/virtual-kubelet-ts:e2e`;
  const lines: string[] = [];
  await pushBuiltImage(first, reference, [], (line) => lines.push(line));
  assert.equal(lines.filter((l) => l.endsWith(': uploaded')).length, 4, lines.join('\n'));
  const resolved = await new RegistryClient().resolve(parseImageReference(reference));
  assert.equal(resolved.digest, first.digest);
  // A second push finds every blob there already.
  lines.length = 0;
  await pushBuiltImage(first, reference, [], (line) => lines.push(line));
  assert.equal(lines.filter((l) => l.includes('already in')).length, 4, lines.join('\n'));
});
