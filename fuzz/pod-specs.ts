// Fuzzing the pod path with pod specs kube-apiserver would accept but that are odd for a
// provider: huge env, long volume lists (some naming ConfigMaps and Secrets that do not
// exist), invalid image references, odd probes, unicode in values, extreme resource requests.
// Unit level: the real PodController and the mock provider, with the in-memory API, Events and
// references from test/fixtures/pod-controller-fakes.ts. Each pod must end with a status that
// explains itself (Running, or a phase with a reason) and at least one Event; no uncaught error.
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { Container, Pod, PodStatus } from '../src/kube/types.ts';
import { silentLogger } from '../src/log.ts';
import { PodController } from '../src/pods/pod-controller.ts';
import { parseMockConfig } from '../src/providers/mock/config.ts';
import { MockProvider } from '../src/providers/mock/mock-provider.ts';
import { FakeApi, FakeEvents, FakePodSource, FakeReferences } from '../test/fixtures/pod-controller-fakes.ts';
import { checkProperty, type PropertyResult } from './property.ts';

export interface PodSpecFuzzOptions {
  runs: number;
  seed: number;
}

export interface PodSpecFuzzResult {
  target: 'pod-specs';
  properties: PropertyResult[];
  crashed: boolean;
  exit?: string;
  /** Uncaught exceptions and unhandled rejections in this process during the run. */
  uncaught: string[];
  /** How the pods ended: "phase reason" → count. */
  outcomes: Record<string, number>;
  heapMiB: { start: number; peak: number; end: number };
}

const dnsLabel = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
const unicode = fc.string({ unit: 'grapheme', maxLength: 64 });
const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,40}$/);

const image = fc.oneof(
  fc.constantFrom('busybox', 'nginx:1.27', 'registry.example:5000/team/app@sha256:' + 'a'.repeat(64)),
  fc.constantFrom('UPPER/Case', '::', 'a'.repeat(300), 'img@sha256:zz', 'img:tag:tag', ' spaced ', 'ünïcødé', '/leading', 'x@', 'localhost:99999/x'),
  unicode.filter((s) => s.trim().length > 0),
);

const quantity = fc.oneof(
  fc.constantFrom('0', '1m', '100', '100000', '1Ei', '9223372036854775807', '0.000001', '1e3', '1Pi', '999999999Ti'),
  fc.integer({ min: 0, max: 1 << 30 }).map(String),
);

const probe = fc
  .oneof(
    fc.record({ exec: fc.record({ command: fc.array(unicode, { maxLength: 3 }) }) }),
    fc.record({
      httpGet: fc.record({
        port: fc.oneof(
          fc.integer({ min: 1, max: 65535 }),
          dnsLabel.map((s) => s.slice(0, 15)),
        ),
        path: fc.webPath(),
      }),
    }),
    fc.record({ tcpSocket: fc.record({ port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constant('no-such-port')) }) }),
    fc.record({ grpc: fc.record({ port: fc.integer({ min: 1, max: 65535 }) }) }),
    fc.constant({}),
  )
  .chain((handler) =>
    fc
      .record({
        periodSeconds: fc.integer({ min: 1, max: 2_147_483_647 }),
        timeoutSeconds: fc.integer({ min: 1, max: 2_147_483_647 }),
        failureThreshold: fc.integer({ min: 1, max: 1_000_000 }),
      })
      .map((timing) => ({ ...handler, ...timing })),
  );

const volume = fc.oneof(
  dnsLabel.map((name) => ({ name: `e-${name}`.slice(0, 63), emptyDir: {} })),
  dnsLabel.map((name) => ({ name: `c-${name}`.slice(0, 63), configMap: { name: `missing-${name}`.slice(0, 63) } })),
  dnsLabel.map((name) => ({ name: `o-${name}`.slice(0, 63), configMap: { name: `missing-${name}`.slice(0, 63), optional: true } })),
  dnsLabel.map((name) => ({ name: `s-${name}`.slice(0, 63), secret: { secretName: `missing-${name}`.slice(0, 63) } })),
  dnsLabel.map((name) => ({ name: `h-${name}`.slice(0, 63), hostPath: { path: `/${name}` } })),
);

const container = fc.record({
  name: dnsLabel,
  image,
  command: fc.option(fc.array(unicode, { maxLength: 5 }), { nil: undefined }),
  env: fc.oneof(
    fc.array(fc.record({ name: envName, value: unicode }), { maxLength: 20 }),
    // Huge env: many variables, long values.
    fc
      .integer({ min: 100, max: 2_000 })
      .chain((n) => fc.array(fc.record({ name: envName, value: fc.string({ maxLength: 2_000 }) }), { minLength: n, maxLength: n })),
  ),
  resources: fc.option(
    fc
      .record({ requests: fc.dictionary(fc.constantFrom('cpu', 'memory', 'ephemeral-storage', 'nvidia.com/gpu', 'example.com/odd'), quantity) })
      .map((r) => ({ ...r, limits: r.requests })),
    { nil: undefined },
  ),
  livenessProbe: fc.option(probe, { nil: undefined }),
  readinessProbe: fc.option(probe, { nil: undefined }),
  startupProbe: fc.option(probe, { nil: undefined }),
});

const podSpec = fc
  .record({
    name: fc.oneof(dnsLabel, fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{100,251}[a-z0-9])$/)),
    containers: fc.uniqueArray(container, { minLength: 1, maxLength: 4, selector: (c) => c.name }),
    // Half without volumes, so the other oddities reach the provider instead of stopping at the mount.
    volumes: fc.tuple(fc.boolean(), fc.uniqueArray(volume, { maxLength: 100, selector: (v) => v.name })).map(([keep, v]) => (keep ? v : v.slice(0, 0))),
    restartPolicy: fc.constantFrom('Always', 'OnFailure', 'Never'),
    annotations: fc.dictionary(fc.stringMatching(/^[a-z0-9.-]{1,20}\/[a-z0-9-]{1,20}$/), unicode, { maxKeys: 5 }),
  })
  .map((s) => ({
    ...s,
    // Every container mounts every volume (deep volume lists per container).
    containers: s.containers.map((c) => ({ ...c, volumeMounts: s.volumes.map((v, i) => ({ name: v.name, mountPath: `/mnt/${i}` })) })),
  }));

/** What the pod ended with, when it explains itself: Running, or a phase with a reason somewhere. */
function outcome(status: PodStatus | undefined): string | undefined {
  if (!status?.phase) return undefined;
  if (status.phase === 'Running' || status.phase === 'Succeeded') return status.phase;
  const reason =
    status.reason ??
    status.containerStatuses?.map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason).find(Boolean) ??
    status.conditions?.map((c) => c.reason).find(Boolean);
  return reason ? `${status.phase} ${reason}` : undefined;
}

export async function fuzzPodSpecs(options: PodSpecFuzzOptions): Promise<PodSpecFuzzResult> {
  const uncaught: string[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  const source = new FakePodSource();
  const api = new FakeApi(source);
  const events = new FakeEvents();
  const references = new FakeReferences();
  const provider = new MockProvider(parseMockConfig({}), { nodeName: 'vk', log: silentLogger });
  const controller = new PodController(
    provider,
    {
      nodeName: 'vk',
      hostIP: '10.0.0.1',
      workers: 4,
      resyncIntervalMs: 600_000,
      statusPollIntervalMs: 50,
      nodeAllocatable: () => ({ cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' }),
      retryBaseDelayMs: 5,
      retryMaxDelayMs: 40,
    },
    silentLogger,
    { syncDuration: () => undefined },
    { source, api, events, references: (onChange) => references.bind(onChange) },
  );
  await controller.start();
  const outcomes: Record<string, number> = {};
  const heap = () => process.memoryUsage().heapUsed / (1 << 20);
  const start = heap();
  let peak = start;
  let n = 0;
  try {
    const property = await checkProperty(
      'odd pod specs end with a status that explains itself and an Event',
      podSpec,
      async (spec) => {
        n++;
        const name = `${spec.name.slice(0, 240)}-${n}`;
        const key = `fuzz/${name}`;
        const pod: Pod = {
          metadata: { namespace: 'fuzz', name, uid: `uid-${n}`, annotations: spec.annotations },
          spec: { nodeName: 'vk', restartPolicy: spec.restartPolicy, containers: spec.containers as Container[], volumes: spec.volumes },
        };
        source.put(pod);
        const deadline = performance.now() + 5_000;
        let ended: string | undefined;
        while (performance.now() < deadline) {
          ended = outcome(source.get(key)?.status);
          // ContainerCreating is an end when a Warning says why (a missing ConfigMap: FailedMount, as the kubelet does).
          const reasons = events.reasons(key);
          if (ended && reasons.length > 0 && (!ended.includes('ContainerCreating') || reasons.some((r) => r.startsWith('Warning')))) break;
          await sleep(10);
        }
        peak = Math.max(peak, heap());
        const reasons = events.reasons(key);
        source.remove(key);
        if (uncaught.length > 0) throw new Error(`uncaught: ${uncaught.join('; ')}`);
        if (!ended) throw new Error(`no status that explains itself within 5 s: ${JSON.stringify(source.get(key)?.status ?? api.written(key))}`);
        if (reasons.length === 0) throw new Error(`no Event for the pod (status: ${ended})`);
        const warnings = [...new Set(reasons.filter((r) => r.startsWith('Warning')).map((r) => r.slice('Warning '.length)))];
        const label = `${ended}${warnings.length ? ` (Warning ${warnings.join(', ')})` : ''}`;
        outcomes[label] = (outcomes[label] ?? 0) + 1;
      },
      { numRuns: options.runs, seed: options.seed },
    );
    return {
      target: 'pod-specs',
      properties: [property],
      crashed: uncaught.length > 0,
      uncaught,
      outcomes,
      heapMiB: { start: Math.round(start), peak: Math.round(peak), end: Math.round(heap()) },
    };
  } finally {
    await controller.stop();
    await provider.close();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
}
