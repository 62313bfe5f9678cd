// How a container process is started inside its pod sandbox, as one host command line:
//
//   sh -c 'echo $$ > CGROUP/cgroup.procs && exec "$@" 3>INFO 4</proc/PAUSE/ns/pid' sh \
//     nsenter --ipc=/proc/PAUSE/ns/ipc --uts=… --net=… -- \
//     bwrap --pidns 4 --unshare-pid --info-fd 3 --bind ROOTFS / --proc /proc --dev /dev … \
//           --cap-drop ALL --cap-add … --clearenv --setenv … --chdir WD -- COMMAND…
//
// The shell first moves itself into the container's cgroup(s) (when the provider has cgroups,
// see cgroups.ts), so nsenter, bwrap and the command are in it before they run or fork; the
// container's monitor (monitor/monitor.c), which spawned the shell, stays outside.
// nsenter joins the pod's ipc, uts (hostname = pod name) and network namespaces (so the
// containers of a pod share localhost); bwrap makes the container's own mount namespace with its
// root filesystem (pivot_root), a fresh /proc and /dev, the pod's /dev/shm, /etc/hosts,
// /etc/hostname, /etc/resolv.conf and the volume binds, drops capabilities and sets
// no_new_privs. With --pidns + --unshare-pid each container gets its own pid namespace nested
// in the pod's (bwrap's reaper is its PID 1, the command PID 2); with shareProcessNamespace the
// containers live in the pod's pid namespace itself.
//
// runAsUser/runAsGroup: bwrap changes uid only inside a user namespace, so a static busybox is
// bound at /dev/.vk/busybox and `busybox nsenter -S uid -G gid -F` switches user (dropping all
// capabilities, as for any non-root process) right before exec. Supplementary groups are not set.
//
// exec uses the same command with the container's pid namespace (no --unshare-pid, no info fd):
// a new mount namespace built from the same directories shows the same files.
// A TTY (tty: true, exec -t) wraps the command in util-linux `script`, which owns the pty.
import path from 'node:path';
import type { Container, Pod } from '../../kube/types.ts';
import { joinScript } from './cgroups.ts';
import { shellQuote } from '../../util/command.ts';
import { overlayMountCommand, type OverlayRootfs } from './overlay.ts';
import type { Mount } from './volumes.ts';

/** containerd's default capability set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

export const HELPER_PATH = '/dev/.vk/busybox';

export interface LaunchTools {
  nsenter: string;
  bwrap: string;
  script: string;
  busybox: string;
}

export interface ContainerLaunch {
  pausePid: number;
  rootfs: string;
  mounts: Mount[];
  etc: { hosts: string; hostname: string; resolv: string };
  shm: string;
  /** Host file bound at the container's terminationMessagePath. */
  terminationLog?: { host: string; path: string };
  argv: string[];
  /** NAME=value */
  env: string[];
  workingDir: string;
  uid: number;
  gid: number;
  /** Capabilities the process keeps ('all' when privileged). */
  capabilities: string[] | 'all';
  readOnlyRoot: boolean;
  sharePid: boolean;
  /** The image's StopSignal. */
  stopSignal?: string;
  hostNetwork?: boolean;
  /** cgroup.procs files the process joins before anything runs (the container's cgroup; also for exec). */
  cgroupProcs?: string[];
  /** `rootfs` is an empty mount point for this overlay (overlay.ts), mounted by the start command in the pod's mount namespace. */
  overlay?: OverlayRootfs;
}

function normalizeCap(name: string): string {
  const upper = name.toUpperCase();
  return upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/** The capabilities a container keeps: the default set, minus drop (ALL drops all), plus add. */
export function containerCapabilities(container: Container): string[] | 'all' {
  const sc = container.securityContext;
  if (sc?.privileged) return 'all';
  const drop = (sc?.capabilities?.drop ?? []).map(normalizeCap);
  const add = (sc?.capabilities?.add ?? []).map(normalizeCap);
  if (add.includes('CAP_ALL')) return 'all';
  let caps = drop.includes('CAP_ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !drop.includes(c));
  caps = [...new Set([...caps, ...add])];
  return caps;
}

function bwrapArgs(tools: LaunchTools, l: ContainerLaunch, mode: 'start' | 'exec', tty: boolean): string[] {
  const a: string[] = [tools.bwrap, '--pidns', '4'];
  if (mode === 'start') {
    if (!l.sharePid) a.push('--unshare-pid');
    a.push('--info-fd', '3');
  }
  a.push('--bind', l.rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--bind', l.shm, '/dev/shm');
  const destinations = new Set(l.mounts.map((m) => m.destination));
  if (!destinations.has('/etc/hosts')) a.push('--bind', l.etc.hosts, '/etc/hosts');
  if (!destinations.has('/etc/hostname')) a.push('--bind', l.etc.hostname, '/etc/hostname');
  if (!destinations.has('/etc/resolv.conf')) a.push('--bind', l.etc.resolv, '/etc/resolv.conf');
  if (l.terminationLog && !destinations.has(l.terminationLog.path)) a.push('--bind', l.terminationLog.host, l.terminationLog.path);
  // bwrap makes missing parents of a bind's destination 0700 (a non-root container could not
  // reach its own volume); --dir makes them 0755, as a container runtime does, and leaves
  // existing directories alone. Just before each bind: an earlier bind may be their parent.
  for (const m of l.mounts) {
    const parents: string[] = [];
    for (let dir = path.posix.dirname(m.destination); dir !== '/' && dir !== '.'; dir = path.posix.dirname(dir)) parents.unshift(dir);
    for (const dir of parents) a.push('--dir', dir);
    a.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.destination);
  }
  const switchUser = l.uid !== 0 || l.gid !== 0;
  if (switchUser) a.push('--ro-bind', tools.busybox, HELPER_PATH);
  if (l.readOnlyRoot) a.push('--remount-ro', '/');
  if (l.capabilities !== 'all') {
    a.push('--cap-drop', 'ALL');
    const caps = new Set(l.capabilities);
    if (switchUser) {
      // The helper needs these to switch; a non-root process loses every capability anyway.
      caps.add('CAP_SETUID');
      caps.add('CAP_SETGID');
    }
    for (const cap of caps) a.push('--cap-add', cap);
  }
  if (!tty) a.push('--new-session');
  a.push('--clearenv');
  for (const entry of l.env) {
    const eq = entry.indexOf('=');
    if (eq > 0) a.push('--setenv', entry.slice(0, eq), entry.slice(eq + 1));
  }
  a.push('--chdir', l.workingDir || '/', '--');
  if (switchUser) a.push(HELPER_PATH, 'nsenter', '-S', String(l.uid), '-G', String(l.gid), '-F', '--');
  return a;
}

/**
 * `inner` (bwrap) in the pod's namespaces, behind a shell that first joins the container's
 * cgroup. With an overlay rootfs (overlay.ts) the pod's mount namespace is joined too: the
 * start mounts the overlay there (after unmounting the container's previous run's), so it is
 * gone with the pod's namespaces, and an exec finds it there.
 */
function wrap(tools: LaunchTools, l: ContainerLaunch, redirects: string, inner: string[], tty: boolean, mode: 'start' | 'exec'): string[] {
  const ns = (t: string) => `--${t}=/proc/${l.pausePid}/ns/${t}`;
  // hostNetwork: the host's network namespace (the pause process's stays unused).
  const namespaces = l.hostNetwork ? [ns('ipc'), ns('uts')] : [ns('ipc'), ns('uts'), ns('net')];
  if (l.overlay) {
    namespaces.push(`--mount=/proc/${l.pausePid}/ns/mnt`);
    if (mode === 'start') {
      const q = (argv: string[]) => argv.map(shellQuote).join(' ');
      const steps = [
        ...(l.overlay.previous !== undefined ? [`${q([tools.busybox, 'umount', '-l', l.overlay.previous])} 2>/dev/null;`] : []),
        `${q(overlayMountCommand(tools.busybox, l.overlay, l.rootfs))} &&`,
        ...(l.overlay.makeDir !== undefined ? [`${q([tools.busybox, 'mkdir', '-p', path.posix.join(l.rootfs, l.overlay.makeDir)])} &&`] : []),
      ];
      inner = ['/bin/sh', '-c', `${steps.join(' ')} exec "$@"`, 'sh', ...inner];
    }
  }
  // The shell joins the container's cgroup first, so everything it execs and forks is in it from the start.
  const join = l.cgroupProcs && l.cgroupProcs.length > 0 ? `${joinScript(l.cgroupProcs, shellQuote)} && ` : '';
  const argv = ['/bin/sh', '-c', `${join}exec "$@" ${redirects}`, 'sh', tools.nsenter, ...namespaces, '--', ...inner];
  if (!tty) return argv;
  return [tools.script, '-qfec', argv.map(shellQuote).join(' '), '/dev/null'];
}

/** The host command that runs the container's main process (see the header). */
export function startCommand(tools: LaunchTools, l: ContainerLaunch, infoFile: string, tty: boolean): string[] {
  return wrap(tools, l, `3>${shellQuote(infoFile)} 4</proc/${l.pausePid}/ns/pid`, [...bwrapArgs(tools, l, 'start', tty), ...l.argv], tty, 'start');
}

/** The host command that runs `command` in the running container whose sandboxed pid is `targetPid`. */
export function execCommand(tools: LaunchTools, l: ContainerLaunch, targetPid: number, command: string[], tty: boolean): string[] {
  return wrap(tools, l, `4</proc/${targetPid}/ns/pid`, [...bwrapArgs(tools, l, 'exec', tty), ...command], tty, 'exec');
}

/** The environment for spawning these commands (the container's own comes through --setenv). */
export function launchEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', SHELL: '/bin/sh', TERM: 'xterm' };
}

/** The pod's `shareProcessNamespace`. */
export function sharesPid(pod: Pod): boolean {
  return pod.spec?.shareProcessNamespace === true;
}
