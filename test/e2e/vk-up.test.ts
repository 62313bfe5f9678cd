// `vk up` as a user runs it: its own control plane, whose kube-apiserver gets an address of this
// host's own (vkapi<n>) that is also the node's InternalIP, so the node proxy works; stopping
// removes the interface.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { kubectl, waitFor } from '../harness/cluster.ts';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

function links(): { ifname: string; address: string }[] {
  return JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' }));
}

function linkNames(): string[] {
  return links().map((l) => l.ifname);
}

/** host-address.ts puts the owner's pid in the MAC address. */
function ownedBy(pid: number): string[] {
  const mac = `02:76:${[24, 16, 8, 0].map((s) => ((pid >>> s) & 255).toString(16).padStart(2, '0')).join(':')}`;
  return links()
    .filter((l) => l.address === mac)
    .map((l) => l.ifname);
}

test(
  'vk up: kubectl get --raw /api/v1/nodes/vk-local/proxy/stats/summary works, the kubernetes EndpointSlice names the claimed address, stopping removes it',
  { skip: process.getuid?.() !== 0 ? 'claiming an address needs root' : undefined },
  async (t) => {
    const dir = tempDir(t, 'vk-up-');
    const child = spawn(process.execPath, [VK, 'up', '--dir', dir, '--kubelet-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      // A failed run must not leave its interface behind (the assertions below are the check).
      for (const name of ownedBy(child.pid!)) execFileSync('ip', ['link', 'del', 'dev', name]);
    });

    const ready = await waitFor(
      () => `vk up to print the pods' address of kube-apiserver; stderr:\n${stderr.slice(-3000)}`,
      () => {
        if (child.exitCode !== null) throw new Error(`vk up exited ${child.exitCode}`);
        return /Pods reach kube-apiserver at https:\/\/([\d.]+):(\d+) \((vkapi\d+), removed on stop\)/.exec(stdout) ?? undefined;
      },
      { timeoutMs: 900_000, intervalMs: 250 },
    );
    const [, address, port, name] = ready as unknown as [string, string, string, string];
    assert.deepEqual(ownedBy(child.pid!), [name], 'vk up owns the interface');
    assert.match(address, /^10\.214\.\d+\.1$/);
    assert.ok(linkNames().includes(name), `${name} exists while vk up runs`);
    const kubeconfig = path.join(dir, 'cluster', 'admin.kubeconfig');
    const k = (args: string[]) => kubectl(['--kubeconfig', kubeconfig, ...args]);

    const node = await waitFor('node vk-local to publish its InternalIP', async () => {
      const n = JSON.parse((await k(['get', 'node', 'vk-local', '-o', 'json'])).stdout);
      return n.status?.addresses?.length ? n : undefined;
    });
    assert.deepEqual(
      node.status.addresses.filter((a: { type: string }) => a.type === 'InternalIP').map((a: { address: string }) => a.address),
      [address],
    );

    // kube-apiserver → <claimed address>:<kubelet port>: refused for 127.0.0.1 ("address not allowed").
    const summary = await waitFor('stats/summary through the node proxy', async () =>
      JSON.parse((await k(['get', '--raw', '/api/v1/nodes/vk-local/proxy/stats/summary'])).stdout),
    );
    assert.equal(summary.node.nodeName, 'vk-local');

    const slices = JSON.parse((await k(['-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json'])).stdout);
    assert.deepEqual(
      slices.items.flatMap((s: { endpoints: { addresses: string[] }[] }) => s.endpoints.flatMap((e) => e.addresses)),
      [address],
    );
    assert.deepEqual(
      slices.items.flatMap((s: { ports: { port: number }[] }) => s.ports.map((p) => p.port)),
      [Number(port)],
    );

    // metrics-server, which vk up runs: kubectl top lists the node and a pod on it within 60 s.
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'top-me', namespace: 'default' },
      spec: { nodeName: 'vk-local', tolerations: [{ operator: 'Exists' }], containers: [{ name: 'main', image: 'busybox' }] },
    };
    await kubectl(['--kubeconfig', kubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(pod) });
    const topPod = await waitFor(
      'kubectl top pod to list top-me',
      async () => {
        const out = await kubectl(['--kubeconfig', kubeconfig, '-n', 'default', 'top', 'pod', 'top-me', '--no-headers'], { allowFailure: true });
        return out.code === 0 && out.stdout.startsWith('top-me') ? out.stdout.trim() : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const topNode = await waitFor('kubectl top node to list vk-local', async () => {
      const out = await kubectl(['--kubeconfig', kubeconfig, 'top', 'node', 'vk-local', '--no-headers'], { allowFailure: true });
      return out.code === 0 && out.stdout.startsWith('vk-local') ? out.stdout.trim() : undefined;
    });
    t.diagnostic(`kubectl top: ${topPod} | ${topNode}`);

    child.kill('SIGTERM');
    const { code } = await waitFor('vk up to exit', () => (child.exitCode !== null || child.signalCode !== null) && { code: child.exitCode }, {
      timeoutMs: 60_000,
    });
    assert.equal(code, 0, `vk up exit code; stderr:\n${stderr.slice(-2000)}`);
    assert.deepEqual(
      linkNames().filter((n) => n === name),
      [],
      `${name} removed on stop`,
    );
  },
);

test(
  'vk up without CAP_NET_ADMIN says so in one line and runs on 127.0.0.1 as before',
  { skip: process.getuid?.() !== 0 ? 'dropping the capability needs setpriv as root' : undefined },
  async (t) => {
    const dir = tempDir(t, 'vk-up-nocap-');
    const child = spawn('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, VK, 'up', '--dir', dir, '--kubelet-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    });
    await waitFor(
      () => `vk up to be ready; stderr:\n${stderr.slice(-3000)}`,
      () => {
        if (child.exitCode !== null) throw new Error(`vk up exited ${child.exitCode}`);
        return stdout.includes('Press Ctrl-C');
      },
      { timeoutMs: 900_000, intervalMs: 250 },
    );
    const notes = stderr.split('\n').filter((line) => line.startsWith('vk: no address of its own'));
    assert.equal(notes.length, 1, stderr);
    assert.match(notes[0]!, /needs root or CAP_NET_ADMIN.*; kube-apiserver stays on 127\.0\.0\.1 only$/);
    assert.doesNotMatch(stdout, /Pods reach kube-apiserver/);

    const kubeconfig = path.join(dir, 'cluster', 'admin.kubeconfig');
    const k = (args: string[]) => kubectl(['--kubeconfig', kubeconfig, ...args]);
    const node = await waitFor('node vk-local to publish its InternalIP', async () => {
      const n = JSON.parse((await k(['get', 'node', 'vk-local', '-o', 'json'])).stdout);
      return n.status?.addresses?.length ? n : undefined;
    });
    assert.deepEqual(
      node.status.addresses.filter((a: { type: string }) => a.type === 'InternalIP').map((a: { address: string }) => a.address),
      ['127.0.0.1'],
    );
    const slices = JSON.parse((await k(['-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json'])).stdout);
    assert.deepEqual(
      slices.items.flatMap((s: { endpoints?: unknown[] }) => s.endpoints ?? []),
      [],
    );
    child.kill('SIGTERM');
    await waitFor('vk up to exit', () => child.exitCode !== null || child.signalCode !== null, { timeoutMs: 60_000 });
    assert.equal(child.exitCode, 0);
  },
);

test(
  'a vk up that fails after its control plane started stops it and removes its interface',
  { skip: process.getuid?.() !== 0 ? 'claiming an address needs root' : undefined },
  async (t) => {
    const dir = tempDir(t, 'vk-up-fail-');
    const missing = path.join(dir, 'no-such-provider-config.yaml');
    const child = spawn(process.execPath, [VK, 'up', '--dir', dir, '--kubelet-port', '0', '--provider-config', missing], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    t.after(() => {
      for (const name of ownedBy(child.pid!)) execFileSync('ip', ['link', 'del', 'dev', name]);
    });
    await waitFor(
      () => `vk up to fail; stderr:\n${stderr.slice(-3000)}`,
      () => child.exitCode !== null || child.signalCode !== null,
      { timeoutMs: 900_000, intervalMs: 250 },
    );
    assert.notEqual(child.exitCode, 0);
    assert.match(stderr, /kube-apiserver also reachable at https:\/\/10\.214\.\d+\.1:\d+/, 'it got as far as the control plane');
    assert.match(stderr.trim().split('\n').at(-1)!, /^vk: .*no-such-provider-config\.yaml/);
    assert.deepEqual(ownedBy(child.pid!), [], 'its interface is gone');
  },
);
