// Bad input to the vk command gets a one-line error naming the problem and a non-zero exit.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

function vk(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [VK, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function assertOneLineError(result: { code: number; stderr: string }, pattern: RegExp): void {
  assert.notEqual(result.code, 0, 'exit code is non-zero');
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${result.stderr}`);
  assert.match(lines[0]!, pattern);
}

async function busyPort(): Promise<{ port: number; close: () => void }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

test('an unknown flag is named', async () => {
  assertOneLineError(await vk(['run', '--bogus-flag']), /unknown option '--bogus-flag'/);
});

test('a missing --kubeconfig file is named', async () => {
  assertOneLineError(await vk(['run', '--kubeconfig', '/nonexistent/kubeconfig']), /--kubeconfig: file \/nonexistent\/kubeconfig does not exist/);
});

test('an unreachable API server in --kubeconfig is named', async (t) => {
  const { port, close } = await busyPort();
  close(); // nothing listens there any more
  const dir = tempDir(t, 'vk-cli-');
  const kubeconfig = path.join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`,
  );
  assertOneLineError(
    await vk(['run', '--kubeconfig', kubeconfig, '--startup-timeout', '5s']),
    new RegExp(`cannot reach the API server at https://127.0.0.1:${port}.*ECONNREFUSED`),
  );
});

test('a kubelet port already in use is named', async () => {
  const busy = await busyPort();
  try {
    const kubeconfig = process.env.VK_TEST_KUBECONFIG!;
    assertOneLineError(
      await vk(['run', '--kubeconfig', kubeconfig, '--kubelet-port', String(busy.port), '--node-name', 'vk-cli-port']),
      new RegExp(`--kubelet-port ${busy.port}: address already in use`),
    );
  } finally {
    busy.close();
  }
});

test('an API server port already in use for `vk up` is named', async (t) => {
  const busy = await busyPort();
  try {
    const dir = tempDir(t, 'vk-cli-up-');
    assertOneLineError(
      await vk(['up', '--dir', dir, '--apiserver-port', String(busy.port)]),
      new RegExp(`--apiserver-port ${busy.port}: address already in use`),
    );
  } finally {
    busy.close();
  }
});

test('bad values in flags and config files name the field', async (t) => {
  assertOneLineError(await vk(['run', '--pod-workers', 'many']), /--pod-workers.*not a whole number/);
  assertOneLineError(await vk(['run', '--taint', 'oops']), /invalid taint "oops"/);
  const dir = tempDir(t, 'vk-cli-config-');
  const config = path.join(dir, 'vk.yaml');
  writeFileSync(config, 'podWorkers: 0\n');
  assertOneLineError(await vk(['run', '--config', config]), /--config .*vk\.yaml: podWorkers: .*>=1/);
  writeFileSync(config, 'nodeName: Not_A_Name\n');
  assertOneLineError(await vk(['run', '--config', config]), /nodeName: must be a lowercase DNS subdomain/);
  writeFileSync(config, 'resyncInterval: soon\n');
  assertOneLineError(await vk(['run', '--config', config]), /resyncInterval: invalid duration "soon"/);
  writeFileSync(config, 'unknownKey: 1\n');
  assertOneLineError(await vk(['run', '--config', config]), /unknownKey/);
});
