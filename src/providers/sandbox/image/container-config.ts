// What a container runs, from its image config and its pod spec, by the Kubernetes rules
// (kubelet + CRI runtimes):
// - command set: it replaces the image Entrypoint and the image Cmd is dropped; args (if any)
//   follow it;
// - command unset: the image Entrypoint stays; args, if set, replace the image Cmd;
// - env: the image's Env, then the container's (already resolved by the core) — a container
//   variable replaces the image's of the same name in place, new ones are appended; PATH gets
//   the runtime default when neither sets it;
// - workingDir: the container's, else the image's WorkingDir, else /;
// - user: securityContext.runAsUser/runAsGroup (container, else pod) override the image User
//   (`uid`, `uid:gid`, `name`, `name:group`; names are resolved against the rootfs by user.ts);
//   runAsNonRoot is checked like the kubelet does.
// The core has already expanded $(VAR) references in command and args.
import type { Container, PodSpec } from '../../../kube/types.ts';
import { VkError } from '../../../errors.ts';
import type { ImageRuntimeConfig } from './manifest.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface UserSpec {
  /** Numeric uid, when known without looking at /etc/passwd. */
  uid?: number;
  /** Numeric gid, when known. */
  gid?: number;
  /** A user name to resolve in the rootfs' /etc/passwd. */
  userName?: string;
  /** A group name to resolve in the rootfs' /etc/group. */
  groupName?: string;
}

export interface ContainerProcess {
  /** Full argv: the executable first. */
  argv: string[];
  /** NAME=value, in order. */
  env: string[];
  workingDir: string;
  user: UserSpec;
  /** Ports the image declares, e.g. ['80/tcp']. */
  exposedPorts: string[];
  stopSignal: string | undefined;
}

/**
 * The container spec and the image config give no runnable process (no command, runAsNonRoot
 * against a root user): the kubelet's CreateContainerConfigError, retried.
 */
export class ContainerConfigError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_POD_CONFIG', message, options);
  }
}

/** Parses an image User field: '', 'uid', 'uid:gid', 'name', 'name:group'. */
export function parseImageUser(user: string | undefined): UserSpec {
  if (!user) return {};
  const colon = user.indexOf(':');
  const u = colon === -1 ? user : user.slice(0, colon);
  const g = colon === -1 ? undefined : user.slice(colon + 1);
  const spec: UserSpec = {};
  if (/^\d+$/.test(u)) spec.uid = Number(u);
  else if (u) spec.userName = u;
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) spec.gid = Number(g);
    else spec.groupName = g;
  }
  return spec;
}

function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq === -1 ? entry : entry.slice(0, eq);
}

/** Image env then container env; same names are replaced in place. */
export function mergeEnv(imageEnv: readonly string[], containerEnv: readonly { name: string; value?: string }[]): string[] {
  const out: string[] = [];
  const index = new Map<string, number>();
  const put = (entry: string) => {
    const name = envName(entry);
    const at = index.get(name);
    if (at === undefined) {
      index.set(name, out.length);
      out.push(entry);
    } else {
      out[at] = entry;
    }
  };
  for (const entry of imageEnv) put(entry);
  for (const { name, value } of containerEnv) put(`${name}=${value ?? ''}`);
  if (!index.has('PATH')) out.unshift(`PATH=${DEFAULT_PATH}`);
  return out;
}

/**
 * Merges an image config with a container spec. Throws ContainerConfigError when there is
 * nothing to run, or runAsNonRoot cannot hold.
 */
export function containerProcess(image: ImageRuntimeConfig | undefined, container: Container, podSpec?: Pick<PodSpec, 'securityContext'>): ContainerProcess {
  const config = image ?? {};
  let argv: string[];
  if (container.command && container.command.length > 0) {
    argv = [...container.command, ...(container.args ?? [])];
  } else {
    const entrypoint = config.Entrypoint ?? [];
    // An Entrypoint of [""] means "none" (Docker's way to reset it).
    const effectiveEntrypoint = entrypoint.length === 1 && entrypoint[0] === '' ? [] : entrypoint;
    const args = container.args && container.args.length > 0 ? container.args : (config.Cmd ?? []);
    argv = [...effectiveEntrypoint, ...args];
  }
  if (argv.length === 0)
    throw new ContainerConfigError(
      `container "${container.name}": no command specified (the image has no Entrypoint or Cmd and the container sets no command)`,
    );

  const env = mergeEnv(config.Env ?? [], container.env ?? []);
  const workingDir = container.workingDir || config.WorkingDir || '/';

  const podContext = podSpec?.securityContext;
  const ctx = container.securityContext;
  const user = parseImageUser(config.User);
  const runAsUser = ctx?.runAsUser ?? podContext?.runAsUser;
  const runAsGroup = ctx?.runAsGroup ?? podContext?.runAsGroup;
  if (runAsUser !== undefined) {
    user.uid = runAsUser;
    delete user.userName;
    // The image's group only applies with the image's user (the runtime looks the new uid up instead).
    delete user.gid;
    delete user.groupName;
  }
  if (runAsGroup !== undefined) {
    user.gid = runAsGroup;
    delete user.groupName;
  }

  const runAsNonRoot = ctx?.runAsNonRoot ?? podContext?.runAsNonRoot;
  if (runAsNonRoot) {
    if (user.uid === undefined && user.userName !== undefined) {
      throw new ContainerConfigError(`container has runAsNonRoot and image has non-numeric user (${user.userName}), cannot verify user is non-root`);
    }
    if ((user.uid ?? 0) === 0) {
      throw new ContainerConfigError('container has runAsNonRoot and image will run as root');
    }
  }

  return {
    argv,
    env,
    workingDir,
    user,
    exposedPorts: Object.keys(config.ExposedPorts ?? {}),
    stopSignal: config.StopSignal,
  };
}
