// `vk down` after `vk up --provider sandbox`: the sandbox's pods outlive vk up by design (a
// restart adopts them), so once vk up has stopped and its state directory is removed nothing
// knows about them any more. `vk down --dir` finds them by the sandbox's own markers and stops
// them, removing their cgroups too, and what a killed vk up left of the node network.
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Pod } from '../../src/kube/types.ts';
import { tableNameFor } from '../../src/network/service-rules.ts';
import { parseSandboxConfig } from '../../src/providers/sandbox/config.ts';
import { checkHost } from '../../src/providers/sandbox/sandbox-provider.ts';
import { findLeftovers, removeLeftovers } from '../../src/providers/sandbox/leftovers.ts';
import { POD_DIR_ENV } from '../../src/providers/sandbox/pause.ts';
import { run } from '../../src/util/command.ts';
import { buildBusyboxImage } from '../fixtures/registry/image-builder.ts';
import { startTestRegistry } from '../fixtures/registry/registry.ts';
import { kubectl, waitFor } from '../harness/cluster.ts';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

let skip: string | false = process.getuid?.() !== 0 ? 'vk up with the sandbox provider needs root' : false;
if (!skip) {
  try {
    await checkHost(parseSandboxConfig({ dataDir: os.tmpdir() }));
  } catch (err) {
    skip = (err as Error).message;
  }
}

/** Processes carrying the pause marker of a pod under `pods`. */
function markedPids(pods: string): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0)) {
    try {
      if (
        readFileSync(`/proc/${pid}/environ`, 'utf8')
          .split('\0')
          .some((e) => e.startsWith(`${POD_DIR_ENV}=${pods}/`))
      )
        out.push(pid);
    } catch {
      // gone
    }
  }
  return out;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

test('vk up (sandbox), stop, remove its state directory: the pods still run; vk down stops them and removes their cgroups', { skip }, async (t) => {
  const registry = await startTestRegistry();
  t.after(() => registry.stop());
  const image = (await registry.pushImage('library/busybox', await buildBusyboxImage(), { tag: '1.36' })).reference;
  const dir = tempDir(t, 'vk-down-');
  const dataDir = path.join(dir, 'sandbox');
  const pods = path.join(dataDir, 'pods');
  // No egress: the node would turn on forwarding on this machine's uplink for it.
  const config = path.join(os.tmpdir(), `vk-down-${process.pid}.yaml`);
  writeFileSync(config, 'network:\n  egress: false\n');
  t.after(async () => {
    rmSync(config, { force: true });
    // Whatever the test left (it failed midway): the same cleanup, from here.
    await removeLeftovers(dataDir);
  });

  const up = spawn(process.execPath, [VK, 'up', '--dir', dir, '--kubelet-port', '0', '--provider', 'sandbox', '--provider-config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  up.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  up.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const upExited = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
  t.after(async () => {
    if (up.exitCode === null && up.signalCode === null) {
      up.kill('SIGTERM');
      await upExited;
    }
  });
  await waitFor(
    () => `vk up to start; stderr:\n${stderr.slice(-3000)}`,
    () => {
      if (up.exitCode !== null) throw new Error(`vk up exited ${up.exitCode}:\n${stderr.slice(-3000)}`);
      return stdout.includes('is running on');
    },
    { timeoutMs: 600_000, intervalMs: 250 },
  );
  const kubeconfig = path.join(dir, 'cluster', 'admin.kubeconfig');
  const k = (args: string[]) => kubectl(['--kubeconfig', kubeconfig, ...args]);
  const pod = (name: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: 'vk-local',
      tolerations: [{ operator: 'Exists' }],
      automountServiceAccountToken: false,
      containers: [{ name: 'c', image, command: ['sleep', '3600'] }],
    },
  });
  for (const name of ['one', 'two']) await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(pod(name)) });
  const uids = await waitFor(
    'both pods Running on vk-local',
    async () => {
      const list = JSON.parse((await k(['-n', 'default', 'get', 'pods', '-o', 'json'])).stdout) as { items: Pod[] };
      const running = list.items.filter((p) => p.status?.phase === 'Running');
      return running.length === 2 ? running.map((p) => p.metadata!.uid!) : undefined;
    },
    { timeoutMs: 180_000 },
  );
  const pauses = markedPids(pods);
  assert.ok(pauses.length >= 2, `marked pause processes: ${pauses.join(', ')}`);
  const before = findLeftovers(dataDir);
  assert.deepEqual([...before.pods].sort(), [...uids].sort(), 'the markers name exactly the two pods');
  assert.ok(before.cgroups.length === 0 || before.cgroups.length >= 2, `pod cgroups: ${before.cgroups.join(', ')}`);

  up.kill('SIGTERM');
  assert.equal(await upExited, 0, `vk up stopped cleanly; stderr:\n${stderr.slice(-2000)}`);
  rmSync(dir, { recursive: true, force: true });
  // What a vk up killed with -9 leaves of its node network: the node's nftables table (a stopped one removed it).
  const table = tableNameFor('vk-local');
  await run(['nft', 'add', 'table', 'ip', table]);
  t.after(() => run(['nft', 'delete', 'table', 'ip', table]).catch(() => undefined));
  assert.ok(pauses.every(alive), 'the pods still run after vk up stopped and its state directory was removed');

  const down = await new Promise<{ code: number; stderr: string }>((resolve) =>
    execFile(process.execPath, [VK, 'down', '--dir', dir], (err, _out, errText) => resolve({ code: err ? Number(err.code) : 0, stderr: errText })),
  );
  assert.equal(down.code, 0, down.stderr);
  t.diagnostic(`${down.stderr.trim()} (pod cgroups found before: ${before.cgroups.length})`);
  assert.match(down.stderr, new RegExp(`vk down: 2 sandbox pod\\(s\\) of ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: stopped \\d+ process\\(es\\)`));
  assert.deepEqual(pauses.filter(alive), [], 'every pause process is gone');
  assert.deepEqual(markedPids(pods), [], 'no marked process is left');
  for (const cgroup of before.cgroups) assert.ok(!existsSync(cgroup), `${cgroup} removed`);
  for (const root of new Set(before.cgroups.map((c) => path.dirname(c)))) {
    // Another test's sandbox provider may share the root: then it still holds that provider's pods.
    const children = existsSync(root) ? readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()) : [];
    assert.ok(!existsSync(root) || children.length > 0, `the emptied root cgroup ${root} removed`);
  }
  assert.match(down.stderr, new RegExp(`node vk-local: nftables table ${table} removed`));
  await assert.rejects(run(['nft', 'list', 'table', 'ip', table]), 'the table is gone');
  const after = findLeftovers(dataDir);
  assert.deepEqual(after, { pods: [], pids: [], cgroups: [], files: [] }, 'nothing left to find');
});
