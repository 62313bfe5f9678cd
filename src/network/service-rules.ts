// The node's packet rules as one nftables script (pure: a ServiceView snapshot in, text out), what
// kube-proxy's nftables mode does for a node's pods, limited to traffic from the pod CIDR:
// - ClusterIP:port (TCP, UDP, SCTP) → DNAT to one eligible endpoint chosen at random (ready ones;
//   when none is ready, serving terminating ones, as kube-proxy falls back), at the target port
//   the endpoint's EndpointSlice gives for that port name (named targetPorts resolved per pod);
// - a Service port with no eligible endpoint, or a cluster IP on a port it does not serve, is
//   rejected (ICMP port unreachable: the client fails at once, as on a kube-proxy node);
// - hairpin: a pod reaching itself through a Service is masqueraded, or its reply would never
//   come back through the host;
// - egress: traffic from pods to addresses outside the pod CIDR is masqueraded; on uplinks whose
//   forwarding flag we turned on, only replies to pods are forwarded (the host forwarded nothing
//   arriving there before, and still forwards nothing else);
// - the host's own connections to Services are translated too (hostNetwork pods), as kube-proxy does;
// - cluster DNS served by this node: queries to its address (169.254.20.10 by default, NodeLocal
//   DNSCache's) on port 53, from pods and the host, go to the DNS server's port, which answers
//   nothing else but loopback.
// The script replaces the whole table in one transaction (create, delete, define), so a change is
// applied atomically and a table left by a crashed process is replaced.
import { cidrContains, parseIPv4Cidr } from '../util/ipv4.ts';
import type { ServiceEndpoint, ServiceInfo, ServicePortInfo } from './services.ts';

export interface RulesConfig {
  /** nftables table (family ip) owned by this node. */
  table: string;
  podCIDR: string;
  /** nftables wildcard of the interfaces pod addresses live behind (the sandbox's host ends, "vk*"). */
  podLinks: string;
  /** The node's own DNS server: queries to address:53 (from pods and the host) go to its port. */
  dns?: { address: string; port: number };
  /** Masquerade traffic leaving the pod CIDR. */
  egress: boolean;
  /** Uplinks whose forwarding flag this node turned on: forward only replies to pods from them. */
  guardedUplinks: readonly string[];
}

export interface ServiceTarget {
  ip: string;
  port: number;
}

/** The endpoints a Service port sends to: ready ones, else serving terminating ones (kube-proxy). */
export function eligibleTargets(service: ServiceInfo, port: ServicePortInfo): ServiceTarget[] {
  const withPort = (e: ServiceEndpoint) => e.ports[port.name]?.protocol === port.protocol;
  let chosen = service.endpoints.filter((e) => e.ready && withPort(e));
  if (chosen.length === 0) chosen = service.endpoints.filter((e) => e.serving && e.terminating && withPort(e));
  return chosen.map((e) => ({ ip: e.ip, port: e.ports[port.name]!.port }));
}

const L4 = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

/** nftables identifiers: letters, digits and underscores; the table name is ours to choose. */
export function tableNameFor(nodeName: string): string {
  let hash = 0;
  for (const c of nodeName) hash = (Math.imul(hash, 31) + c.charCodeAt(0)) >>> 0;
  const base = nodeName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 40);
  return `vk_${base}_${hash.toString(16).padStart(8, '0')}`;
}

export function buildRules(services: ReadonlyMap<string, ServiceInfo>, config: RulesConfig): string {
  const cidr = config.podCIDR;
  const podNet = parseIPv4Cidr(cidr);
  if (!podNet) throw new Error(`invalid pod CIDR ${cidr}`);
  // One chain per Service port, reached through one verdict map keyed by address, protocol and
  // port: a new connection costs one lookup however many Services the cluster has.
  const chains: string[] = [];
  const verdicts: string[] = [];
  const clusterIPs = new Set<string>();
  const hairpins = new Set<string>();
  for (const key of [...services.keys()].sort()) {
    const service = services.get(key)!;
    if (service.clusterIPs.length === 0) continue;
    for (const ip of service.clusterIPs) clusterIPs.add(ip);
    for (const port of service.ports) {
      const targets = eligibleTargets(service, port);
      if (targets.length === 0) continue; // rejected in the forward chain with the rest of the cluster IPs
      const to =
        targets.length === 1
          ? `${targets[0]!.ip}:${targets[0]!.port}`
          : `numgen random mod ${targets.length} map { ${targets.map((t, i) => `${i} : ${t.ip} . ${t.port}`).join(', ')} }`;
      const chain = `svc_${chains.length / 4}`;
      // nftables comments hold at most 128 bytes.
      chains.push(
        `  chain ${chain} {`,
        `    comment "${`${key}:${port.name || port.port}`.slice(0, 120)}"`,
        `    meta l4proto ${L4[port.protocol]} dnat ip to ${to}`,
        '  }',
      );
      for (const ip of service.clusterIPs) verdicts.push(`${ip} . ${L4[port.protocol]} . ${port.port} : goto ${chain}`);
      for (const t of targets) if (cidrContains(podNet, t.ip)) hairpins.add(t.ip);
    }
  }
  const lines: string[] = [`table ip ${config.table} {}`, `delete table ip ${config.table}`, `table ip ${config.table} {`, ...chains];
  lines.push('  chain services {');
  if (verdicts.length > 0) lines.push(`    ip daddr . meta l4proto . th dport vmap { ${verdicts.join(', ')} }`);
  lines.push('  }');
  const dnsRedirect = config.dns && `    ip daddr ${config.dns.address} meta l4proto { tcp, udp } th dport 53 redirect to :${config.dns.port}`;
  lines.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', `    ip saddr != ${cidr} return`, '    jump services');
  if (dnsRedirect) lines.push(dnsRedirect);
  lines.push('  }');
  // The host's own connections (hostNetwork pods, the node's processes) reach Services too, as on a kube-proxy node.
  lines.push('  chain output {', '    type nat hook output priority -100; policy accept;', '    jump services');
  if (dnsRedirect) lines.push(dnsRedirect);
  lines.push('  }');
  lines.push('  chain postrouting {', '    type nat hook postrouting priority srcnat; policy accept;');
  if (hairpins.size > 0) lines.push(`    ct status dnat ip saddr . ip daddr { ${[...hairpins].map((ip) => `${ip} . ${ip}`).join(', ')} } masquerade`);
  // Pod to pod and pod to host traffic never gets here masqueraded: the first keeps its daddr in the
  // CIDR, the second is delivered locally (no postrouting).
  if (config.egress) lines.push(`    ip saddr ${cidr} ip daddr != ${cidr} masquerade`);
  lines.push('  }');
  const unserved = clusterIPs.size > 0 && `ip daddr { ${[...clusterIPs].join(', ')} } reject`;
  // A pod address whose pod is gone has no route of its own: without this the default route would
  // carry it off the machine (a Service whose endpoint just went, a probe of a deleted pod).
  const goneOwner = `ip daddr ${cidr} oifname != "${config.podLinks}" reject with icmp type host-unreachable`;
  lines.push('  chain forward {', '    type filter hook forward priority filter - 5; policy accept;');
  if (unserved) lines.push(`    ip saddr ${cidr} ${unserved}`);
  lines.push(`    ${goneOwner}`);
  if (config.guardedUplinks.length > 0) {
    const uplinks = `{ ${config.guardedUplinks.map((n) => `"${n}"`).join(', ')} }`;
    lines.push(`    iifname ${uplinks} ip daddr ${cidr} ct state established,related accept`, `    iifname ${uplinks} drop`);
  }
  lines.push('  }');
  // What the host sends to a cluster IP that nat did not translate never leaves the machine.
  lines.push('  chain local_out {', '    type filter hook output priority filter - 5; policy accept;');
  if (unserved) lines.push(`    ${unserved}`);
  lines.push(`    ${goneOwner}`);
  lines.push('  }');
  if (config.dns) {
    lines.push(
      '  chain input {',
      '    type filter hook input priority filter - 5; policy accept;',
      // Only redirected queries (and loopback) reach the DNS server's port.
      `    meta l4proto { tcp, udp } th dport ${config.dns.port} iifname != "lo" ct status & dnat == 0 drop`,
      '  }',
    );
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
