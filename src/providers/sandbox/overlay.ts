// Container root filesystems as overlayfs mounts (rootfsMode overlay, the default where the
// kernel has it): the image's rootfs in the store is the read-only lower layer, and each
// container run gets an empty upper and work directory in its instance directory. The run's
// start command mounts it in the pod's mount namespace, the pause process's (launch.ts), so the
// mount goes with the pod: nothing to unmount after a crash, and the host's mount table never
// sees it. A run's root filesystem then costs one mount instead of a copy of every entry
// of the image (each symlink a new inode: ~0.3-0.7 ms on this project's test machine, so
// 100-250 ms for busybox's ~270 applet links).
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../errors.ts';
import { run } from '../../util/command.ts';

export interface OverlayRootfs {
  /** The image's rootfs (never written). */
  lower: string;
  upper: string;
  work: string;
  /** The container's working directory, relative to its root, when the image lacks it: made in the mounted rootfs. */
  makeDir?: string;
  /** The mount point of the container's previous run, unmounted first (each run's stays until the next, or the pod's end). */
  previous?: string;
}

/** The upper and work directories of the run whose root filesystem is mounted at `rootfs`. */
export function overlayDirs(rootfs: string, lower: string): OverlayRootfs {
  const dir = path.dirname(rootfs);
  return { lower, upper: path.join(dir, 'upper'), work: path.join(dir, 'work') };
}

/** The mount options; throws for a path overlayfs options cannot carry (',' and ':' separate them). */
export function overlayOptions(o: OverlayRootfs): string {
  for (const p of [o.lower, o.upper, o.work]) if (/[,:\\]/.test(p)) throw new Error(`overlayfs cannot use the path ${p} (it has ',', ':' or '\\')`);
  return `lowerdir=${o.lower},upperdir=${o.upper},workdir=${o.work}`;
}

/** The mount command (busybox's applet) for a root filesystem at `target`. */
export function overlayMountCommand(busybox: string, o: OverlayRootfs, target: string): string[] {
  return [busybox, 'mount', '-t', 'overlay', 'overlay', '-o', overlayOptions(o), target];
}

/**
 * Mounts a throwaway overlay under `dir` (the pods' filesystem, where upper directories will be)
 * in a mount namespace that ends with the command. Undefined when it works, else why not.
 */
export async function probeOverlay(tools: { unshare: string; busybox: string }, dir: string): Promise<string | undefined> {
  const probe = path.join(dir, `.overlay-probe-${randomBytes(4).toString('hex')}`);
  try {
    const o = { lower: path.join(probe, 'lower'), upper: path.join(probe, 'upper'), work: path.join(probe, 'work') };
    for (const d of [o.lower, o.upper, o.work, path.join(probe, 'merged')]) await mkdir(d, { recursive: true });
    await run([tools.unshare, '--mount', '--propagation', 'private', '--', ...overlayMountCommand(tools.busybox, o, path.join(probe, 'merged'))]);
    return undefined;
  } catch (err) {
    return `an overlayfs mount under ${dir} failed: ${errorMessage(err).trim()}`;
  } finally {
    await rm(probe, { recursive: true, force: true }).catch(() => undefined);
  }
}
