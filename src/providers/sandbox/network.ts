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
// The pod's hostname is set by the same process that configures its end: a pod start costs the
// provider one process per side (spawning from a large Node process is what a burst of starts waits on).
import { formatIPv4, parseIPv4Cidr } from '../../util/ipv4.ts';
import { writeFile } from 'node:fs/promises';
import { CommandError, run } from '../../util/command.ts';

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

  /**
   * Creates the veth pair into the network namespace of `pid`, configures both ends, and sets the
   * pod's `hostname` in its UTS namespace (one process on each side).
   */
  async attach(pid: number, hostname: string): Promise<PodNetwork> {
    for (let tries = 0; tries < this.slots; tries++) {
      const index = this.next;
      this.next = (this.next + 1) % this.slots;
      if (this.used.has(index)) continue;
      const net = this.describe(index);
      try {
        // Line 1 claims the address (see the header); `ip -batch` stops at the first failure.
        await run([this.tools.ip, '-batch', '-'], {
          input: `link add ${net.hostLink} type veth peer name eth0 netns ${pid}\naddr add ${net.gateway}/30 dev ${net.hostLink}\nlink set ${net.hostLink} up\n`,
        });
      } catch (err) {
        const lineOne = err instanceof CommandError && /Command failed -:1\b/.test(err.stderr);
        if (lineOne && /File exists/.test(err.stderr)) continue; // another pod or provider has it
        if (err instanceof CommandError && !lineOne) await this.detach(net).catch(() => undefined); // ours: a later line failed
        throw err;
      }
      this.used.add(index);
      try {
        await writeFile(`/proc/sys/net/ipv4/conf/${net.hostLink}/forwarding`, '1');
        await this.inPod(pid, hostname, `link set lo up\naddr add ${net.podIP}/30 dev eth0\nlink set eth0 up\nroute add default via ${net.gateway}\n`);
      } catch (err) {
        await this.detach(net);
        throw err;
      }
      return net;
    }
    throw new Error('the pod CIDR has no free /30 left');
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

  /** Sets up loopback only and the pod's `hostname` (hostNetwork pods: their containers use the host's network namespace instead). */
  async loopbackOnly(pid: number, hostname: string): Promise<void> {
    await this.inPod(pid, hostname, 'link set lo up\n');
  }

  /**
   * Sets the hostname (busybox's applet) and runs an `ip -batch` script in the UTS and network
   * namespaces of `pid`, one spawn from the provider: the host's /bin/sh, whose `exec ip` is the host's ip
   * (busybox's sh would run its own applet).
   */
  private async inPod(pid: number, hostname: string, ipBatch: string): Promise<void> {
    const { nsenter, busybox, ip } = this.tools;
    const script = '"$3" hostname "$1" && exec "$2" -batch -';
    await run([nsenter, `--uts=/proc/${pid}/ns/uts`, `--net=/proc/${pid}/ns/net`, '--', '/bin/sh', '-c', script, 'sh', hostname, ip, busybox], {
      input: ipBatch,
    });
  }
}
