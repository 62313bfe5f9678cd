// Tracing end to end: a real `vk run --tracing-endpoint` process with the remote provider, whose
// provider server runs in this test process (tracing too), both exporting to a local OTLP/HTTP
// receiver. A pod's sync, the provider call it makes, the provider server's span on the other
// side of the remote protocol (via traceparent) and a kubelet API request all arrive linked.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { test } from 'node:test';
import type { Pod } from '../../src/kube/types.ts';
import { createLogger } from '../../src/log.ts';
import { serveProvider } from '../../src/provider-sdk/server.ts';
import { parseMockConfig } from '../../src/providers/mock/config.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import type { CallOptions, ResolvedPod } from '../../src/providers/provider.ts';
import { startTracing, stopTracing } from '../../src/tracing/start.ts';
import { kubeconfigPath, kubectl, newNamespace, randomName, waitFor } from '../harness/cluster.ts';
import { freePort } from '../harness/net.ts';
import { startOtlpReceiver, type ReceivedSpan } from '../harness/otlp-receiver.ts';
import { tempDir } from '../harness/temp.ts';

const VK = path.resolve(import.meta.dirname, '../../bin/vk.js');
const log = createLogger(process.env.VK_TEST_LOG_LEVEL ?? 'warn');

/** The mock provider, remembering the traceparent each createPod arrived with. */
class RecordingProvider extends MockProvider {
  readonly traceparents = new Map<string, string | undefined>();
  override async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    this.traceparents.set(resolved.pod.metadata?.name ?? '', options.traceparent);
    return super.createPod(resolved, options);
  }
}

function kubeletGet(port: number, requestPath: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: requestPath, rejectUnauthorized: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('spans of a pod sync, its provider calls across the remote protocol and a kubelet API request arrive linked at an OTLP receiver', async (t) => {
  const namespace = await newNamespace(t);
  const nodeName = randomName('vk-traced');
  const receiver = await startOtlpReceiver(t);
  await startTracing({ endpoint: receiver.endpoint, samplingRate: 1 });
  t.after(() => stopTracing());

  const provider = new RecordingProvider(parseMockConfig({}), { nodeName, log });
  const server = await serveProvider(provider, { port: 0, log });
  t.after(() => server.close());
  const dir = tempDir(t, 'vk-tracing-');
  writeFileSync(path.join(dir, 'remote.yaml'), `endpoint: ${server.url}\ntimeoutMs: 5000\n`);
  const kubeletPort = await freePort();
  // An OTLP base URL: the vk process posts to …/v1/traces.
  const args = [VK, 'run', '--kubeconfig', kubeconfigPath(), '--node-name', nodeName, '--node-ip', '127.0.0.1', '--provider', 'remote'];
  args.push('--provider-config', path.join(dir, 'remote.yaml'), '--kubelet-port', String(kubeletPort), '--kubelet-address', '127.0.0.1');
  args.push('--kubelet-auth', 'none', '--kubelet-serving-cert', 'self-signed', '--shutdown', 'delete', '--log-level', 'warn');
  args.push('--tracing-endpoint', receiver.endpoint, '--tracing-sampling-rate', '1');
  const vk = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  vk.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => vk.once('exit', () => resolve()));
  t.after(async () => {
    vk.kill('SIGTERM');
    await exited;
  });

  await waitFor(`node ${nodeName} registered`, async () => (await kubectl(['get', 'node', nodeName], { allowFailure: true })).code === 0 || undefined);
  const name = randomName('traced');
  const manifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { nodeName, tolerations: [{ operator: 'Exists' }], automountServiceAccountToken: false, containers: [{ name: 'c', image: 'busybox' }] },
  };
  await kubectl(['-n', namespace, 'apply', '-f', '-'], { input: JSON.stringify(manifest) });
  const pod = await waitFor(`${name} Running`, async () => {
    const p = JSON.parse((await kubectl(['-n', namespace, 'get', 'pod', name, '-o', 'json'])).stdout) as Pod;
    return p.status?.phase === 'Running' ? p : undefined;
  });
  const uid = pod.metadata!.uid!;

  // A kubelet API request that arrives with a caller's trace context, as kube-apiserver sends it when it traces.
  const callerTrace = randomBytes(16).toString('hex');
  const callerSpan = randomBytes(8).toString('hex');
  await kubeletGet(kubeletPort, `/containerLogs/${namespace}/${name}/c`, { traceparent: `00-${callerTrace}-${callerSpan}-01` });

  const find = (what: string, match: (s: ReceivedSpan) => boolean) => receiver.spans.find(match);
  const create = await waitFor('the createPod span from the vk process (batched every 5 s)', () =>
    find('create', (s) => s.name === 'provider createPod' && s.attributes['k8s.pod.uid'] === uid),
  );
  const sync = find('sync', (s) => s.spanId === create.parentSpanId);
  assert.ok(sync, `the createPod span's parent arrived (stderr: ${stderr})`);
  assert.equal(sync.name, 'pod sync');
  assert.equal(sync.traceId, create.traceId);
  assert.deepEqual(
    {
      ns: sync.attributes['k8s.namespace.name'],
      pod: sync.attributes['k8s.pod.name'],
      uid: sync.attributes['k8s.pod.uid'],
      node: sync.attributes['k8s.node.name'],
    },
    { ns: namespace, pod: name, uid, node: nodeName },
  );
  assert.equal(create.attributes['k8s.pod.name'], name, 'provider call spans carry the pod too');
  assert.equal(create.attributes['vk.provider'], provider.name, 'the remote provider takes its backend’s name');

  // Across the remote protocol: the provider got the createPod span as its parent.
  assert.equal(provider.traceparents.get(name), `00-${create.traceId}-${create.spanId}-01`);
  await stopTracing();
  const serverSpan = receiver.spans.find((s) => s.parentSpanId === create.spanId && s.name.startsWith('provider-sdk '));
  assert.ok(serverSpan, `the provider server's span is a child of createPod (got ${receiver.spans.map((s) => s.name).join(', ')})`);
  assert.equal(serverSpan.traceId, create.traceId);
  assert.equal(serverSpan.kind, 2);

  const request = await waitFor('the kubelet API request span', () => find('request', (s) => s.name === 'kubelet API GET containerLogs'));
  assert.equal(request.traceId, callerTrace, "the caller's traceparent is the request span's parent");
  assert.equal(request.parentSpanId, callerSpan);
  assert.equal(request.attributes['k8s.namespace.name'], namespace);
  assert.equal(request.attributes['k8s.pod.name'], name);
  assert.equal(typeof request.attributes['http.response.status_code'], 'number');
  const logs = await waitFor('the log call under the request', () =>
    find('logs', (s) => s.name === 'provider getContainerLogs' && s.parentSpanId === request.spanId),
  );
  assert.equal(logs.traceId, callerTrace);
  assert.equal(logs.attributes['k8s.pod.name'], name, 'it carries the pod the path names');
});
