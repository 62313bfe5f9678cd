// What makes a node's pods network citizens of the cluster, as kube-proxy and cluster DNS do for a
// kubelet's: the Service catalog (watches), the node's nftables table kept in step with it, IPv4
// forwarding on the uplinks for egress, and the node's own DNS server. A provider whose pods run
// on this host (the sandbox) starts one and asks it which nameservers a pod gets.
import path from 'node:path';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../errors.ts';
import { defaultRouteInterfaces, enableUplinkForwarding, restoreUplinkForwarding, type UplinkForwarding } from './forwarding.ts';
import { NftTable } from './nftables.ts';
import { ServiceCatalog } from './service-catalog.ts';
import { buildRules, tableNameFor } from './service-rules.ts';
import { ConntrackFlusher, staleUdpFlows } from './conntrack.ts';
import type { ServiceInfo } from './services.ts';
import { DnsServer } from './dns/server.ts';

/** NodeLocal DNSCache's address: link-local, so it can never be a real host's or Service's. */
export const DEFAULT_NODE_DNS_ADDRESS = '169.254.20.10';

export interface NodeNetworkOptions {
  kube: KubeClient;
  log: Logger;
  nodeName: string;
  podCIDR: string;
  /** nftables wildcard of the pods' host-side interfaces, e.g. "vk*". */
  podLinks: string;
  egress: { enabled: boolean; /** default: the interfaces of the default routes */ interfaces?: string[] };
  dns: {
    clusterDomain: string;
    /** The kubelet's --cluster-dns: when set, pods use these and the node serves no DNS. */
    clusterDNS: string[];
    /** auto: kube-system/kube-dns when the cluster has it, else this node's server; node: always this node's. */
    mode: 'auto' | 'node';
    /** Where pods and the host reach this node's DNS server (the rules redirect it to the server's port). */
    address?: string;
  };
  tools: { nft: string; ip: string; conntrack: string };
  /** Where the node keeps what it must undo after a crash (the uplink flags it turned on). */
  stateDir: string;
}

export class NodeNetwork {
  readonly catalog: ServiceCatalog;
  readonly table: NftTable;
  private readonly options: NodeNetworkOptions;
  private readonly log: Logger;
  private forwarding: UplinkForwarding | undefined;
  private dnsServer: DnsServer | undefined;
  private unsubscribe: (() => void) | undefined;
  /** The newest rules applied (or being applied); for tests and debugging. */
  lastRules = '';
  readonly conntrack: ConntrackFlusher;
  /** The Services the newest rules were built from: what the next change's stale UDP flows are found against. */
  private ruledServices: ReadonlyMap<string, ServiceInfo> = new Map();

  private constructor(options: NodeNetworkOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'node-network' });
    this.catalog = new ServiceCatalog({ client: options.kube, log: options.log });
    this.table = new NftTable(options.tools.nft, tableNameFor(options.nodeName), options.log);
    this.conntrack = new ConntrackFlusher(options.tools.conntrack, this.log);
  }

  static async start(options: NodeNetworkOptions, signal?: AbortSignal): Promise<NodeNetwork> {
    const network = new NodeNetwork(options);
    try {
      await network.begin(signal);
    } catch (err) {
      await network.stop();
      throw err;
    }
    return network;
  }

  private async begin(signal?: AbortSignal): Promise<void> {
    const o = this.options;
    await this.catalog.start(signal);
    if (o.egress.enabled) {
      const uplinks = o.egress.interfaces ?? (await defaultRouteInterfaces(o.tools.ip));
      this.forwarding = await enableUplinkForwarding(uplinks, forwardingStateFile(o.stateDir));
    }
    if (o.dns.clusterDNS.length === 0) {
      // Any address, a free port: the rules admit only redirected queries and loopback to it.
      this.dnsServer = new DnsServer({ host: '0.0.0.0', port: 0, clusterDomain: o.dns.clusterDomain, services: this.catalog, log: o.log });
      await this.dnsServer.start();
    }
    await this.apply();
    this.unsubscribe = this.catalog.onChange(() => {
      this.apply().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'service rules not updated'));
    });
    this.log.info({ table: this.table.name, services: this.catalog.snapshot().size, dns: this.dnsServer?.address }, 'node network ready');
  }

  private async apply(): Promise<void> {
    const o = this.options;
    const services = this.catalog.snapshot();
    const stale = staleUdpFlows(this.ruledServices, services);
    this.ruledServices = services;
    this.lastRules = buildRules(services, {
      table: this.table.name,
      podCIDR: o.podCIDR,
      podLinks: o.podLinks,
      ...(this.dnsServer?.address && { dns: { address: this.nodeDnsAddress, port: this.dnsServer.address.port } }),
      egress: o.egress.enabled,
      guardedUplinks: this.forwarding?.turnedOn ?? [],
    });
    await this.table.replace(this.lastRules);
    // Once the new rules are in place: a packet of a flushed flow is DNATed by them.
    await this.conntrack.flush(stale);
  }

  private get nodeDnsAddress(): string {
    return this.options.dns.address ?? DEFAULT_NODE_DNS_ADDRESS;
  }

  /** The nameservers of ClusterFirst pods (the kubelet's --cluster-dns); empty: no cluster DNS. */
  clusterNameservers(): string[] {
    const dns = this.options.dns;
    if (dns.clusterDNS.length > 0) return dns.clusterDNS;
    if (dns.mode === 'auto') {
      const kubeDns = this.catalog.snapshot().get('kube-system/kube-dns');
      if (kubeDns?.clusterIPs[0]) return [kubeDns.clusterIPs[0]];
    }
    return this.dnsServer ? [this.nodeDnsAddress] : [];
  }

  get clusterDomain(): string {
    return this.options.dns.clusterDomain;
  }

  private stopped = false;

  /** Removes the table, turns the uplink flags back off and stops the watches and the DNS server. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    await this.catalog.stop();
    // Flags first: without the table, a turned-on uplink would forward anything.
    const results = await Promise.allSettled([this.forwarding?.restore().then(() => this.table.remove()) ?? this.table.remove(), this.dnsServer?.stop()]);
    for (const r of results) if (r.status === 'rejected') this.log.warn({ err: errorMessage(r.reason) }, 'node network not fully cleaned up');
  }
}

function forwardingStateFile(stateDir: string): string {
  return path.join(stateDir, 'uplink-forwarding.json');
}

/**
 * What a node network killed without stopping leaves (`vk down`): the uplink forwarding flags it
 * turned on (per its state file, when `stateDir` still exists), then its nftables table.
 */
export async function removeNodeNetworkLeftovers(nodeName: string, stateDir: string, nft: string, log: Logger): Promise<{ table: string; uplinks: string[] }> {
  // Flags first: without the table, a turned-on uplink would forward anything.
  const uplinks = await restoreUplinkForwarding(forwardingStateFile(stateDir));
  const table = new NftTable(nft, tableNameFor(nodeName), log);
  await table.remove();
  return { table: table.name, uplinks };
}
