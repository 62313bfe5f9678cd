// CompactHistogram and CompactCounter against prom-client's Histogram and Counter: the same
// observations print the same text and report the same get() values, with labels, without,
// with a registry's default labels and through a merged registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CompactCounter, CompactHistogram } from './compact-metrics.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

function pair(labelNames: string[]) {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'x_seconds', help: 'A [ALPHA] help with "quotes" and \\ backslash', buckets: BUCKETS };
  const reference = new Histogram({ ...config, labelNames, registers: [theirs] });
  const compact = new CompactHistogram({ ...config, labelNames, registers: [ours] });
  return { theirs, ours, reference, compact };
}

test('without labels: the all-zero series before any observation, then the same buckets, sum and count', async () => {
  const { theirs, ours, reference, compact } = pair([]);
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const v of [0, 0.0005, 0.001, 0.5, 10, 11, 1e6]) {
    reference.observe(v);
    compact.observe(v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await compact.get(), await reference.get());
  assert.match(await ours.metrics(), /^x_seconds_bucket\{le="\+Inf"\} 7$/m);
});

test('with labels: series in first-observation order, by positional and object labels; default labels; a merged registry', async () => {
  const { theirs, ours, reference, compact } = pair(['method', 'path']);
  assert.equal(await ours.metrics(), await theirs.metrics(), 'no series: HELP and TYPE only');
  const refChild = reference.labels('GET', 'pods');
  const child = compact.labels('GET', 'pods');
  for (const v of [0.002, 0.2, 20]) {
    refChild.observe(v);
    child.observe(v);
  }
  reference.observe({ method: 'POST', path: 'exec' }, 0.05);
  compact.observe({ method: 'POST', path: 'exec' }, 0.05);
  reference.labels({ path: 'pods', method: 'GET' }).observe(3);
  compact.labels({ path: 'pods', method: 'GET' }).observe(3);
  for (const r of [theirs, ours]) r.setDefaultLabels({ node: 'n1' });
  const text = await ours.metrics();
  assert.equal(text, await theirs.metrics());
  assert.match(text, /^x_seconds_bucket\{le="10",node="n1",method="GET",path="pods"\} 3$/m);
  assert.deepEqual(await compact.get(), await reference.get());
  const merged = (r: Registry) => Registry.merge([r, new Registry()]);
  const [a, b] = [merged(theirs), merged(ours)];
  for (const r of [a, b]) r.setDefaultLabels({ node: 'n1' });
  assert.equal(await b.metrics(), await a.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
});

test('bad labels and values throw as prom-client does; a child observes again after a reset', async () => {
  const { compact } = pair(['method']);
  assert.throws(() => compact.labels('GET', 'extra'), /label values/);
  assert.throws(() => compact.observe({ verb: 'get' }, 1), /not one of/);
  assert.throws(() => compact.labels('GET').observe(Number.NaN), TypeError);
  const child = compact.labels('GET');
  child.observe(1);
  compact.reset();
  child.observe(2);
  const values = (await compact.get()).values.filter((v) => v.metricName === 'x_seconds_count');
  assert.deepEqual(
    values.map((v) => [v.labels, v.value]),
    [[{ method: 'GET' }, 1]],
  );
});

test('counters: the zero series without labels (after a reset too), labelled series by first increment, the same text and values', async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'x_total', help: 'Counted things' };
  const plain = [new Counter({ ...config, registers: [theirs] }), new CompactCounter({ ...config, registers: [ours] })] as const;
  const labelled = [
    new Counter({ name: 'y_total', help: 'By code', labelNames: ['verb', 'code'], registers: [theirs] }),
    new CompactCounter({ name: 'y_total', help: 'By code', labelNames: ['verb', 'code'], registers: [ours] }),
  ] as const;
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const c of plain) {
    c.inc();
    c.inc(2.5);
  }
  for (const c of labelled) {
    c.inc({ verb: 'get', code: '200' });
    c.labels('patch', '409').inc();
    c.labels({ code: '200', verb: 'get' }).inc(3);
  }
  for (const r of [theirs, ours]) r.setDefaultLabels({ node: 'n1' });
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /^y_total\{verb="get",code="200",node="n1"\} 4$/m);
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  // A child kept across increments and a reset counts on in its series, then in the new one.
  const children = labelled.map((c) => c.labels('watch', '200'));
  for (const child of children) [1, 2].forEach((v) => child.inc(v));
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const c of [...plain, ...labelled]) c.reset();
  assert.equal(await ours.metrics(), await theirs.metrics());
  for (const child of children) child.inc(5);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /^y_total\{verb="watch",code="200",node="n1"\} 5$/m);
  assert.throws(() => children[1]!.inc(-1), /decrease/);
  assert.throws(() => labelled[1].inc({ verb: 'get' }, -1), /decrease/);
  assert.throws(() => labelled[1].inc({ host: 'x' }), /not one of/);
});
