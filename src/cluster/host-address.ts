// An address of this host's own for the local control plane: pods in their own network
// namespaces cannot reach 127.0.0.1, and kube-apiserver will not proxy to a loopback node address.
// The address sits alone (/32) on an interface this module creates, `vkapi<n>`; the kernel refuses
// a second interface of one name, so creating it is the claim and two clusters never collide.
import { execFile } from 'node:child_process';
import { ConfigError, VkError } from '../errors.ts';
import { formatIPv4, parseIPv4, parseIPv4Cidr } from '../util/ipv4.ts';

export const DEFAULT_APISERVER_ADDRESS_RANGE = '10.214.0.0/16';
const PREFIX = 'vkapi';
// `dummy` is made for this; some kernels lack it (no CONFIG_DUMMY), and a bridge without ports
// also holds a local address without touching anything else.
const KINDS = ['dummy', 'bridge'] as const;

export interface HostAddressOptions {
  /** Slot n of this range gives interface vkapi<n> and address <range base> + n·256 + 1; /24 or larger. */
  range?: string;
  /** Interface names are <prefix><n>; it must start with `vkapi` (tests use their own, e.g. `vkapit`). */
  interfacePrefix?: string;
  /** The iproute2 binary. */
  ip?: string;
  /** Why no address was claimed (no CAP_NET_ADMIN, range in use, ...): one line. */
  note?: (line: string) => void;
}

export interface HostAddress {
  address: string;
  interfaceName: string;
  /** Deletes the interface (and with it the address); a second call does nothing. */
  release(): Promise<void>;
}

interface Slot {
  n: number;
  interfaceName: string;
  address: string;
}

/** Claims the first free slot; undefined (with a note) when this host cannot give one. */
export async function claimHostAddress(options: HostAddressOptions = {}): Promise<HostAddress | undefined> {
  const ipBinary = options.ip ?? 'ip';
  const note = options.note ?? (() => {});
  const rangeText = options.range ?? DEFAULT_APISERVER_ADDRESS_RANGE;
  const range = parseIPv4Cidr(rangeText);
  if (!range || range.bits > 24) throw new ConfigError(`apiserver address range ${JSON.stringify(rangeText)}: expected an IPv4 CIDR of /24 or larger`);
  const prefix = options.interfacePrefix ?? PREFIX;
  if (!prefix.startsWith(PREFIX) || prefix.length > 8)
    throw new ConfigError(`interface prefix ${JSON.stringify(prefix)}: expected ${PREFIX}…, at most 8 characters`);
  const ip = (...args: string[]) => runIp(ipBinary, args);

  let overlap: string | undefined;
  let taken: Set<string>;
  try {
    ({ overlap, taken } = await addressesInUse(ip, range));
  } catch (err) {
    note(`no address of its own for kube-apiserver: cannot list this host's addresses: ${(err as Error).message}`);
    return undefined;
  }
  if (overlap) {
    note(`no address of its own for kube-apiserver: ${rangeText} overlaps ${overlap}; choose another range`);
    return undefined;
  }
  const slots = 2 ** (24 - range.bits);
  for (let n = 0; n < slots; n++) {
    const slot: Slot = { n, interfaceName: `${prefix}${n}`, address: formatIPv4(range.base + n * 256 + 1) };
    // Held by a claim with another prefix or range.
    if (taken.has(slot.address)) continue;
    let created: boolean;
    try {
      created = await createOwned(ip, slot.interfaceName);
    } catch (err) {
      note(`no address of its own for kube-apiserver (needs root or CAP_NET_ADMIN): ${(err as Error).message}`);
      return undefined;
    }
    if (!created) {
      // Taken. A crashed run's interface whose owner is gone is removed and the slot retried once.
      if (!(await reapIfStale(ip, slot.interfaceName)) || !(await createOwned(ip, slot.interfaceName))) continue;
    }
    try {
      await ip('addr', 'add', `${slot.address}/32`, 'dev', slot.interfaceName);
      await ip('link', 'set', 'dev', slot.interfaceName, 'up');
    } catch (err) {
      await ip('link', 'del', 'dev', slot.interfaceName).catch(() => {});
      throw new VkError('VK_CLUSTER', `configuring ${slot.interfaceName} with ${slot.address}: ${(err as Error).message}`);
    }
    return handle(ip, slot);
  }
  note(`no address of its own for kube-apiserver: all ${slots} ${prefix}<n> interfaces of ${rangeText} are in use`);
  return undefined;
}

function handle(ip: (...args: string[]) => Promise<string>, slot: Slot): HostAddress {
  let released = false;
  return {
    address: slot.address,
    interfaceName: slot.interfaceName,
    async release() {
      if (released) return;
      released = true;
      try {
        await ip('link', 'del', 'dev', slot.interfaceName);
      } catch (err) {
        if (!/cannot find device/i.test((err as Error).message)) throw err;
      }
    },
  };
}

/**
 * Creates the interface with this process's id in its MAC address, so that the owner is known
 * from the moment the name exists (an alias set afterwards would leave a window). False when the
 * name is taken; throws when interfaces cannot be created at all.
 */
async function createOwned(ip: (...args: string[]) => Promise<string>, name: string): Promise<boolean> {
  let last: Error | undefined;
  for (const kind of KINDS) {
    try {
      await ip('link', 'add', 'name', name, 'address', ownerMac(process.pid), 'type', kind);
      await ip('link', 'set', 'dev', name, 'alias', `virtual-kubelet-ts control plane address (pid ${process.pid})`).catch(() => {});
      return true;
    } catch (err) {
      const message = (err as Error).message;
      if (/file exists/i.test(message)) return false;
      last = err as Error;
      if (!/unknown device type|not supported/i.test(message)) break;
    }
  }
  throw last ?? new Error('no interface kind');
}

/** 02 (locally administered, unicast), 76 ('v'), then the pid in four bytes. */
function ownerMac(pid: number): string {
  const bytes = [0x02, 0x76, (pid >>> 24) & 255, (pid >>> 16) & 255, (pid >>> 8) & 255, pid & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function ownerPid(mac: string): number | undefined {
  const m = /^02:76:([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2}):([0-9a-f]{2})$/i.exec(mac);
  if (!m) return undefined;
  return m.slice(1).reduce((acc, byte) => acc * 256 + parseInt(byte, 16), 0);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes `name` when its owner process is gone. Only holders of the `<name>gc` interface remove
 * someone else's interface, so two runs cannot both judge one stale interface and the second
 * delete the fresh one the first created in its place. An interface without our MAC pattern, or
 * whose owner still runs, is left alone.
 */
async function reapIfStale(ip: (...args: string[]) => Promise<string>, name: string): Promise<boolean> {
  const lock = `${name}gc`;
  if (!(await createOwned(ip, lock).catch(() => false))) return false;
  try {
    const owner = await interfaceOwner(ip, name);
    if (owner === undefined || processAlive(owner)) return false;
    await ip('link', 'del', 'dev', name);
    return true;
  } catch {
    return false;
  } finally {
    await ip('link', 'del', 'dev', lock).catch(() => {});
  }
}

async function interfaceOwner(ip: (...args: string[]) => Promise<string>, name: string): Promise<number | undefined> {
  const links = JSON.parse(await ip('-j', 'link', 'show', 'dev', name)) as { address?: string }[];
  return ownerPid(links[0]?.address ?? '');
}

/**
 * The addresses our vkapi* interfaces hold, and (described) another interface's address or a
 * route other than the default that overlaps the range: a /32 of ours would shadow that network.
 */
async function addressesInUse(
  ip: (...args: string[]) => Promise<string>,
  range: { base: number; bits: number },
): Promise<{ overlap?: string; taken: Set<string> }> {
  const ours = (dev: string | undefined) => dev !== undefined && dev.startsWith(PREFIX);
  const taken = new Set<string>();
  const addrs = JSON.parse(await ip('-j', '-4', 'addr', 'show')) as { ifname: string; addr_info?: { local: string; prefixlen: number }[] }[];
  for (const link of addrs) {
    for (const a of link.addr_info ?? []) {
      if (ours(link.ifname)) {
        taken.add(a.local);
        continue;
      }
      const local = parseIPv4(a.local);
      if (local !== undefined && overlaps(range, { base: local, bits: a.prefixlen })) return { overlap: `${a.local}/${a.prefixlen} on ${link.ifname}`, taken };
    }
  }
  const routes = JSON.parse(await ip('-j', '-4', 'route', 'show')) as { dst: string; dev?: string }[];
  for (const route of routes) {
    if (route.dst === 'default' || ours(route.dev)) continue;
    const [addr, bits] = route.dst.split('/');
    const base = parseIPv4(addr ?? '');
    if (base !== undefined && overlaps(range, { base, bits: bits === undefined ? 32 : Number(bits) }))
      return { overlap: `the route to ${route.dst} via ${route.dev ?? '?'}`, taken };
  }
  return { taken };
}

function overlaps(a: { base: number; bits: number }, b: { base: number; bits: number }): boolean {
  const bits = Math.min(a.bits, b.bits);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (a.base & mask) >>> 0 === (b.base & mask) >>> 0;
}

function runIp(binary: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
  });
}
