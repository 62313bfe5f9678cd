// Pod volumes on disk, under <podDir>/volumes/<name>/, and the bind mounts a container gets.
// File volumes (configMap, secret, downwardAPI, projected) are written like the kubelet's
// atomic writer: the files live in a timestamped directory, `..data` points at it, and each
// top-level entry is a symlink through `..data`, so an update (a changed ConfigMap, a refreshed
// token) swaps everything at once and is seen by running containers. emptyDir is a directory
// (medium Memory included: no tmpfs is mounted on the host). hostPath binds the host path.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, link, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Container, Pod } from '../../kube/types.ts';
import { VkError } from '../../errors.ts';
import type { ResolvedPod, ResolvedVolume, VolumeFile } from '../provider.ts';
import { resolveInRoot } from './images.ts';

export interface Mount {
  source: string;
  destination: string;
  readOnly: boolean;
}

export function volumeDir(podDir: string, name: string): string {
  return path.join(podDir, 'volumes', name);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes `files` into `dir` atomically (see the header). */
export async function writeFilesVolume(dir: string, files: readonly VolumeFile[]): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomBytes(3).toString('hex')}`;
  const data = path.join(dir, stamp);
  await mkdir(data, { mode: 0o755 });
  const top = new Set<string>();
  for (const file of files) {
    const rel = path.normalize(file.path);
    if (rel.startsWith('..') || path.isAbsolute(rel)) continue; // the API forbids these; never write outside
    const target = path.join(data, rel);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    await writeFile(target, file.content, { mode: file.mode });
    await chmod(target, file.mode);
    top.add(rel.split(path.sep)[0]!);
  }
  // Swap ..data to the new directory, then make the top-level links match.
  const link = path.join(dir, '..data');
  let old: string | undefined;
  try {
    old = await readlink(link);
  } catch {
    old = undefined;
  }
  const tmpLink = path.join(dir, `..data_tmp.${randomBytes(3).toString('hex')}`);
  await symlink(stamp, tmpLink);
  await rename(tmpLink, link);
  for (const name of top) {
    const entry = path.join(dir, name);
    if (!(await exists(entry))) await symlink(path.join('..data', name), entry);
  }
  for (const name of await readdir(dir)) {
    if (name.startsWith('..') || top.has(name)) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
  }
  if (old && old !== stamp) await rm(path.join(dir, old), { recursive: true, force: true });
}

/** Writes every resolved volume of the pod (again, on updates). */
export async function writeVolumes(podDir: string, volumes: ReadonlyMap<string, ResolvedVolume>): Promise<void> {
  for (const [name, volume] of volumes) {
    const dir = volumeDir(podDir, name);
    if (volume.type === 'files') {
      await writeFilesVolume(dir, volume.files);
    } else {
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o777);
    }
  }
}

/** The host path behind a pod volume, or undefined for a volume type this runtime cannot provide. */
export function volumeSource(podDir: string, resolved: ResolvedPod, name: string): string | undefined {
  // On disk already counts too: an adopted pod has its volumes from before the restart.
  if (resolved.volumes.has(name) || existsSync(volumeDir(podDir, name))) return volumeDir(podDir, name);
  const spec = resolved.pod.spec?.volumes?.find((v) => v.name === name);
  if (spec?.hostPath?.path) return spec.hostPath.path;
  return undefined;
}

/** A volume mount the sandbox cannot provide (a volume type it does not map): the pod cannot run here. */
export class VolumeMountError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_POD_REJECTED', message, options);
  }
}

/** The container's volume mounts as binds, parents before children. Throws VolumeMountError. */
export async function containerMounts(podDir: string, resolved: ResolvedPod, container: Container): Promise<Mount[]> {
  const mounts: Mount[] = [];
  for (const [index, vm] of (container.volumeMounts ?? []).entries()) {
    const source = volumeSource(podDir, resolved, vm.name);
    if (source === undefined) throw new VolumeMountError(`volume "${vm.name}" of container "${container.name}" is not supported by the sandbox provider`);
    let from = source;
    // subPathExpr: $(VAR) from the container's (resolved) environment, as the kubelet expands it.
    const env = new Map((container.env ?? []).map((e) => [e.name, e.value ?? '']));
    const subPath =
      vm.subPath || (vm.subPathExpr ? vm.subPathExpr.replace(/\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (_m, name: string) => env.get(name) ?? '') : undefined);
    if (subPath) {
      // Resolve inside the volume (symlinks such as the atomic writer's stay inside it).
      const rel = await resolveInRoot(source, subPath);
      from = path.join(source, rel);
      if (!(await exists(from))) await mkdir(from, { recursive: true, mode: 0o755 });
      // Into a ConfigMap/Secret/downward-API volume: a fixed copy for this container run, as the
      // kubelet's subPath bind is (the atomic writer removes the old files on the next update).
      if (await exists(path.join(source, '..data'))) from = await pinSubPath(podDir, container.name, index, from);
    }
    mounts.push({ source: from, destination: vm.mountPath, readOnly: vm.readOnly === true });
  }
  return mounts.sort((a, b) => a.destination.split('/').length - b.destination.split('/').length);
}

/** Hardlinks (or copies) `from` to <podDir>/subpaths/<container>/<index>, replacing an earlier run's. */
async function pinSubPath(podDir: string, containerName: string, index: number, from: string): Promise<string> {
  const dest = path.join(podDir, 'subpaths', containerName, String(index));
  await rm(dest, { recursive: true, force: true });
  await mkdir(path.dirname(dest), { recursive: true, mode: 0o755 });
  if ((await stat(from)).isDirectory()) {
    await cp(from, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  } else {
    await link(from, dest).catch(() => copyFile(from, dest));
  }
  return dest;
}

/** /etc/hosts, /etc/hostname and /etc/resolv.conf of the pod, written under <podDir>/etc. */
export async function writePodEtc(
  podDir: string,
  pod: Pod,
  podIP: string | undefined,
  resolvConf: string,
  clusterDomain: string,
  hostEtcHosts = '/etc/hosts',
): Promise<{ hosts: string; hostname: string; resolv: string }> {
  const dir = path.join(podDir, 'etc');
  await mkdir(dir, { recursive: true });
  const hostname = podHostname(pod);
  const fqdn = pod.spec?.subdomain ? `${hostname}.${pod.spec.subdomain}.${pod.metadata?.namespace ?? 'default'}.svc.${clusterDomain}` : undefined;
  const lines = [
    '# Kubernetes-managed hosts file.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  if (podIP) lines.push(`${podIP}\t${fqdn ? `${fqdn}\t` : ''}${hostname}`);
  for (const alias of pod.spec?.hostAliases ?? []) lines.push(`${alias.ip}\t${(alias.hostnames ?? []).join('\t')}`);
  const files = { hosts: path.join(dir, 'hosts'), hostname: path.join(dir, 'hostname'), resolv: path.join(dir, 'resolv.conf') };
  const hosts = pod.spec?.hostNetwork ? await hostNetworkHosts(pod, hostEtcHosts) : `${lines.join('\n')}\n`;
  await Promise.all([
    writeFile(files.hosts, hosts, { mode: 0o644 }),
    writeFile(files.hostname, `${hostname}\n`, { mode: 0o644 }),
    writeFile(files.resolv, resolvConf, { mode: 0o644 }),
  ]);
  return files;
}

/** A hostNetwork pod's /etc/hosts, as the kubelet writes it: the node's own, then the pod's hostAliases. */
export async function hostNetworkHosts(pod: Pod, nodeHostsFile: string): Promise<string> {
  let text = '';
  try {
    text = await readFile(nodeHostsFile, 'utf8');
  } catch {
    // a node without /etc/hosts: the aliases alone
  }
  const aliases = pod.spec?.hostAliases ?? [];
  if (aliases.length === 0) return text;
  const block = aliases.map((alias) => `${alias.ip}\t${(alias.hostnames ?? []).join('\t')}`);
  return `${text}${text && !text.endsWith('\n') ? '\n' : ''}\n# Entries added by HostAliases.\n${block.join('\n')}\n`;
}

/** The pod's hostname: spec.hostname, else the pod name (at most 63 characters, as the kubelet cuts it). */
export function podHostname(pod: Pod): string {
  const name = pod.spec?.hostname || pod.metadata?.name || 'pod';
  return name.slice(0, 63).replace(/[-.]+$/, '');
}
