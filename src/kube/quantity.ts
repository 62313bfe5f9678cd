// Exact Kubernetes resource quantities ("500m", "1.5Gi", "2e3"), held as a BigInt fraction
// so the downward API's round-up matches the kubelet without float surprises.
import { z } from 'zod';

export interface Quantity {
  num: bigint;
  /** Always positive. */
  den: bigint;
}

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** Parses a quantity string; throws on malformed input. */
export function parseQuantity(text: string): Quantity {
  const match = QUANTITY.exec(text.trim());
  const whole = match?.[2] ?? '';
  const fraction = match?.[3] ?? '';
  if (!match || whole.length + fraction.length === 0)
    throw new Error(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': ${JSON.stringify(text)}`);
  let num = BigInt(whole + fraction || '0');
  let den = 10n ** BigInt(fraction.length);
  if (match[1] === '-') num = -num;
  const suffix = match[4] ?? '';
  let base = 10n;
  let exponent: number;
  if (suffix in BINARY) {
    base = 2n;
    exponent = BINARY[suffix]!;
  } else if (suffix in DECIMAL) {
    exponent = DECIMAL[suffix]!;
  } else {
    exponent = Number(suffix.slice(1));
  }
  if (exponent >= 0) num *= base ** BigInt(exponent);
  else den *= base ** BigInt(-exponent);
  return { num, den };
}

export function isZero(q: Quantity): boolean {
  return q.num === 0n;
}

/** Ceiling of a / b for b > 0. */
export function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

/** Like resource.Quantity.Value(): the value rounded up to an integer. */
export function value(q: Quantity): bigint {
  return ceilDiv(q.num, q.den);
}

/** Like resource.Quantity.MilliValue(): the value in thousandths, rounded up. */
export function milliValue(q: Quantity): bigint {
  return ceilDiv(q.num * 1000n, q.den);
}

const QUANTITY_HINT = 'expected a quantity such as 4, 500m or 16Gi';

/** A non-negative quantity in a config file, e.g. `cpu: 4` (YAML's number taken as the quantity it means), `500m`, `16Gi`. */
export const quantitySchema = z.preprocess(
  (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? String(v) : v),
  z.string({ error: QUANTITY_HINT }).refine((text) => {
    try {
      return parseQuantity(text).num >= 0n;
    } catch {
      return false;
    }
  }, QUANTITY_HINT),
);
