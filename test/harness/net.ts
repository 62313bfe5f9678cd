// Loopback ports for tests' own servers.
import { readFileSync } from 'node:fs';
import net from 'node:net';

/** A free TCP port on the given local address. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `count` distinct TCP ports free now, for processes started together (one upstream virtual-kubelet per node).
 * freePort() in a loop can hand out a port twice, or one that an outgoing connection takes before its process
 * binds it: these come from below the kernel's ephemeral range, each held until all are found.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const top = (ephemeralLow ?? 32768) - 1;
  const bottom = 10000;
  if (top - bottom < count) throw new Error(`freePorts: ${count} ports do not fit below the ephemeral range (${ephemeralLow})`);
  const held: net.Server[] = [];
  try {
    const span = top - bottom + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span && held.length < count; i++) {
      const server = net.createServer();
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(bottom + ((start + i) % span), host, () => resolve(true));
      });
      if (bound) held.push(server);
    }
    if (held.length < count) throw new Error(`freePorts: only ${held.length} of ${count} ports free between ${bottom} and ${top}`);
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}
