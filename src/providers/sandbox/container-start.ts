// Starting one container run: its image (pulled per policy, or taken from the prefetch), its
// instance directory (private root filesystem, cgroup, launch.json), and the shim spec. Failures
// become the kubelet's waiting reasons on the record (ErrImagePull, CreateContainerConfigError...).
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, VkError } from '../../errors.ts';
import type { Container } from '../../kube/types.ts';
import type { ResolvedPod } from '../provider.ts';
import { containerLimits, podLimits } from './cgroup-limits.ts';
import { procsFiles, type CgroupPaths, type Cgroups } from './cgroups.ts';
import type { SandboxConfig } from './config.ts';
import { ContainerConfigError, UserResolveError, type Images, type PreparedImage } from './images.ts';
import { containerCapabilities, launchEnv, sharesPid, startCommand, type ContainerLaunch } from './launch.ts';
import { withPodIPs } from '../../resolve/pod-ip.ts';
import type { ShimSpec } from './shim.ts';
import { containerID, type ContainerRecord, type Instance, type PodRecordState } from './state.ts';
import { containerMounts, podHostname, VolumeMountError } from './volumes.ts';

export function instanceDir(podDir: string, name: string, attempt: number): string {
  return path.join(podDir, 'containers', name, String(attempt));
}

export function logFile(podDir: string, name: string, attempt: number): string {
  return path.join(podDir, 'logs', name, `${attempt}.log`);
}

/** The run's attach socket (short: under <dataDir>/run, as socket paths are limited to 108 bytes). */
export function socketPath(dataDir: string, uid: string, name: string, attempt: number): string {
  return path.join(dataDir, 'run', `${containerID(uid, name, attempt).slice(10, 30)}.sock`);
}

/** The waiting reason for a container whose run could not be prepared. */
export function createFailureReason(err: unknown): 'CreateContainerConfigError' | 'CreateContainerError' {
  return err instanceof ContainerConfigError || err instanceof UserResolveError || err instanceof VolumeMountError
    ? 'CreateContainerConfigError'
    : 'CreateContainerError';
}

export interface StartHost {
  readonly config: SandboxConfig;
  readonly images: Images;
  readonly cgroups: Cgroups | undefined;
  /** The pod's directory. */
  readonly dir: string;
  readonly state: PodRecordState;
  resolved(): ResolvedPod;
  /** The pod's address, once its sandbox exists (the node's with hostNetwork). */
  podIP(): string | undefined;
  /** Persists the record (the pod's cgroup, once made). */
  save(): void;
}

/**
 * A fresh cgroup for the container's next run, under the pod's, with the container's limits
 * (undefined without cgroups). Throws when it cannot be made: the limits would not hold.
 */
async function containerCgroup(host: StartHost, name: string, container: Container): Promise<CgroupPaths | undefined> {
  const cgroups = host.cgroups;
  if (!cgroups) return undefined;
  if (!host.state.cgroup) {
    host.state.cgroup = cgroups.createPod(host.state.uid, host.config.podPidsLimit, podLimits(host.state.pod));
    host.save();
  }
  try {
    return await cgroups.createContainer(host.state.cgroup, name, containerLimits(container));
  } catch (err) {
    throw new VkError('VK_PROVIDER', `cannot create the container's cgroup: ${errorMessage(err)}`);
  }
}

export interface PreparedRun {
  /** The instance directory. */
  dir: string;
  launch: ContainerLaunch;
  cgroup: CgroupPaths | undefined;
}

/**
 * Makes the instance directory of run `attempt`: a private root filesystem of the image, the
 * container's user, mounts and environment, its cgroup, and launch.json. Throws (see createFailureReason).
 */
export async function prepareRun(host: StartHost, container: Container, prepared: PreparedImage, attempt: number): Promise<PreparedRun> {
  const pod = host.state.pod;
  const sandbox = host.state.sandbox!;
  const dir = instanceDir(host.dir, container.name, attempt);
  const rootfs = path.join(dir, 'rootfs');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  // The kubelet resolves env at container start, with the pod's address: status.podIP(s) env
  // and the $(VAR)s that use them are filled in now.
  const ip = host.podIP();
  const proc = host.images.process(prepared, withPodIPs(host.resolved(), container, ip ? [ip] : []), pod.spec);
  const overlay = await host.images.createRootfs(prepared, rootfs);
  // With an overlay, the image's own rootfs is what the container will see until it writes.
  const user = await host.images.user(overlay?.lower ?? rootfs, proc);
  if (overlay) {
    const makeDir = await host.images.missingDir(overlay.lower, proc.workingDir);
    if (makeDir !== undefined) overlay.makeDir = makeDir;
    if (attempt > 0) overlay.previous = path.join(instanceDir(host.dir, container.name, attempt - 1), 'rootfs');
  } else {
    await host.images.ensureDir(rootfs, proc.workingDir);
  }
  const mounts = await containerMounts(host.dir, host.resolved(), container);
  const env = [...proc.env];
  const has = (name: string) => env.some((e) => e.startsWith(`${name}=`));
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${podHostname(pod)}`);
  if (!has('HOME')) env.push(`HOME=${user.home || '/root'}`);
  if (container.tty === true && !has('TERM')) env.push('TERM=xterm');
  const terminationPath = container.terminationMessagePath || '/dev/termination-log';
  // Writable for any container user, as the kubelet makes it (writeFile's mode is masked by the umask).
  await writeFile(path.join(dir, 'termination-log'), '');
  await chmod(path.join(dir, 'termination-log'), 0o666);
  const cgroup = await containerCgroup(host, container.name, container);
  const launch: ContainerLaunch = {
    pausePid: sandbox.pause.pid,
    rootfs,
    mounts,
    etc: { hosts: path.join(host.dir, 'etc/hosts'), hostname: path.join(host.dir, 'etc/hostname'), resolv: path.join(host.dir, 'etc/resolv.conf') },
    shm: path.join(host.dir, 'shm'),
    terminationLog: { host: path.join(dir, 'termination-log'), path: terminationPath },
    argv: proc.argv,
    env,
    workingDir: proc.workingDir,
    uid: user.uid,
    gid: user.gid,
    capabilities: containerCapabilities(container),
    readOnlyRoot: container.securityContext?.readOnlyRootFilesystem === true,
    sharePid: sharesPid(pod),
    ...(proc.stopSignal && { stopSignal: proc.stopSignal }),
    ...(pod.spec?.hostNetwork && { hostNetwork: true }),
    ...(cgroup && { cgroupProcs: procsFiles(cgroup) }),
    ...(overlay && { overlay }),
  };
  await writeFile(path.join(dir, 'launch.json'), JSON.stringify(launch));
  return { dir, launch, cgroup };
}

/** The shim spec of a prepared run; makes the log and socket directories. */
export async function shimSpecFor(host: StartHost, container: Container, run: PreparedRun, attempt: number): Promise<ShimSpec> {
  const tools = host.config.tools;
  const log = logFile(host.dir, container.name, attempt);
  await mkdir(path.dirname(log), { recursive: true });
  await mkdir(path.join(host.config.dataDir, 'run'), { recursive: true });
  const infoFile = path.join(run.dir, 'info.json');
  const tty = container.tty === true;
  return {
    argv: startCommand(tools, run.launch, infoFile, tty),
    env: launchEnv(),
    tty,
    stdin: container.stdin === true,
    stdinOnce: container.stdinOnce === true,
    logFile: log,
    logMaxBytes: host.config.containerLogMaxBytes,
    logMaxFiles: host.config.containerLogMaxFiles,
    socket: socketPath(host.config.dataDir, host.state.uid, container.name, attempt),
    stateFile: path.join(run.dir, 'state.json'),
    exitFile: path.join(run.dir, 'exit.json'),
    infoFile,
    stty: tools.stty,
  };
}

/** Records a started run on the container's record: a restart moves the last run to `last`. */
export function recordStart(c: ContainerRecord, inst: Instance, spec: Pick<Container, 'startupProbe'> | undefined): void {
  c.attempts = inst.attempt + 1;
  c.running = inst;
  c.waiting = undefined;
  if (c.terminated) {
    c.last = c.terminated;
    c.lastAttempt = c.logAttempt;
    c.restartCount++;
    c.terminated = undefined;
  }
  c.logAttempt = inst.attempt;
  c.backoffUntil = undefined;
  c.started = !spec?.startupProbe;
  c.ready = false;
}

/** Removes instance directories and logs no status or `--previous` refers to any more. */
export async function cleanupOldInstances(podDir: string, c: ContainerRecord): Promise<void> {
  const keep = new Set([c.running?.attempt, c.lastAttempt, c.logAttempt].filter((a) => a !== undefined).map(String));
  for (const sub of ['containers', 'logs']) {
    const dir = path.join(podDir, sub, c.name);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const attempt = name.split('.')[0]!;
      // Keep the previous instance's log (for --previous) but not its root filesystem.
      if (sub === 'logs' ? keep.has(attempt) : attempt === String(c.running?.attempt)) continue;
      await rm(path.join(dir, name), { recursive: true, force: true });
    }
  }
}
