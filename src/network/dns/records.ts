// Answers for the cluster domain from a ServiceView snapshot, with the CoreDNS kubernetes plugin's
// semantics (the Kubernetes DNS-Based Service Discovery specification, with `pods insecure`):
//   <svc>.<ns>.svc.<zone>                  A: the cluster IPs; headless: the published endpoints
//   <endpoint>.<svc>.<ns>.svc.<zone>       A: that endpoint (its hostname, else its dashed IP)
//   _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV (and A) for a named port; SRV on the names above: every port
//   ExternalName services                  CNAME to spec.externalName
//   <a-b-c-d>.<ns>.pod.<zone>              A: that address
//   d.c.b.a.in-addr.arpa                   PTR for cluster IPs and endpoint addresses (others are forwarded)
//   dns-version.<zone>                     TXT: the schema version
// A name that exists without the asked type is NODATA (NOERROR, SOA in authority); a name in the zone
// that does not exist is NXDOMAIN (SOA in authority); names outside the zone are not answered here.
// Pure apart from the SOA serial (the time of the last index build, as CoreDNS uses the last change).
import type { Answer, SoaAnswer } from 'dns-packet';
import { parseIPv4 } from '../../util/ipv4.ts';
import type { ServiceEndpoint, ServiceInfo, ServiceView } from '../services.ts';

/** CoreDNS's default TTL for cluster records, in seconds. */
export const CLUSTER_TTL = 5;
/** The Kubernetes DNS schema version served at dns-version.<zone>. */
const SCHEMA_VERSION = '1.1.0';

export type ClusterAnswer =
  | { kind: 'forward' }
  | {
      kind: 'answer';
      rcode: 'NOERROR' | 'NXDOMAIN';
      answers: Answer[];
      authorities: Answer[];
      additionals: Answer[];
    };

/** One address a name stands for; port and target (the name an SRV record points to) for SRV answers. */
interface Target {
  ip: string;
  port: number | undefined;
  target: string;
}

interface ServiceEntry {
  info: ServiceInfo;
  /** `<svc>.<ns>.svc.<zone>`, lower case. */
  fqdn: string;
  /** Endpoints DNS publishes: ready ones, or all of them with publishNotReadyAddresses. */
  published: ServiceEndpoint[];
}

interface Index {
  snapshot: ReadonlyMap<string, ServiceInfo>;
  /** By `<svc>.<ns>`, lower case. */
  services: Map<string, ServiceEntry>;
  namespaces: Set<string>;
  /** IPv4 address → the names it has (cluster IPs → the service, endpoints → endpoint names). */
  ptr: Map<string, string[]>;
  serial: number;
}

export class ClusterRecords {
  readonly zone: string;
  readonly #view: ServiceView;
  #index: Index | undefined;

  /** @param clusterDomain the kubelet's --cluster-domain, e.g. `cluster.local`. */
  constructor(view: ServiceView, clusterDomain: string) {
    this.#view = view;
    this.zone = normalize(clusterDomain);
  }

  /**
   * The answer to one question. `name` as it came on the wire (any case, with or without the final
   * dot); `type` a dns-packet record type name ('A', 'SRV', ..., 'UNKNOWN_65').
   */
  lookup(name: string, type: string): ClusterAnswer {
    const lower = normalize(name);
    if (lower.endsWith('.in-addr.arpa')) return this.#reverse(name, lower, type);
    let labels: string[];
    if (lower === this.zone) labels = [];
    else if (lower.endsWith(`.${this.zone}`)) labels = lower.slice(0, -this.zone.length - 1).split('.');
    else return { kind: 'forward' };

    const index = this.#currentIndex();
    const kind = labels.at(-1);
    if (labels.length === 0) return type === 'SOA' ? this.#answer([this.#soa(index)]) : this.#nodata(index);
    if (labels.length === 1 && kind === 'dns-version') {
      return type === 'TXT' ? this.#answer([{ name, type: 'TXT', ttl: CLUSTER_TTL, data: SCHEMA_VERSION }]) : this.#nodata(index);
    }
    if (kind === 'svc') return this.#service(index, name, labels.slice(0, -1), type);
    if (kind === 'pod') return this.#pod(index, name, labels.slice(0, -1), type);
    return this.#nxdomain(index);
  }

  /** `[[_port, _proto,] | [endpoint,]] svc, ns` below `svc.<zone>`. */
  #service(index: Index, name: string, labels: string[], type: string): ClusterAnswer {
    if (labels.length === 0) return this.#nodata(index);
    const namespace = labels.at(-1)!;
    if (labels.length === 1) return index.namespaces.has(namespace) ? this.#nodata(index) : this.#nxdomain(index);
    const entry = index.services.get(`${labels.at(-2)}.${namespace}`);
    if (!entry || labels.length > 4) return this.#nxdomain(index);

    let endpoint: string | undefined;
    let port: { name: string; protocol: string } | undefined;
    if (labels.length === 3) endpoint = labels[0];
    else if (labels.length === 4) {
      const [portLabel, protoLabel] = labels as [string, string];
      if (!portLabel.startsWith('_') || !protoLabel.startsWith('_')) return this.#nxdomain(index);
      port = { name: portLabel.slice(1), protocol: protoLabel.slice(1) };
    }

    if (entry.info.type === 'ExternalName') {
      const external = entry.info.externalName;
      // An address in externalName is no CNAME target: CoreDNS serves nothing for it.
      if (endpoint !== undefined || !external || parseIPv4(external) !== undefined) return this.#nxdomain(index);
      return this.#answer([{ name, type: 'CNAME', ttl: CLUSTER_TTL, data: normalize(external) }]);
    }

    const targets = serviceTargets(entry, endpoint, port);
    if (targets.length === 0) return this.#nxdomain(index);
    if (type === 'A' || type === 'ANY') {
      return this.#answer(uniqueIps(targets).map((ip) => aRecord(name, ip)));
    }
    if (type === 'SRV') return this.#srv(index, name, targets);
    return this.#nodata(index);
  }

  #srv(index: Index, name: string, targets: Target[]): ClusterAnswer {
    const seen = new Set<string>();
    const withPorts = targets.filter((t) => {
      const key = `${t.target}:${t.port}`;
      if (t.port === undefined || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (withPorts.length === 0) return this.#nodata(index);
    const weight = Math.floor(100 / withPorts.length);
    const answers: Answer[] = withPorts.map((t) => ({
      name,
      type: 'SRV',
      ttl: CLUSTER_TTL,
      data: { priority: 0, weight, port: t.port!, target: t.target },
    }));
    const glue = new Set<string>();
    const additionals: Answer[] = [];
    for (const t of targets) {
      const key = `${t.target} ${t.ip}`;
      if (glue.has(key)) continue;
      glue.add(key);
      additionals.push(aRecord(t.target, t.ip));
    }
    return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [], additionals };
  }

  /** `a-b-c-d, ns` below `pod.<zone>`: any namespace, any address (CoreDNS `pods insecure`). */
  #pod(index: Index, name: string, labels: string[], type: string): ClusterAnswer {
    if (labels.length === 1) return this.#nodata(index);
    if (labels.length !== 2) return this.#nxdomain(index);
    const dashed = labels[0]!;
    const ip = dashed.split('-').length === 4 ? dashed.replaceAll('-', '.') : '';
    if (parseIPv4(ip) === undefined) return this.#nxdomain(index);
    return type === 'A' || type === 'ANY' ? this.#answer([aRecord(name, ip)]) : this.#nodata(index);
  }

  #reverse(name: string, lower: string, type: string): ClusterAnswer {
    const octets = lower.slice(0, -'.in-addr.arpa'.length).split('.');
    if (octets.length !== 4 || type !== 'PTR') return { kind: 'forward' };
    const ip = octets.reverse().join('.');
    const names = parseIPv4(ip) === undefined ? undefined : this.#currentIndex().ptr.get(ip);
    if (!names) return { kind: 'forward' };
    return this.#answer(names.map((target) => ({ name, type: 'PTR', ttl: CLUSTER_TTL, data: target })));
  }

  #answer(answers: Answer[]): ClusterAnswer {
    return { kind: 'answer', rcode: 'NOERROR', answers, authorities: [], additionals: [] };
  }

  #nodata(index: Index): ClusterAnswer {
    return { kind: 'answer', rcode: 'NOERROR', answers: [], authorities: [this.#soa(index)], additionals: [] };
  }

  #nxdomain(index: Index): ClusterAnswer {
    return { kind: 'answer', rcode: 'NXDOMAIN', answers: [], authorities: [this.#soa(index)], additionals: [] };
  }

  #soa(index: Index): SoaAnswer {
    return {
      name: this.zone,
      type: 'SOA',
      ttl: CLUSTER_TTL,
      data: {
        mname: `ns.dns.${this.zone}`,
        rname: `hostmaster.${this.zone}`,
        serial: index.serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: CLUSTER_TTL,
      },
    };
  }

  /** The index of the current snapshot, rebuilt only when the view hands out a new snapshot object. */
  #currentIndex(): Index {
    const snapshot = this.#view.snapshot();
    if (this.#index?.snapshot !== snapshot) this.#index = buildIndex(snapshot, this.zone);
    return this.#index;
  }
}

function buildIndex(snapshot: ReadonlyMap<string, ServiceInfo>, zone: string): Index {
  const services = new Map<string, ServiceEntry>();
  const namespaces = new Set<string>();
  const ptr = new Map<string, string[]>();
  const addPtr = (ip: string, target: string) => {
    const names = ptr.get(ip);
    if (!names) ptr.set(ip, [target]);
    else if (!names.includes(target)) names.push(target);
  };
  for (const info of snapshot.values()) {
    const key = `${info.name}.${info.namespace}`.toLowerCase();
    const fqdn = `${key}.svc.${zone}`;
    const published = info.endpoints.filter((e) => e.ready || info.publishNotReadyAddresses);
    services.set(key, { info, fqdn, published });
    namespaces.add(info.namespace.toLowerCase());
    if (info.type === 'ExternalName') continue;
    for (const ip of info.clusterIPs) addPtr(ip, fqdn);
    for (const e of published) addPtr(e.ip, `${endpointHostname(e)}.${fqdn}`);
  }
  return { snapshot, services, namespaces, ptr, serial: Math.floor(Date.now() / 1000) >>> 0 };
}

/**
 * The addresses a service name stands for, optionally narrowed to one endpoint name or one
 * port/protocol (CoreDNS findServices): a ClusterIP service's cluster IPs per matching port, a
 * headless service's (or an endpoint name's) published endpoints per matching endpoint port.
 */
function serviceTargets(entry: ServiceEntry, endpoint: string | undefined, port: { name: string; protocol: string } | undefined): Target[] {
  const targets: Target[] = [];
  if (entry.info.headless || endpoint !== undefined) {
    for (const e of entry.published) {
      const hostname = endpointHostname(e);
      if (endpoint !== undefined && hostname !== endpoint) continue;
      const target = `${hostname}.${entry.fqdn}`;
      const ports = Object.entries(e.ports);
      // An endpoint without ports (a headless service without ports) still has its address.
      if (ports.length === 0 && !port) targets.push({ ip: e.ip, port: undefined, target });
      for (const [name, p] of ports) {
        if (portMatches(port, name, p.protocol)) targets.push({ ip: e.ip, port: p.port, target });
      }
    }
    return targets;
  }
  for (const p of entry.info.ports) {
    if (!portMatches(port, p.name, p.protocol)) continue;
    for (const ip of entry.info.clusterIPs) targets.push({ ip, port: p.port, target: entry.fqdn });
  }
  return targets;
}

function portMatches(wanted: { name: string; protocol: string } | undefined, name: string, protocol: string): boolean {
  return !wanted || (wanted.name === name.toLowerCase() && wanted.protocol === protocol.toLowerCase());
}

/** An endpoint's DNS label: its hostname, else its address with dashes (CoreDNS endpointHostname). */
export function endpointHostname(endpoint: ServiceEndpoint): string {
  return (endpoint.hostname || endpoint.ip.replaceAll('.', '-')).toLowerCase();
}

function uniqueIps(targets: Target[]): string[] {
  return [...new Set(targets.map((t) => t.ip))];
}

function aRecord(name: string, ip: string): Answer {
  return { name, type: 'A', ttl: CLUSTER_TTL, data: ip };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}
