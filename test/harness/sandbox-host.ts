// Whether this host can run the sandbox provider (root, bubblewrap, catatonit, a static busybox):
// the reason to skip a sandbox test, or false.
import os from 'node:os';
import { parseSandboxConfig } from '../../src/providers/sandbox/config.ts';
import { checkHost } from '../../src/providers/sandbox/sandbox-provider.ts';

async function sandboxHostSkip(): Promise<string | false> {
  try {
    await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
    return false;
  } catch (err) {
    return (err as Error).message;
  }
}

export const sandboxSkip: string | false = await sandboxHostSkip();
