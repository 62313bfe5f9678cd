// `npm run image`: builds the vk container image without Docker (see stage.ts for what is in
// it), reproducibly: every layer is a sorted tar with fixed owners and mtimes
// (SOURCE_DATE_EPOCH, default 0), so the same inputs give the same digest.
//
//   npm run image -- [--out dist/image] [--tag virtual-kubelet-ts:<version>] [--push <ref>] [--insecure-registry <host>]
//
// Writes <out>/oci (an OCI image layout) and <out>/virtual-kubelet-ts.tar (that layout plus
// manifest.json: `docker load -i` and `skopeo copy oci-archive:` both read it), and pushes to
// <ref> with the sandbox provider's registry code; credentials for the push come from the docker
// config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json) when it has some.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DockerKeyring } from '../../src/providers/sandbox/image/credentials.ts';
import type { Credential } from '../../src/providers/sandbox/image/auth.ts';
import type { ImageRuntimeConfig } from '../../src/providers/sandbox/image/manifest.ts';
import { hostPlatform } from '../../src/providers/sandbox/image/platform.ts';
import { parseImageReference } from '../../src/providers/sandbox/image/reference.ts';
import { pushImage } from '../../src/providers/sandbox/image/registry-push.ts';
import { VK_VERSION } from '../../src/version.ts';
import { type LayerEntry, writeLayer, type WrittenLayer } from './layer.ts';
import { blobPath, imageDocuments, type ImageDocuments, writeArchive, writeOciLayout } from './oci-layout.ts';
import { APP_DIR, appEntries, dependencyEntries, NODE_PATH, NONROOT_UID, REPO_ROOT, runtimeEntries } from './stage.ts';

export interface BuildImageOptions {
  outDir: string;
  /** name:tag for index.json's ref.name and docker's RepoTags. */
  tag: string;
  progress?: (line: string) => void;
}

export interface BuiltImage {
  /** Digest of the image manifest: what a registry reports after a push. */
  digest: string;
  layoutDir: string;
  archive: string;
  /** Sum of the layers' uncompressed tars. */
  uncompressedSize: number;
  compressedSize: number;
  layers: { name: string; layer: WrittenLayer }[];
  documents: ImageDocuments;
}

export const IMAGE_RUNTIME_CONFIG: ImageRuntimeConfig = {
  User: `${NONROOT_UID}:${NONROOT_UID}`,
  Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/home/nonroot', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'],
  Entrypoint: [`/${NODE_PATH}`, `/${APP_DIR}/bin/vk.js`],
  Cmd: ['run'],
  WorkingDir: `/${APP_DIR}`,
  Labels: {
    'org.opencontainers.image.title': 'virtual-kubelet-ts',
    'org.opencontainers.image.version': VK_VERSION,
    'org.opencontainers.image.licenses': 'Apache-2.0',
  },
};

export function sourceDateEpoch(): Date {
  const raw = process.env.SOURCE_DATE_EPOCH;
  if (raw === undefined || raw === '') return new Date(0);
  if (!/^\d+$/.test(raw)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds since 1970, not "${raw}"`);
  return new Date(Number(raw) * 1000);
}

export async function buildImage(options: BuildImageOptions): Promise<BuiltImage> {
  const { outDir, tag, progress = () => {} } = options;
  const mtime = sourceDateEpoch();
  const layoutDir = path.join(outDir, 'oci');
  await rm(layoutDir, { recursive: true, force: true });
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });

  const parts: [string, () => Promise<LayerEntry[]>][] = [
    ['runtime', () => runtimeEntries(progress)],
    ['deps', () => dependencyEntries(progress)],
    ['app', () => appEntries()],
  ];
  const layers: { name: string; layer: WrittenLayer }[] = [];
  for (const [name, entries] of parts) {
    const tmp = path.join(layoutDir, 'blobs', `${name}.layer`);
    const layer = await writeLayer(await entries(), tmp, mtime);
    await rename(tmp, blobPath(layoutDir, layer.digest));
    progress(`layer ${name}: ${layer.digest} (${mib(layer.uncompressedSize)} uncompressed, ${mib(layer.size)} gzip)`);
    layers.push({ name, layer });
  }
  const documents = imageDocuments({ layers: layers.map((l) => l.layer), runtime: IMAGE_RUNTIME_CONFIG, platform: hostPlatform(), created: mtime });
  await writeOciLayout(layoutDir, documents, tag);
  const archive = path.join(outDir, 'virtual-kubelet-ts.tar');
  await writeArchive(layoutDir, documents, tag, archive, mtime);
  return {
    digest: documents.manifest.descriptor.digest,
    layoutDir,
    archive,
    uncompressedSize: layers.reduce((sum, l) => sum + l.layer.uncompressedSize, 0),
    compressedSize: layers.reduce((sum, l) => sum + l.layer.size, 0),
    layers,
    documents,
  };
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Credentials for `registryName` from the docker config file, if it has any. */
function dockerConfigCredential(imageName: string): Credential | undefined {
  const file = path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'config.json');
  if (!existsSync(file)) return undefined;
  const config = JSON.parse(readFileSync(file, 'utf8')) as { auths?: Record<string, never> };
  return new DockerKeyring().add(config.auths ?? {}).lookup(imageName)[0];
}

export async function pushBuiltImage(image: BuiltImage, reference: string, insecureRegistries: string[], progress: (line: string) => void): Promise<string> {
  const ref = parseImageReference(reference);
  const { documents, layoutDir } = image;
  const blobs = [...documents.layers, documents.config.descriptor].map((descriptor) => ({ descriptor, file: blobPath(layoutDir, descriptor.digest) }));
  const credential = dockerConfigCredential(ref.name);
  return pushImage({
    ref,
    blobs,
    manifest: { mediaType: documents.manifest.descriptor.mediaType, bytes: documents.manifest.bytes },
    insecureRegistries,
    progress,
    ...(credential ? { credential } : {}),
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: path.join(REPO_ROOT, 'dist/image') },
      tag: { type: 'string', default: `virtual-kubelet-ts:${VK_VERSION}` },
      push: { type: 'string' },
      'insecure-registry': { type: 'string', multiple: true, default: [] },
    },
  });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const started = Date.now();
  const image = await buildImage({ outDir: path.resolve(values.out), tag: values.tag, progress: log });
  log(`image ${values.tag}: ${image.digest}`);
  log(`  size: ${mib(image.uncompressedSize)} uncompressed (${image.uncompressedSize} bytes), ${mib(image.compressedSize)} compressed`);
  log(`  OCI layout: ${image.layoutDir}`);
  log(`  archive (docker load -i / skopeo oci-archive:): ${image.archive}`);
  if (values.push) {
    const url = await pushBuiltImage(image, values.push, values['insecure-registry'], log);
    log(`pushed ${values.push} (${url}): ${image.digest}`);
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  process.stdout.write(`${image.digest}\n`);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    process.stderr.write(`npm run image: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
