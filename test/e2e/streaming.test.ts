// exec, attach and port-forward with the real kubectl through the real kube-apiserver, which
// speaks SPDY (or passes WebSocket v4 through) to our kubelet API.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { before, test } from 'node:test';
import { WebSocket } from 'ws';
import type { Pod } from '../../src/kube/types.ts';
import { clusterInfo, fileScope, kubeconfigPath, kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';

let namespace: string;
const scope = fileScope();
const POD = 'shell';

before(async () => {
  // One node and one running pod shared by every test in this file.
  const t = scope;
  namespace = await newNamespace(t, 'vk-stream');
  const { nodeName } = await startVirtualNode(t, { kubeletApi: true });
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD },
    spec: {
      nodeName,
      automountServiceAccountToken: false,
      containers: [{ name: 'main', image: 'busybox', stdin: true, env: [{ name: 'GREETING', value: 'hi there' }] }],
    },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  await waitFor(
    'the pod Running',
    async () => (JSON.parse((await kubectl(['-n', namespace, 'get', 'pod', POD, '-o', 'json'])).stdout) as Pod).status?.phase === 'Running',
  );
});

function kubectlBinary(): string {
  return process.env.VK_TEST_KUBECTL!;
}

test("kubectl exec prints the output and exits with the command's exit code", async () => {
  const result = await kubectl(['-n', namespace, 'exec', POD, '--', 'sh', '-c', 'echo hi; exit 3'], { allowFailure: true });
  assert.equal(result.stdout, 'hi\n');
  assert.equal(result.code, 3);
  const env = await kubectl(['-n', namespace, 'exec', POD, '--', 'printenv', 'GREETING']);
  assert.equal(env.stdout, 'hi there\n');
  const err = await kubectl(['-n', namespace, 'exec', POD, '--', 'sh', '-c', 'echo oops >&2'], { allowFailure: true });
  assert.equal(err.stderr, 'oops\n');
});

test('kubectl exec -i pipes stdin through', async () => {
  const input = 'line one\nline two\n'.repeat(2000);
  const result = await kubectl(['-n', namespace, 'exec', '-i', POD, '--', 'cat'], { input });
  assert.equal(result.stdout, input);
});

test('kubectl exec -it works with a pseudo-terminal', async () => {
  // util-linux `script` gives kubectl a real pty, so it asks for a TTY and sends resize events.
  const command = `${kubectlBinary()} -n ${namespace} exec -it ${POD} -- sh -c 'hostname; exit 7'`;
  const result = await new Promise<{ out: string; code: number | null }>((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: { ...process.env, KUBECONFIG: kubeconfigPath(), TERM: 'xterm' } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('exit', (code) => resolve({ out, code }));
  });
  assert.match(result.out, new RegExp(`${POD}\\r\\n`), 'TTY output uses CRLF line ends');
  assert.equal(result.code, 7);
});

test('kubectl attach -i echoes stdin back from the container', async () => {
  const child = spawn(kubectlBinary(), ['-n', namespace, 'attach', '-i', POD, '-c', 'main'], { env: { ...process.env, KUBECONFIG: kubeconfigPath() } });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  try {
    child.stdin.write('attached input\n');
    await waitFor('the echoed input', () => out.includes('attached input'), { timeoutMs: 30_000 });
  } finally {
    child.kill();
  }
});

test('kubectl port-forward carries HTTP traffic to the pod', async () => {
  const child = spawn(kubectlBinary(), ['-n', namespace, 'port-forward', `pod/${POD}`, ':80'], { env: { ...process.env, KUBECONFIG: kubeconfigPath() } });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /Forwarding from 127\.0\.0\.1:(\d+) -> 80/.exec(line);
        if (match) resolve(Number(match[1]));
      });
      child.on('exit', (code) => reject(new Error(`kubectl port-forward exited ${code}`)));
    });
    for (let i = 0; i < 3; i++) {
      const body = await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/' }, (res) => {
            let data = '';
            res.on('data', (chunk) => (data += chunk));
            res.on('end', () => resolve(data));
          })
          .on('error', reject);
      });
      assert.equal(body, `hello from ${POD}\n`);
    }
  } finally {
    child.kill();
  }
});

test('a WebSocket v4.channel.k8s.io exec through kube-apiserver reaches the kubelet API unchanged', async () => {
  const info = clusterInfo();
  const pki = info.pkiDir;
  const url = `${info.server.replace('https', 'wss')}/api/v1/namespaces/${namespace}/pods/${POD}/exec?command=sh&command=-c&command=echo%20via%20websocket&stdout=true`;
  const ws = new WebSocket(url, ['v4.channel.k8s.io'], {
    ca: readFileSync(path.join(pki, 'ca.crt')),
    cert: readFileSync(path.join(pki, 'admin.crt')),
    key: readFileSync(path.join(pki, 'admin.key')),
  });
  const channels = new Map<number, string>();
  ws.on('message', (data: Buffer) => channels.set(data[0]!, (channels.get(data[0]!) ?? '') + data.subarray(1).toString()));
  await new Promise<void>((resolve, reject) => {
    ws.on('close', () => resolve());
    ws.on('error', reject);
  });
  assert.equal(channels.get(1), 'via websocket\n');
  assert.deepEqual(JSON.parse(channels.get(3) ?? '{}'), { status: 'Success' });
});

test('exec into an unknown container is a clear error from kubectl', async () => {
  const result = await kubectl(['-n', namespace, 'exec', POD, '-c', 'nope', '--', 'true'], { allowFailure: true });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /container.*nope.*not (found|valid)/i);
});
