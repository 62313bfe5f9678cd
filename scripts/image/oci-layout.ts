// The image's config, manifest and index, written as an OCI image layout directory
// (https://github.com/opencontainers/image-spec/blob/main/image-layout.md) and as one tar that
// is both that layout and what `docker load` reads (its manifest.json beside the layout, as
// `docker save` writes since Docker 25). Every JSON document is built with a fixed key order.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Descriptor, ImageRuntimeConfig, Platform } from '../../src/providers/sandbox/image/manifest.ts';
import { MediaType } from '../../src/providers/sandbox/image/manifest.ts';
import type { WrittenLayer } from './layer.ts';

export interface ImageDocuments {
  config: { descriptor: Descriptor; bytes: Uint8Array };
  manifest: { descriptor: Descriptor; bytes: Uint8Array };
  layers: Descriptor[];
}

function jsonBlob(value: unknown, mediaType: string): { descriptor: Descriptor; bytes: Uint8Array } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { descriptor: { mediaType, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length }, bytes };
}

export function imageDocuments(options: { layers: readonly WrittenLayer[]; runtime: ImageRuntimeConfig; platform: Platform; created: Date }): ImageDocuments {
  const { layers, runtime, platform, created } = options;
  const config = jsonBlob(
    {
      created: created.toISOString(),
      architecture: platform.architecture,
      os: platform.os,
      config: runtime,
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: created.toISOString(), created_by: 'npm run image (scripts/image/build.ts)' })),
    },
    MediaType.ociConfig,
  );
  const layerDescriptors = layers.map((l) => ({ mediaType: MediaType.ociLayerGzip, digest: l.digest, size: l.size }));
  const manifest = jsonBlob({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: config.descriptor, layers: layerDescriptors }, MediaType.ociManifest);
  return { config, manifest, layers: layerDescriptors };
}

export function blobPath(layoutDir: string, digest: string): string {
  return path.join(layoutDir, 'blobs', ...digest.split(':'));
}

/** Writes config, manifest, oci-layout and index.json; the layers must already be in `blobs/`. */
export async function writeOciLayout(layoutDir: string, documents: ImageDocuments, refName: string): Promise<void> {
  await mkdir(path.join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(blobPath(layoutDir, documents.config.descriptor.digest), documents.config.bytes);
  await writeFile(blobPath(layoutDir, documents.manifest.descriptor.digest), documents.manifest.bytes);
  await writeFile(path.join(layoutDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [{ ...documents.manifest.descriptor, annotations: { 'org.opencontainers.image.ref.name': refName } }],
  };
  await writeFile(path.join(layoutDir, 'index.json'), JSON.stringify(index));
}

/**
 * One tar holding the OCI layout plus `manifest.json` for `docker load` (which reads gzip
 * layers as they are). `repoTag` is what docker names the loaded image.
 */
export async function writeArchive(layoutDir: string, documents: ImageDocuments, repoTag: string, dest: string, mtime: Date): Promise<void> {
  const rel = (digest: string) => `blobs/${digest.replace(':', '/')}`;
  const dockerManifest = [{ Config: rel(documents.config.descriptor.digest), RepoTags: [repoTag], Layers: documents.layers.map((l) => rel(l.digest)) }];
  const pack = tar.pack();
  const tmp = `${dest}.tmp-${process.pid}`;
  const piping = (pipeline as (...streams: unknown[]) => Promise<void>)(pack, createWriteStream(tmp));
  piping.catch(() => {}); // awaited below
  const header = { mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime };
  const add = (name: string, content: Uint8Array) =>
    new Promise<void>((resolve, reject) => pack.entry({ ...header, name, type: 'file' }, Buffer.from(content), (err) => (err ? reject(err) : resolve())));
  const addFile = async (name: string, file: string) => {
    const { size } = await stat(file);
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ ...header, name, type: 'file', size }, (err) => (err ? reject(err) : resolve()));
      createReadStream(file)
        .on('error', reject)
        .pipe(sink as unknown as NodeJS.WritableStream);
    });
  };
  for (const dir of ['blobs/', 'blobs/sha256/']) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ ...header, mode: 0o755, name: dir, type: 'directory' }, (err) => (err ? reject(err) : resolve())),
    );
  }
  const blobs = [...new Set([documents.config.descriptor.digest, documents.manifest.descriptor.digest, ...documents.layers.map((l) => l.digest)])].sort();
  for (const digest of blobs) await addFile(rel(digest), blobPath(layoutDir, digest));
  await addFile('index.json', path.join(layoutDir, 'index.json'));
  await add('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
  await addFile('oci-layout', path.join(layoutDir, 'oci-layout'));
  pack.finalize();
  await piping;
  await rename(tmp, dest);
}
