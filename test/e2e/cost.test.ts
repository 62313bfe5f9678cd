// What a pod costs, end to end: a node priced like Fargate, a pod requesting 1 vCPU / 2 GiB that
// runs 10 s; its final cost annotation, the node's vk_pod_cost_total and `vk cost` (through
// kube-apiserver's node proxy) all give what the test works out itself from the list prices.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { COST_ANNOTATION } from '../../src/cost/meter.ts';
import { readPriceFile } from '../../src/cost/prices.ts';
import type { Pod } from '../../src/kube/types.ts';
import { VkMetrics } from '../../src/metrics.ts';
import { clusterInfo, kubeconfigPath, kubectl, newNamespace, waitFor } from '../harness/cluster.ts';
import { tempDir } from '../harness/temp.ts';
import { startVirtualNode } from '../harness/virtual-node.ts';
import { writeFileSync } from 'node:fs';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');

// AWS Fargate, Linux/x86, us-east-1: USD per vCPU-hour and per GB-hour, one-minute minimum.
const FARGATE_VCPU_HOUR = 0.04048;
const FARGATE_GB_HOUR = 0.004445;

function vk(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [VK, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`vk ${args.join(' ')}: ${stderr || err.message}`)) : resolve({ stdout, stderr }),
    ),
  );
}

test('a 1 vCPU / 2 GiB pod running 10 s on a Fargate-priced node costs what the list prices give: annotation, vk_pod_cost_total, vk cost', async (t) => {
  const namespace = await newNamespace(t, 'vk-cost');
  const dir = tempDir(t, 'vk-cost-');
  const priceFile = path.join(dir, 'prices.yaml');
  writeFileSync(priceFile, 'base: fargate\n');
  const metrics = new VkMetrics();
  // On the control plane's own address (when this run has one), so the node proxy reaches its /metrics.
  const address = clusterInfo().advertiseAddress;
  const routable = address !== '127.0.0.1';
  const { nodeName } = await startVirtualNode(t, {
    metrics,
    kubeletApi: routable ? { address } : true,
    node: { prices: readPriceFile(priceFile), ...(routable && { nodeIP: address }) },
  });
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'batch', annotations: { 'mock.vk.io/complete-after-ms': '10000' } },
    spec: {
      nodeName,
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu: '1', memory: '2Gi' } } }],
    },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  const pod = await waitFor(
    'the finished pod to carry its cost',
    async () => {
      const p = JSON.parse((await kubectl(['-n', namespace, 'get', 'pod', 'batch', '-o', 'json'])).stdout) as Pod;
      return p.metadata?.annotations?.[COST_ANNOTATION] ? p : undefined;
    },
    { timeoutMs: 60_000 },
  );
  assert.equal(pod.status?.phase, 'Succeeded');
  const ran = (Date.parse(pod.status!.containerStatuses![0]!.state!.terminated!.finishedAt!) - Date.parse(pod.status!.startTime!)) / 1000;
  assert.ok(ran >= 9 && ran <= 13, `ran ${ran} s`);
  // Fargate bills a one-minute minimum: 10 s cost 60 s of 1 vCPU and 2 GB.
  const expected = (Math.max(ran, 60) * (1 * FARGATE_VCPU_HOUR + 2 * FARGATE_GB_HOUR)) / 3600;
  const [amount, currency] = pod.metadata!.annotations![COST_ANNOTATION]!.split(' ');
  assert.equal(currency, 'USD');
  assert.equal(amount, expected.toFixed(6));
  assert.equal(Number(amount).toFixed(2), expected.toFixed(2), 'to the cent');

  const text = await metrics.registry.metrics();
  const total = new RegExp(
    `^vk_pod_cost_total\\{namespace="${namespace}",pod="batch",node="${nodeName}",workload="Pod/batch",currency="USD"\\} (\\S+)$`,
    'm',
  ).exec(text);
  assert.ok(
    total,
    text
      .split('\n')
      .filter((l) => l.startsWith('vk_pod_cost'))
      .join('\n'),
  );
  assert.ok(Math.abs(Number(total[1]) - expected) < 1e-9, `vk_pod_cost_total ${total[1]}, expected ${expected}`);
  assert.match(
    text,
    new RegExp(`^vk_namespace_cost_total\\{namespace="${namespace}",node="${nodeName}",currency="USD"\\} ${total[1]!.replace('.', '\\.')}$`, 'm'),
  );

  if (!routable) {
    t.diagnostic('no address of its own for the control plane (not root): vk cost through the node proxy not checked');
    return;
  }
  const { stdout } = await vk(['cost', '--kubeconfig', kubeconfigPath(), '--selector', `kubernetes.io/hostname=${nodeName}`]);
  t.diagnostic(`annotation ${pod.metadata!.annotations![COST_ANNOTATION]}; vk cost:\n${stdout}`);
  assert.match(stdout, new RegExp(`^${namespace}\\s+USD\\s+1\\s+${expected.toFixed(6).replace('.', '\\.')}$`, 'm'), stdout);
  assert.match(stdout, new RegExp(`^${namespace}\\s+Pod/batch\\s+USD\\s+1\\s+${expected.toFixed(6).replace('.', '\\.')}$`, 'm'), stdout);
});
