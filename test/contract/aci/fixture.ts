// An ACI provider pointed at a fresh contract server: the config, the CA file, and cleanup.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../../../src/log.ts';
import { AciProvider } from '../../../src/providers/aci/aci-provider.ts';
import { AciContractServer, type Timings } from './server.ts';

export interface AciFixture {
  server: AciContractServer;
  /** The provider config (YAML-able) pointing at the server. */
  config: Record<string, unknown>;
  open(overrides?: Record<string, unknown>, nodeName?: string): Promise<AciProvider>;
  close(): Promise<void>;
}

export const SUBNET = '/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci';

export async function startAciFixture(log: Logger, options: { timings?: Partial<Timings>; config?: Record<string, unknown> } = {}): Promise<AciFixture> {
  const server = await AciContractServer.start({ ...(options.timings && { timings: options.timings }) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aci-contract-'));
  const caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, server.caPem);
  const config: Record<string, unknown> = {
    subscriptionId: 'sub',
    resourceGroup: 'rg',
    region: 'westeurope',
    endpoint: server.url,
    caFile,
    credential: { type: 'accessToken', token: server.token },
    statusPollIntervalMs: 100,
    logPollIntervalMs: 200,
    subnetIds: [SUBNET],
    retry: { attempts: 3, baseMs: 20, maxMs: 2000 },
    ...options.config,
  };
  const opened: AciProvider[] = [];
  return {
    server,
    config,
    async open(overrides = {}, nodeName = 'aci-node') {
      const provider = await AciProvider.open({ ...config, ...overrides }, { nodeName, nodeIP: '127.0.0.1', log });
      opened.push(provider);
      return provider;
    },
    async close() {
      for (const p of opened) await p.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
