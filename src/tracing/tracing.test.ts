// Tracing without a cluster: off by default with no OpenTelemetry module loaded, spans with
// parent/child links and inherited pod attributes arriving at a local OTLP/HTTP receiver (JSON),
// and bad flags answered in one line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startOtlpReceiver } from '../../test/harness/otlp-receiver.ts';
import { tempDir } from '../../test/harness/temp.ts';
import { waitFor } from '../../test/harness/wait.ts';
import { startTracing, stopTracing } from './start.ts';
import { ATTR, tracer } from './tracer.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function run(args: string[], script?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, script ? ['--input-type=module', '-e', script] : args, { cwd: ROOT }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

test('tracing off (the default): importing and using everything that traces loads no OpenTelemetry SDK or exporter; turning it on does', async () => {
  // Records every module URL the process resolves, then loads the CLI, the node, the remote
  // provider and the provider SDK, and runs spans through the no-op tracer. The one exception is
  // @opentelemetry/api, the no-op facade prom-client itself requires (for exemplars) whether or
  // not we trace: it registers nothing and exports nothing.
  const script = `
    import { registerHooks } from 'node:module';
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
    const otel = () => [...new Set(loaded.map((u) => /@opentelemetry[/]([^/]+)/.exec(u)?.[1]).filter(Boolean))].sort();
    await import('./src/cli/main.ts');
    await import('./src/virtual-kubelet.ts');
    await import('./src/providers/remote/remote-provider.ts');
    await import('./src/provider-sdk/server.ts');
    const { tracer } = await import('./src/tracing/tracer.ts');
    await tracer().inSpan('x', {}, async () => tracer().traceparent());
    const off = otel();
    const { startTracing, stopTracing } = await import('./src/tracing/start.ts');
    await startTracing({ endpoint: 'http://127.0.0.1:9', samplingRate: 0 });
    const on = otel();
    await stopTracing();
    console.log(JSON.stringify({ off, on, modules: loaded.length }));
  `;
  const { code, stdout, stderr } = await run([], script);
  assert.equal(code, 0, stderr);
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { off: string[]; on: string[]; modules: number };
  assert.ok(result.modules > 100, `the hook saw the imports (${result.modules} modules)`);
  assert.deepEqual(result.off, ['api'], 'only @opentelemetry/api (prom-client requires it) while tracing is off');
  for (const pkg of ['context-async-hooks', 'core', 'exporter-trace-otlp-http', 'resources', 'sdk-trace']) {
    assert.ok(result.on.includes(pkg), `startTracing loads @opentelemetry/${pkg}`);
  }
});

test('spans reach an OTLP/HTTP receiver as JSON, with parent/child links, inherited pod attributes, errors and remote parents', async (t) => {
  const receiver = await startOtlpReceiver(t);
  const tracing = await startTracing({ endpoint: receiver.endpoint, samplingRate: 1 });
  t.after(() => stopTracing());
  assert.equal(tracer(), tracing);

  let header: string | undefined;
  const pod = { [ATTR.namespace]: 'ns', [ATTR.pod]: 'web', [ATTR.uid]: 'uid-1' };
  await tracer().inSpan(
    'pod sync',
    {},
    async () => {
      await tracer().inSpan('provider createPod', { 'vk.provider': 'test' }, async () => void (header = tracer().traceparent()), { kind: 'client' });
      await tracer()
        .inSpan('provider getPod', {}, async () => {
          throw new Error('backend down');
        })
        .catch(() => {});
    },
    { inherited: pod },
  );
  assert.equal(tracer().traceparent(), undefined, 'no active span outside inSpan');
  await tracer().inSpan('provider-sdk POST pod', {}, async () => {}, { kind: 'server', remoteParent: header });
  await tracing.flush();

  const byName = (name: string) => {
    const span = receiver.spans.find((s) => s.name === name);
    assert.ok(span, `${name} received (got ${receiver.spans.map((s) => s.name).join(', ')})`);
    return span;
  };
  await waitFor('four spans', () => receiver.spans.length >= 4);
  assert.deepEqual([...receiver.contentTypes], ['application/json']);
  const sync = byName('pod sync');
  const create = byName('provider createPod');
  const get = byName('provider getPod');
  const server = byName('provider-sdk POST pod');
  assert.equal(sync.parentSpanId, '');
  assert.equal(sync.service, 'virtual-kubelet-ts');
  for (const child of [create, get]) {
    assert.equal(child.traceId, sync.traceId);
    assert.equal(child.parentSpanId, sync.spanId);
    assert.deepEqual({ ...child.attributes, 'vk.provider': undefined }, { ...pod, 'vk.provider': undefined }, `${child.name} inherits the pod's attributes`);
  }
  assert.deepEqual(sync.attributes, pod);
  assert.equal(create.kind, 3);
  assert.equal(get.status.code, 2, 'a failed call is an error span');
  assert.equal(get.status.message, 'backend down');
  assert.equal(header, `00-${create.traceId}-${create.spanId}-01`);
  assert.equal(server.traceId, create.traceId, 'the remote parent is followed');
  assert.equal(server.parentSpanId, create.spanId);
  assert.equal(server.kind, 2);
});

test('bad tracing flags and config fields: one line naming the flag or field', async (t) => {
  for (const [args, flag] of [
    [['run', '--tracing-sampling-rate', '1.5'], '--tracing-sampling-rate'],
    [['run', '--tracing-sampling-rate', 'often'], '--tracing-sampling-rate'],
    [['up', '--tracing-endpoint', 'ftp://collector:4318'], '--tracing-endpoint'],
    [['provider-server', '--tracing-endpoint', 'collector'], '--tracing-endpoint'],
  ] as const) {
    const { code, stderr } = await run(['bin/vk.js', ...args]);
    assert.notEqual(code, 0);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, new RegExp(flag), stderr);
  }
  const dir = tempDir(t, 'vk-tracing-config-');
  for (const [yaml, field] of [
    ['tracingSamplingRate: 3\n', /tracingSamplingRate: .*<= ?1/],
    ['tracingEndpoint: "udp://collector"\n', /tracingEndpoint: expected an http\(s\) URL/],
  ] as const) {
    const file = path.join(dir, 'vk.yaml');
    writeFileSync(file, yaml);
    const { code, stderr } = await run(['bin/vk.js', 'run', '--config', file]);
    assert.notEqual(code, 0);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, field);
  }
});
