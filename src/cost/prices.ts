// A node's price table: what a pod costs per second of running (per vCPU, per GiB of memory, per
// GPU), per start, and the provider's minimum charge. Built-in tables for Fargate and ACI carry
// their list prices (docs/cost.md gives the source and date); a --price-file overrides any field,
// starting from one of them with `base:` or from nothing (then every price must be given).
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { formatZodError } from '../util/zod-error.ts';

export interface PriceTable {
  /** Which table this is, for the docs and `vk cost`: a built-in name or the file it came from. */
  name: string;
  currency: string;
  vcpuSecond: number;
  /** Per GiB (2^30 bytes) of memory per second. Fargate and ACI say "GB" for what are binary gigabytes. */
  gibSecond: number;
  gpuSecond: number;
  podStart: number;
  /** Each pod is charged at least this many seconds of running (Fargate: one minute). */
  minimumSeconds: number;
  /** What a pod is charged for: its requests, or the Fargate task size they round up to (what AWS bills). */
  allocation: 'requests' | 'fargate-task-size';
}

/**
 * AWS Fargate, Linux/x86, US East (N. Virginia), on-demand: USD 0.04048 per vCPU-hour and 0.004445
 * per GB-hour, billed per second with a one-minute minimum, for the task size (aws.amazon.com/fargate/pricing,
 * the prices as published since the January 2019 price cut and still listed in 2024). Fargate has no GPUs.
 */
export const FARGATE_PRICES: PriceTable = {
  name: 'fargate',
  currency: 'USD',
  vcpuSecond: 0.04048 / 3600,
  gibSecond: 0.004445 / 3600,
  gpuSecond: 0,
  podStart: 0,
  minimumSeconds: 60,
  allocation: 'fargate-task-size',
};

/**
 * Azure Container Instances, Linux, East US, pay-as-you-go: USD 0.0000113 per vCPU-second and
 * 0.0000012 per GB-second, billed per second from image pull to stop, no minimum
 * (azure.microsoft.com/pricing/details/container-instances, as listed in 2024). GPU container
 * groups are priced per SKU and being retired: no default, set gpuSecond in a price file.
 */
export const ACI_PRICES: PriceTable = {
  name: 'aci',
  currency: 'USD',
  vcpuSecond: 0.0000113,
  gibSecond: 0.0000012,
  gpuSecond: 0,
  podStart: 0,
  minimumSeconds: 0,
  allocation: 'requests',
};

export const BUILTIN_PRICES: Readonly<Record<string, PriceTable>> = { fargate: FARGATE_PRICES, aci: ACI_PRICES };

const price = z.number().nonnegative();

const priceFileSchema = z.strictObject({
  base: z.enum(['fargate', 'aci']).optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected a three-letter currency code such as USD'),
  vcpuSecond: price,
  gibSecond: price,
  gpuSecond: price,
  podStart: price,
  minimumSeconds: price,
  allocation: z.enum(['requests', 'fargate-task-size']),
});

/** Validates a price table given as an object; `source` names it in the one-line error. */
export function parsePriceTable(input: unknown, source: string): PriceTable {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ConfigError(`${source}: expected a mapping of price fields`);
  const given = input as Record<string, unknown>;
  const base = typeof given.base === 'string' ? BUILTIN_PRICES[given.base] : undefined;
  const { name: _name, ...baseFields } = base ?? ({} as Partial<PriceTable>);
  const result = priceFileSchema.safeParse({ ...baseFields, ...given });
  if (!result.success) throw new ConfigError(`${source}: ${formatZodError(result.error)}`);
  const { base: _base, ...table } = result.data;
  return { name: source, ...table };
}

/** Reads a YAML or JSON price file. */
export function readPriceFile(file: string): PriceTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--price-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`--price-file ${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  return parsePriceTable(parsed, `--price-file ${file}`);
}

/** The node's table: the price file when given, else the provider's built-in one (none for providers without list prices). */
export function priceTableFor(providerName: string, priceFile: string | undefined): PriceTable | undefined {
  if (priceFile) return readPriceFile(priceFile);
  return BUILTIN_PRICES[providerName];
}
