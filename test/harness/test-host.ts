// A test host in its own network namespace, joined to this machine by a veth pair. kube-apiserver
// refuses to proxy nodes/<node>/proxy to loopback addresses, so tests that need that path publish
// the namespace's address and forward its port to the kubelet API on the host side of the pair.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Scope } from './cluster.ts';

export interface TestHost {
  /** The network namespace's name (for `ip netns exec`). */
  namespace: string;
  /** The address on this machine's side of the veth pair (the kubelet listens here). */
  hostAddress: string;
  /** The namespace's address (the Node publishes this one). */
  address: string;
  /** Forwards `address:port` in the namespace to `hostAddress:port`. */
  forward(port: number): Promise<void>;
}

export function testHostsSupported(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'iproute2 (`ip netns`) is not available';
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function createTestHost(t: Scope): Promise<TestHost> {
  const id = randomBytes(3).toString('hex');
  const namespace = `vkt-${id}`;
  const hostLink = `vkh${id}`;
  const nsLink = `vkn${id}`;
  // A /30 in 10.213.0.0/16, a range this project keeps for its own test namespaces.
  const base = randomInt(0, 16384) * 4;
  const prefix = `10.213.${base >> 8}.`;
  const hostAddress = `${prefix}${(base & 255) + 1}`;
  const address = `${prefix}${(base & 255) + 2}`;
  ip('netns', 'add', namespace);
  const forwarders: ReturnType<typeof spawn>[] = [];
  t.after(() => {
    for (const child of forwarders) child.kill('SIGKILL');
    try {
      ip('netns', 'del', namespace); // takes the veth pair with it
    } catch {
      // already gone
    }
  });
  ip('link', 'add', hostLink, 'type', 'veth', 'peer', 'name', nsLink);
  ip('link', 'set', nsLink, 'netns', namespace);
  ip('addr', 'add', `${hostAddress}/30`, 'dev', hostLink);
  ip('link', 'set', hostLink, 'up');
  ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${address}/30`, 'dev', nsLink);
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', nsLink, 'up');
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
  return {
    namespace,
    hostAddress,
    address,
    async forward(port: number) {
      const script = path.join(import.meta.dirname, 'tcp-forwarder.ts');
      const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, script, address, String(port), hostAddress, String(port)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      forwarders.push(child);
      await new Promise<void>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => line === 'listening' && resolve());
        child.once('exit', (code) => reject(new Error(`forwarder in ${namespace} exited ${code}`)));
      });
    },
  };
}
