// Resolves a container's user (UserSpec from container-config.ts) to numbers using the
// rootfs' /etc/passwd and /etc/group, as runc does: a name must exist; a uid without a gid
// gets the passwd entry's primary group (0 when the uid has no entry); supplementary groups
// are the /etc/group entries that list the user. Files are read inside the rootfs: symlinks
// cannot lead out of it.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { VkError } from '../../../errors.ts';
import type { UserSpec } from './container-config.ts';
import { resolveInRoot } from './rootfs.ts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** From passwd, when the user has an entry. */
  home: string | undefined;
  userName: string | undefined;
}

/**
 * The container's user or group is not in the image: the kubelet's CreateContainerConfigError
 * (the container waits and is retried, as for a missing ConfigMap key).
 */
export class UserResolveError extends VkError {
  constructor(message: string, options?: ErrorOptions) {
    super('VK_POD_CONFIG', message, options);
  }
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

async function readInRoot(root: string, file: string): Promise<string | undefined> {
  const rel = await resolveInRoot(root, file);
  try {
    return await readFile(path.join(root, rel), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw err;
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter(Boolean) });
  }
  return out;
}

export async function resolveUser(rootfs: string, spec: UserSpec): Promise<ResolvedUser> {
  const passwd = parsePasswd((await readInRoot(rootfs, 'etc/passwd')) ?? '');
  const groups = parseGroup((await readInRoot(rootfs, 'etc/group')) ?? '');

  let entry: PasswdEntry | undefined;
  let uid: number;
  if (spec.uid !== undefined) {
    uid = spec.uid;
    entry = passwd.find((p) => p.uid === uid);
  } else if (spec.userName !== undefined) {
    entry = passwd.find((p) => p.name === spec.userName);
    if (!entry) throw new UserResolveError(`unable to find user ${spec.userName}: no matching entries in passwd file`);
    uid = entry.uid;
  } else {
    uid = 0;
    entry = passwd.find((p) => p.uid === 0);
  }

  let gid: number;
  if (spec.gid !== undefined) {
    gid = spec.gid;
  } else if (spec.groupName !== undefined) {
    const group = groups.find((g) => g.name === spec.groupName);
    if (!group) throw new UserResolveError(`unable to find group ${spec.groupName}: no matching entries in group file`);
    gid = group.gid;
  } else {
    gid = entry?.gid ?? 0;
  }

  const name = entry?.name;
  const additionalGids = name ? [...new Set(groups.filter((g) => g.members.includes(name) && g.gid !== gid).map((g) => g.gid))] : [];
  return { uid, gid, additionalGids, home: entry?.home, userName: name };
}
