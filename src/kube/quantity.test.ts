import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ceilDiv, milliValue, parseQuantity, quantitySchema, value } from './quantity.ts';

test('parses decimal, binary, milli and exponent quantities exactly', () => {
  const cases: [string, bigint, bigint][] = [
    // text, value(), milliValue()
    ['1', 1n, 1000n],
    ['500m', 1n, 500n],
    ['1.5', 2n, 1500n],
    ['0.1', 1n, 100n],
    ['.5', 1n, 500n],
    ['2k', 2000n, 2000000n],
    ['1Ki', 1024n, 1024000n],
    ['1.5Gi', 1610612736n, 1610612736000n],
    ['128974848', 128974848n, 128974848000n],
    ['129e6', 129000000n, 129000000000n],
    ['1E3', 1000n, 1000000n],
    ['1E', 10n ** 18n, 10n ** 21n],
    ['100n', 1n, 1n],
    ['1u', 1n, 1n],
    ['0', 0n, 0n],
  ];
  for (const [text, v, m] of cases) {
    const q = parseQuantity(text);
    assert.equal(value(q), v, `value(${text})`);
    assert.equal(milliValue(q), m, `milliValue(${text})`);
  }
});

test('rejects malformed quantities', () => {
  for (const text of ['', 'abc', '1.2.3', '1KB', 'Gi', '--1']) assert.throws(() => parseQuantity(text), /quantities must match/, text);
});

test('ceilDiv rounds up for positives only', () => {
  assert.equal(ceilDiv(7n, 2n), 4n);
  assert.equal(ceilDiv(6n, 2n), 3n);
  assert.equal(ceilDiv(0n, 5n), 0n);
  assert.equal(ceilDiv(-7n, 2n), -3n);
});

test('quantitySchema takes config quantities, YAML numbers included, and refuses negative or malformed ones', () => {
  assert.equal(quantitySchema.parse(4), '4');
  for (const ok of ['500m', '16Gi', '1.5', '2e3']) assert.equal(quantitySchema.parse(ok), ok);
  for (const bad of ['-1', 'lots', '4 cores', -2, true]) assert.equal(quantitySchema.safeParse(bad).success, false, String(bad));
});
