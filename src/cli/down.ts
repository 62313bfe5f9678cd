// `vk down`: stops what `vk up` left running, even after its state directory was removed: a
// `vk up` still running there (its pid file), then every pod its sandbox node ran (found by the
// sandbox's own markers, see providers/sandbox/leftovers.ts) and what they left: cgroups, pod
// directories; then what a killed node left of its network (its nftables table, uplink flags).
// Pods of other virtual kubelets (other data directories) are not touched.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { errorMessage, VkError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { removeNodeNetworkLeftovers } from '../network/node-network.ts';
import { CommandError } from '../util/command.ts';
import { readProviderConfig } from '../providers/registry.ts';
import { removeLeftovers } from '../providers/sandbox/leftovers.ts';

/** Where `vk up --dir DIR` records its pid. */
export function upPidFile(dir: string): string {
  return path.resolve(dir, 'vk-up.pid');
}

/** The sandbox data directory `vk up --dir DIR` gives its node unless the provider config names one. */
export function upSandboxDataDir(dir: string): string {
  return path.resolve(dir, 'sandbox');
}

/** A `vk up` still running for the directory: SIGTERM, waiting up to a minute for it to stop its node and control plane. */
async function stopRunningUp(dir: string, note: (line: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(upPidFile(dir), 'utf8').trim());
  } catch {
    return;
  }
  const isUp = () => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('up');
    } catch {
      return false;
    }
  };
  if (!Number.isInteger(pid) || pid <= 0 || !isUp()) return;
  note(`stopping vk up (pid ${pid})`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isUp()) {
    if (Date.now() > deadline) throw new VkError('VK_TIMEOUT', `vk up (pid ${pid}) did not stop within 60 s of SIGTERM`);
    await sleep(200);
  }
  rmSync(upPidFile(dir), { force: true });
}

export function addDownCommand(program: Command): Command {
  return program
    .command('down')
    .description(
      'stop what `vk up --dir DIR` left running: vk up itself, and every pod its sandbox node ran (also after DIR was removed), with their cgroups and files',
    )
    .option('--dir <dir>', 'the state directory given to vk up', '.vk')
    .option('--provider-config <file>', 'the sandbox provider config given to vk up, if it set dataDir')
    .option('--node-name <name>', 'the node name given to vk up (its nftables table is named after it)', 'vk-local')
    .action(async (opts: { dir: string; providerConfig?: string; nodeName: string }) => {
      const note = (line: string) => process.stderr.write(`vk down: ${line}\n`);
      await stopRunningUp(opts.dir, note);
      const config = opts.providerConfig ? readProviderConfig(opts.providerConfig) : {};
      const configured = typeof config === 'object' && config !== null ? (config as { dataDir?: unknown }).dataDir : undefined;
      const dataDir = typeof configured === 'string' ? path.resolve(configured) : upSandboxDataDir(opts.dir);
      const report = await removeLeftovers(dataDir);
      note(
        `${report.pods.length} sandbox pod(s) of ${dataDir}: stopped ${report.pids.length} process(es), removed ${report.cgroups.length} cgroup(s) and ${report.files.length} director(ies)`,
      );
      // What a vk up killed without stopping leaves of the node network (a stopped one removed it).
      try {
        const network = await removeNodeNetworkLeftovers(opts.nodeName, dataDir, 'nft', silentLogger);
        note(`node ${opts.nodeName}: nftables table ${network.table} removed if present; uplink forwarding turned back off on [${network.uplinks.join(', ')}]`);
      } catch (err) {
        if (err instanceof CommandError && err.stderr.includes('ENOENT')) note(`node ${opts.nodeName}: no nft on this machine, so no nftables table to remove`);
        else report.failed.push(`the node network of ${opts.nodeName}: ${errorMessage(err)}`);
      }
      if (report.failed.length > 0) throw new VkError('VK_PROVIDER', `could not clean up everything: ${report.failed.join('; ')}`);
    });
}
