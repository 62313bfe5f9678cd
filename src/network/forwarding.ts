// IPv4 forwarding on the uplinks pods' egress leaves through. Forwarding is a flag of the
// interface a packet arrives on, so replies to masqueraded pod traffic (un-NATed to the pod's
// address before routing) are forwarded only if the uplink has it. Where it is off, we turn it on
// and the packet rules forward nothing else arriving there (service-rules.ts), so the host routes
// exactly what it did before plus the pods' replies. The flags we turned on are recorded in a
// state file and turned off again on stop, also by a later process after a crash.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { run } from '../util/command.ts';

function flagPath(iface: string): string {
  if (!/^[\w.-]{1,15}$/.test(iface)) throw new Error(`invalid interface name ${JSON.stringify(iface)}`);
  return `/proc/sys/net/ipv4/conf/${iface}/forwarding`;
}

/** The interfaces of the host's default routes. */
export async function defaultRouteInterfaces(ip: string): Promise<string[]> {
  const routes = JSON.parse((await run([ip, '-j', '-4', 'route', 'show', 'default'])) || '[]') as { dev?: string }[];
  return [...new Set(routes.map((r) => r.dev).filter((d): d is string => !!d))];
}

export interface UplinkForwarding {
  /** Uplinks whose flag this node turned on (the rules guard them). */
  readonly turnedOn: readonly string[];
  restore(): Promise<void>;
}

/** Turns forwarding on for `uplinks` where it is off; `stateFile` remembers which, across restarts. */
export async function enableUplinkForwarding(uplinks: readonly string[], stateFile: string): Promise<UplinkForwarding> {
  const turnedOn = new Set<string>();
  try {
    for (const iface of JSON.parse(await readFile(stateFile, 'utf8')) as string[]) turnedOn.add(iface);
  } catch {
    // no state: nothing turned on by an earlier process
  }
  for (const iface of uplinks) {
    const current = (await readFile(flagPath(iface), 'utf8')).trim();
    if (current === '0') {
      await writeFile(flagPath(iface), '1');
      turnedOn.add(iface);
    }
  }
  await writeFile(stateFile, JSON.stringify([...turnedOn]));
  return {
    turnedOn: [...turnedOn],
    async restore() {
      await restoreUplinkForwarding(stateFile);
    },
  };
}

/** Turns off the flags `stateFile` says were turned on (also after a crash) and removes it; returns those uplinks. */
export async function restoreUplinkForwarding(stateFile: string): Promise<string[]> {
  let turnedOn: string[];
  try {
    turnedOn = JSON.parse(await readFile(stateFile, 'utf8')) as string[];
  } catch {
    return []; // no state: nothing turned on
  }
  for (const iface of turnedOn) await writeFile(flagPath(iface), '0').catch(() => {}); // gone with its interface
  await rm(stateFile, { force: true });
  return turnedOn;
}
