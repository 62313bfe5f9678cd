// --metrics-addr: /metrics over plain HTTP on its own address, as upstream virtual-kubelet serves
// it (":10255"), for scrape configs written for upstream; the kubelet port serves it too.
import http from 'node:http';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.ts';

const ADDRESS = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/;

export function parseListenAddress(address: string): { host: string; port: number } {
  const match = ADDRESS.exec(address);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new ConfigError(`--metrics-addr: invalid address ${JSON.stringify(address)} (use [host]:port, e.g. :10255)`);
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export async function serveMetrics(address: string, registry: () => Registry | undefined): Promise<{ close: () => Promise<void> }> {
  const { host, port } = parseListenAddress(address);
  const server = http.createServer((req, res) => {
    const current = registry();
    if (req.url?.split('?')[0] !== '/metrics' || !current) {
      res.writeHead(current ? 404 : 503).end();
      return;
    }
    current.metrics().then(
      (text) => res.writeHead(200, { 'content-type': current.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new ConfigError(`--metrics-addr ${address}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
    );
    server.listen(port, host, resolve);
  });
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}
