import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { ConfigError } from '../errors.ts';
import type { Pod } from '../kube/types.ts';
import { breakEven, parseSizeList, renderBreakEven } from './break-even.ts';
import { billedResources, charge, podRequests } from './charge.ts';
import { CostMeter } from './meter.ts';
import { CostMetrics } from './metrics.ts';
import { ACI_PRICES, FARGATE_PRICES, parsePriceTable, readPriceFile } from './prices.ts';
import { costInWindow, costTables, parseCostMetrics, renderCostTables } from './report.ts';
import { workloadOf } from './workload.ts';

function pod(
  name: string,
  options: { uid?: string; requests?: Record<string, string>; limits?: Record<string, string>; status?: Pod['status']; owner?: string; hash?: string } = {},
): Pod {
  return {
    metadata: {
      name,
      namespace: 'shop',
      uid: options.uid ?? `uid-${name}`,
      ...(options.hash && { labels: { 'pod-template-hash': options.hash } }),
      ...(options.owner && { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: options.owner, uid: 'rs', controller: true }] }),
    },
    spec: { containers: [{ name: 'app', image: 'i', resources: { requests: options.requests, limits: options.limits } }] },
    status: options.status ?? {},
  };
}

test('a price file: one line naming a negative or missing price; base fills what is not given; unknown fields refused', () => {
  assert.throws(
    () => parsePriceTable({ base: 'fargate', vcpuSecond: -1 }, 'prices.yaml'),
    (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, 'prices.yaml: vcpuSecond: must be >= 0');
      return true;
    },
  );
  assert.throws(() => parsePriceTable({ currency: 'EUR', vcpuSecond: 0.00001, gpuSecond: 0, podStart: 0, minimumSeconds: 0, allocation: 'requests' }, 'p'), {
    message: /^p: gibSecond: required \(number\)$/,
  });
  assert.throws(() => parsePriceTable({ base: 'aci', gibSecnd: 1 }, 'p'), { message: /^p: gibSecnd: unknown field$/ });
  assert.throws(() => parsePriceTable({ base: 'aci', currency: 'dollars' }, 'p'), { message: /^p: currency: expected a three-letter currency code/ });
  const table = parsePriceTable({ base: 'fargate', minimumSeconds: 0, currency: 'EUR' }, 'p');
  assert.deepEqual(table, { ...FARGATE_PRICES, name: 'p', minimumSeconds: 0, currency: 'EUR' });

  const dir = mkdtempSync(path.join(os.tmpdir(), 'vk-prices-'));
  try {
    const file = path.join(dir, 'prices.yaml');
    writeFileSync(file, 'base: aci\npodStart: -0.01\n');
    assert.throws(() => readPriceFile(file), { message: `--price-file ${file}: podStart: must be >= 0` });
    writeFileSync(file, 'base: aci\ngpuSecond: 0.0002\n');
    assert.equal(readPriceFile(file).gpuSecond, 0.0002);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('requests: containers summed, the largest init container wins, limits stand in for missing requests; Fargate rounds up to a task size', () => {
  const p = pod('a', { requests: { cpu: '250m', memory: '512Mi' } });
  p.spec!.containers.push({ name: 'side', image: 'i', resources: { limits: { cpu: '250m', memory: '1Gi', 'nvidia.com/gpu': '1' } } });
  p.spec!.initContainers = [{ name: 'init', image: 'i', resources: { requests: { cpu: '2', memory: '256Mi' } } }];
  assert.deepEqual(podRequests(p), { vcpu: 2, gib: 1.5, gpu: 1 });
  assert.deepEqual(billedResources({ vcpu: 0.3, gib: 0.6, gpu: 0 }, FARGATE_PRICES), { vcpu: 0.5, gib: 1, gpu: 0 });
  assert.deepEqual(billedResources({ vcpu: 0.3, gib: 0.6, gpu: 0 }, ACI_PRICES), { vcpu: 0.3, gib: 0.6, gpu: 0 });
});

test('a charge is the per-second prices over the running time, at least the minimum, plus the start price', () => {
  const oneByTwo = { vcpu: 1, gib: 2, gpu: 0 };
  // Fargate: one minute minimum: 10 s cost a minute.
  assert.equal(charge(oneByTwo, FARGATE_PRICES, 10), 60 * (0.04048 / 3600 + (2 * 0.004445) / 3600));
  assert.equal(charge(oneByTwo, FARGATE_PRICES, 3600).toFixed(6), (0.04048 + 2 * 0.004445).toFixed(6));
  const withStart = { ...ACI_PRICES, podStart: 0.001 };
  assert.equal(charge(oneByTwo, withStart, 10), 0.001 + 10 * (0.0000113 + 2 * 0.0000012));
});

test('the workload is the Deployment behind a ReplicaSet, the CronJob behind a Job, else the owner or the pod', () => {
  assert.equal(workloadOf(pod('web-7d9f-abc', { owner: 'web-7d9f', hash: '7d9f' })), 'Deployment/web');
  assert.equal(workloadOf(pod('rs-x', { owner: 'plain-rs' })), 'ReplicaSet/plain-rs');
  const job = pod('backup-28912345-xyz');
  job.metadata!.ownerReferences = [{ apiVersion: 'batch/v1', kind: 'Job', name: 'backup-28912345', uid: 'j', controller: true }];
  assert.equal(workloadOf(job), 'CronJob/backup');
  assert.equal(workloadOf(pod('alone')), 'Pod/alone');
});

test('the meter charges from startTime to the last container finish (or deletion), and exposes it on /metrics', async () => {
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const registry = new Registry();
  const metrics = CostMetrics.for(registry);
  const table = { ...FARGATE_PRICES, minimumSeconds: 0 };
  const meter = new CostMeter({ nodeName: 'vk-1', prices: table, now: () => now, metrics });
  const startTime = new Date(now).toISOString();
  const running = pod('web-7d9f-abc', { owner: 'web-7d9f', hash: '7d9f', requests: { cpu: '1', memory: '2Gi' }, status: { phase: 'Running', startTime } });
  meter.handlers.onAdd!(running);
  meter.handlers.onAdd!(pod('pending', { requests: { cpu: '1' }, status: { phase: 'Pending' } }));
  now += 30_000;
  const perSecond = 0.04048 / 3600 + (2 * 0.004445) / 3600;
  let text = await registry.metrics();
  const series = parseCostMetrics(text);
  assert.equal(series.length, 1, 'a pod without a startTime is not charged yet');
  assert.equal(series[0]!.workload, 'Deployment/web');
  assert.ok(Math.abs(series[0]!.total - 30 * perSecond) < 1e-12, `${series[0]!.total}`);
  assert.match(text, /^vk_namespace_cost_total\{namespace="shop",node="vk-1",currency="USD"\} /m);

  const finished = structuredClone(running);
  finished.status = {
    phase: 'Succeeded',
    startTime,
    containerStatuses: [
      {
        name: 'app',
        image: 'i',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode: 0, finishedAt: new Date(Date.UTC(2026, 0, 1, 12, 0, 40)).toISOString() } },
      },
    ],
  } as Pod['status'];
  meter.handlers.onUpdate!(running, finished);
  now += 3600_000;
  text = await registry.metrics();
  assert.ok(Math.abs(parseCostMetrics(text)[0]!.total - 40 * perSecond) < 1e-12, 'charged until the container finished, not until now');
  const namespaceTotal = Number(/^vk_namespace_cost_total\{[^}]*\} (\S+)$/m.exec(text)![1]);
  assert.ok(Math.abs(namespaceTotal - 40 * perSecond) < 1e-12);

  // Deleted: the pod's series stay a day, the namespace's for good.
  meter.handlers.onDelete!(finished);
  now += 25 * 3600_000;
  await registry.metrics();
  text = await registry.metrics();
  assert.deepEqual(parseCostMetrics(text), []);
  assert.ok(Math.abs(Number(/^vk_namespace_cost_total\{[^}]*\} (\S+)$/m.exec(text)![1]) - 40 * perSecond) < 1e-12);
  meter.close();
});

test('vk cost tables: by namespace and workload; a window takes a started-inside pod whole, an ended-before pod not at all, else its rate', () => {
  const text = [
    'vk_pod_cost_total{namespace="a",pod="p1",node="n",workload="Deployment/web",currency="USD"} 0.5',
    'vk_pod_cost_rate{namespace="a",pod="p1",node="n",workload="Deployment/web",currency="USD"} 0.001',
    'vk_pod_cost_start_time_seconds{namespace="a",pod="p1",node="n",workload="Deployment/web",currency="USD"} 500',
    'vk_pod_cost_total{namespace="a",pod="p2",node="n",workload="Deployment/web",currency="USD"} 0.2',
    'vk_pod_cost_rate{namespace="a",pod="p2",node="n",workload="Deployment/web",currency="USD"} 0.001',
    'vk_pod_cost_start_time_seconds{namespace="a",pod="p2",node="n",workload="Deployment/web",currency="USD"} 800',
    'vk_pod_cost_total{namespace="b",pod="old",node="n",workload="Pod/old",currency="USD"} 0.1',
    'vk_pod_cost_rate{namespace="b",pod="old",node="n",workload="Pod/old",currency="USD"} 0.001',
    'vk_pod_cost_start_time_seconds{namespace="b",pod="old",node="n",workload="Pod/old",currency="USD"} 100',
    'vk_pod_cost_end_time_seconds{namespace="b",pod="old",node="n",workload="Pod/old",currency="USD"} 200',
  ].join('\n');
  const pods = parseCostMetrics(text);
  assert.equal(pods.length, 3);
  assert.equal(costInWindow(pods[0]!, 1000, 300), 0.3, 'p1 ran the whole 300 s window at 0.001/s');
  assert.equal(costInWindow(pods[1]!, 1000, 300), 0.2, 'p2 started inside the window');
  assert.equal(costInWindow(pods[2]!, 1000, 300), 0, 'old ended before the window');
  const all = costTables(pods, 1000);
  assert.deepEqual(
    all.byNamespace.map((r) => [r.namespace, r.pods, r.cost.toFixed(2)]),
    [
      ['a', 2, '0.70'],
      ['b', 1, '0.10'],
    ],
  );
  const windowed = costTables(pods, 1000, 300);
  assert.deepEqual(
    windowed.byWorkload.map((r) => [r.workload, r.pods, r.cost.toFixed(2)]),
    [['Deployment/web', 2, '0.50']],
  );
  const rendered = renderCostTables(windowed, 'Cost');
  assert.match(rendered, /^a\s+USD\s+2\s+0\.500000$/m);
  assert.match(rendered, /^TOTAL\s+USD\s+0\.500000$/m);
});

test("break-even of seed 000's example (1 vCPU / 2 GB around the clock vs a 2 vCPU / 4 GB VM at 33.408 USD a month) matches the hand calculation", () => {
  // By hand: Fargate 0.04048 USD per vCPU-hour + 2 × 0.004445 per GB-hour = 0.04937 USD an hour;
  // the VM: 33.408 USD / 720 h = 0.0464 USD an hour = 1.1136 USD a day; 1.1136 / 0.04937 = 22.556 h.
  const vm = { vcpu: 2, gib: 4, pricePerHour: 33.408 / 720 };
  const fargate = breakEven({ vcpu: 1, gib: 2 }, FARGATE_PRICES, vm);
  assert.equal(fargate.podPerHour.toFixed(5), '0.04937');
  assert.equal(fargate.vmPerDay.toFixed(4), '1.1136');
  assert.equal(fargate.hoursPerDay!.toFixed(2), '22.56');
  assert.equal(fargate.fits, 2);
  // ACI: (0.0000113 + 2 × 0.0000012) × 3600 = 0.04932 USD an hour; 1.1136 / 0.04932 = 22.579 h.
  assert.equal(breakEven({ vcpu: 1, gib: 2 }, ACI_PRICES, vm).hoursPerDay!.toFixed(2), '22.58');
  assert.match(renderBreakEven({ vcpu: 1, gib: 2 }, FARGATE_PRICES, vm, fargate), /^break-even: 22\.56 hours a day/m);
  // A VM dearer than the virtual node around the clock: never cheaper.
  assert.equal(breakEven({ vcpu: 1, gib: 2 }, FARGATE_PRICES, { ...vm, pricePerHour: 1 }).hoursPerDay, undefined);
  assert.deepEqual(parseSizeList('2, 4,0.0464', '--compare-vm', 3), [2, 4, 0.0464]);
  assert.throws(() => parseSizeList('2,4', '--compare-vm', 3), { message: /^--compare-vm: expected vcpu,GiB,price\/hour/ });
  assert.throws(() => parseSizeList('2,-4,1', '--compare-vm', 3), { message: /^--compare-vm: GiB: expected a positive number/ });
});
