// The sandbox provider against the shared in-process Provider contract: real pods in Linux
// namespaces from a local busybox root filesystem. Needs root and the runtime's tools; skipped
// (with the reason) otherwise.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../log.ts';
import { busyboxRootfs } from '../../../test/fixtures/busybox-rootfs.ts';
import { runProviderContract, CONTRACT_CASES, type ContractCaseName } from '../contract.ts';
import { parseSandboxConfig } from './config.ts';
import { checkHost, SandboxProvider } from './sandbox-provider.ts';

let unavailable: string | undefined;
try {
  await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
} catch (err) {
  unavailable = (err as Error).message;
}

runProviderContract({
  name: 'sandbox',
  async make() {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sbx-contract-'));
    const provider = await SandboxProvider.open(
      { dataDir: path.join(dir, 'data'), localImages: { busybox: busyboxRootfs(dir) } },
      { nodeName: 'contract', nodeIP: '127.0.0.1', log: silentLogger },
    );
    return {
      provider,
      async close() {
        const call = { signal: AbortSignal.timeout(30_000) };
        for (const pod of await provider.listPods(call)) await provider.deletePod(pod, { ...call, reason: 'deleted' }).catch(() => undefined);
        await provider.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  pod: () => ({ spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'] }] } }),
  timeoutMs: 20_000,
  skip: unavailable ? (Object.fromEntries(CONTRACT_CASES.map((name) => [name, unavailable])) as Partial<Record<ContractCaseName, string>>) : {},
});
