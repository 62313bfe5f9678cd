// UDP conntrack entries a Service change leaves stale, and their removal, as kube-proxy does.
// A UDP "connection" is DNATed once, on its first packet; conntrack keeps sending the flow to that
// endpoint while packets keep coming (a DNS client reusing its port, a syslog or game stream). So:
// - an endpoint that leaves a UDP Service: the flows from its cluster IP to that endpoint go;
// - a UDP Service that gains its first endpoint: every flow to its cluster IP goes (packets sent
//   while it had none were rejected or left unDNATed, and their entries would keep it that way).
// TCP needs none of this: a dead endpoint resets or times out, and a new connection is DNATed anew.
import { CommandError, run } from '../util/command.ts';
import type { Logger } from '../log.ts';
import { eligibleTargets } from './service-rules.ts';
import type { ServiceInfo } from './services.ts';

export interface StaleFlow {
  clusterIP: string;
  /** Only the flows DNATed to this endpoint; absent: every UDP flow to the cluster IP. */
  endpointIP?: string;
}

/** Per cluster IP with a UDP port: the endpoint addresses its UDP ports send to. */
function udpTargets(services: ReadonlyMap<string, ServiceInfo>): Map<string, Set<string>> {
  const targets = new Map<string, Set<string>>();
  for (const service of services.values()) {
    for (const port of service.ports) {
      if (port.protocol !== 'UDP') continue;
      for (const clusterIP of service.clusterIPs) {
        const set = targets.get(clusterIP) ?? new Set<string>();
        for (const target of eligibleTargets(service, port)) set.add(target.ip);
        targets.set(clusterIP, set);
      }
    }
  }
  return targets;
}

/** The UDP flows that going from the `before` Services to the `after` ones leaves stale. */
export function staleUdpFlows(before: ReadonlyMap<string, ServiceInfo>, after: ReadonlyMap<string, ServiceInfo>): StaleFlow[] {
  if (before === after) return [];
  const was = udpTargets(before);
  const now = udpTargets(after);
  const stale: StaleFlow[] = [];
  for (const [clusterIP, endpoints] of now) {
    if (endpoints.size > 0 && !was.get(clusterIP)?.size) stale.push({ clusterIP });
  }
  for (const [clusterIP, endpoints] of was) {
    const kept = now.get(clusterIP);
    for (const endpointIP of endpoints) if (!kept?.has(endpointIP)) stale.push({ clusterIP, endpointIP });
  }
  return stale;
}

/** Deletes conntrack entries with the conntrack tool (Debian conntrack), one call per flow. */
export class ConntrackFlusher {
  private readonly conntrack: string;
  private readonly log: Logger;
  /** Calls that found entries to delete; for tests and debugging. */
  flushed = 0;

  constructor(conntrack: string, log: Logger) {
    this.conntrack = conntrack;
    this.log = log;
  }

  async flush(flows: readonly StaleFlow[]): Promise<void> {
    for (const flow of flows) {
      const argv = [this.conntrack, '-D', '-p', 'udp', '--orig-dst', flow.clusterIP, ...(flow.endpointIP ? ['--dst-nat', flow.endpointIP] : [])];
      try {
        await run(argv, { timeoutMs: 10_000 });
        this.flushed++;
      } catch (err) {
        // It exits 1 when nothing matched: the common case, not an error.
        if (err instanceof CommandError && /0 flow entries have been deleted/.test(err.stderr)) continue;
        this.log.warn({ err, flow }, 'stale UDP conntrack entries not deleted');
      }
    }
  }
}
