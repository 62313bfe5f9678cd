// Pod networking: each pod's network namespace gets a veth pair to the host. The pod CIDR is cut
// into /30s: network+1 is the host end (the pod's gateway), network+2 the pod (eth0). Only
// addresses of namespaces this provider made are used. The host end forwards what the pod sends
// (IPv4 forwarding is a per-interface flag on the receiving interface), so pods reach each other
// through the host's routes to their /30s without the host-wide net.ipv4.ip_forward, and the flag
// goes with the interface. Nothing else on the host changes (no bridge, no NAT): the host reaches
// every pod, a pod reaches the host and every other pod.
//
// The host end is named after its /30 (vk + 8 hex digits), so claiming an address is creating
// that interface: the kernel refuses a second one, which keeps two providers (or two virtual
// nodes) on one machine from handing out the same address. The pair lives in the pod's network
// namespace and disappears with it, so a pod whose processes are all gone leaves no interface.
// All of it, and the pod's hostname, is done by the pod's first process before it becomes the
// pause process (pause.ts): a pod start costs the provider one spawn.
import { formatIPv4, parseIPv4Cidr } from '../../util/ipv4.ts';
import { writeFile } from 'node:fs/promises';
import { CommandError, run } from '../../util/command.ts';
import { PauseSetupError, type PauseSetup } from './pause.ts';

/** Host ends are vk + 8 hex digits (the /30's address); the node's rules match them as "vk*". */
export const POD_LINKS = 'vk*';

export interface PodNetwork {
  /** Index of the /30 in the pod CIDR. */
  index: number;
  podIP: string;
  gateway: string;
  /** Host end of the veth pair. */
  hostLink: string;
}

export interface NetworkTools {
  ip: string;
  nsenter: string;
  /** A static busybox: its hostname applet names the pod. */
  busybox: string;
}

export class PodNetworks {
  private readonly base: number;
  private readonly slots: number;
  private readonly used = new Set<number>();
  private next = 0;
  private readonly tools: NetworkTools;

  constructor(cidr: string, tools: NetworkTools) {
    const parsed = parseIPv4Cidr(cidr);
    if (!parsed) throw new Error(`invalid pod CIDR ${cidr}`);
    this.base = parsed.base;
    this.slots = 2 ** (32 - parsed.bits) / 4;
    this.tools = tools;
  }

  describe(index: number): PodNetwork {
    const network = this.base + index * 4;
    return { index, podIP: formatIPv4(network + 2), gateway: formatIPv4(network + 1), hostLink: `vk${network.toString(16).padStart(8, '0')}` };
  }

  /** Marks an adopted pod's slot as taken. */
  reserve(index: number): void {
    this.used.add(index);
  }

  /** The next free /30, marked as taken (release gives it back). Throws when none is left. */
  claim(): PodNetwork {
    for (let tries = 0; tries < this.slots; tries++) {
      const index = this.next;
      this.next = (this.next + 1) % this.slots;
      if (this.used.has(index)) continue;
      this.used.add(index);
      return this.describe(index);
    }
    throw new Error('the pod CIDR has no free /30 left');
  }

  release(net: PodNetwork): void {
    this.used.delete(net.index);
  }

  /**
   * The pause process's setup (pause.ts) for a pod on `net`: it names the pod `hostname`, creates
   * the veth pair from inside the pod's network namespace with the host end in ours (line 1 of
   * the batch claims the address, see the header), and configures both ends. Without `net`
   * (hostNetwork), loopback only.
   */
  setup(net: PodNetwork | undefined, hostname: string): Pick<PauseSetup, 'script' | 'args'> {
    const { busybox, ip, nsenter } = this.tools;
    if (!net) return { script: '"$1" hostname "$2"\n"$3" link set lo up', args: [busybox, hostname, ip] };
    const script = [
      '"$1" hostname "$4"',
      '"$2" -batch - <<EOF\nlink add eth0 type veth peer name $6 netns $5\nlink set lo up\naddr add $7/30 dev eth0\nlink set eth0 up\nroute add default via $8\nEOF',
      '"$3" --net="$5" -- "$2" -batch - <<EOF\naddr add $8/30 dev $6\nlink set $6 up\nEOF',
    ].join('\n');
    return { script, args: [busybox, ip, nsenter, hostname, `/proc/${process.pid}/ns/net`, net.hostLink, net.podIP, net.gateway] };
  }

  /** Whether a failed setup only found its host end taken (by another provider or node): try the next /30. */
  static slotTaken(err: unknown): boolean {
    return err instanceof PauseSetupError && /Command failed -:1\b/.test(err.stderr) && /File exists/.test(err.stderr);
  }

  /** The host end forwards what the pod sends (see the header); once the pause process runs. */
  async enableForwarding(net: PodNetwork): Promise<void> {
    await writeFile(`/proc/sys/net/ipv4/conf/${net.hostLink}/forwarding`, '1');
  }

  /** Removes the pair (a no-op when the namespace, and with it the pair, is already gone). */
  async detach(net: PodNetwork): Promise<void> {
    this.used.delete(net.index);
    try {
      await run([this.tools.ip, 'link', 'del', net.hostLink]);
    } catch (err) {
      if (!(err instanceof CommandError && /Cannot find device|does not exist/.test(err.stderr))) throw err;
    }
  }
}
