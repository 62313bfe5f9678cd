// Configuration of the mock provider. Every field has a default, so `{}` (or no config at
// all) is a usable 10,000-pod node. Unknown fields are rejected: a misspelt lifecycle key
// would otherwise silently leave a test running with the defaults.
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';

/** Node's process.arch names mapped to the GOARCH names Kubernetes uses in kubernetes.io/arch. */
const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le', // Node reports little-endian ppc64 as 'ppc64'; Kubernetes only ships ppc64le
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

export function goArch(nodeArch: string = process.arch): string {
  return GO_ARCH[nodeArch] ?? nodeArch;
}

export const DEFAULT_CAPACITY: Readonly<Record<string, string>> = {
  cpu: '20',
  memory: '100Gi',
  pods: '10000',
  'ephemeral-storage': '1Ti',
};

// A resource.Quantity: plain or decimal number with an optional SI, binary or exponent suffix.
const QUANTITY_RE = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?$/;
const quantity = z.preprocess(
  // YAML turns `cpu: 4` into a number; accept it as the quantity it means.
  (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? String(v) : v),
  z.string({ error: 'expected a quantity such as 4, 500m or 16Gi' }).regex(QUANTITY_RE, 'expected a quantity such as 4, 500m or 16Gi'),
);
const resourceList = z.record(z.string().min(1), quantity);

const delayMs = z.number().int().nonnegative();

/** An IPv4 CIDR as the network address and prefix length; undefined when malformed. */
export function parseIPv4Cidr(cidr: string): { base: number; bits: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const bits = Number(m[5]);
  if (octets.some((o) => o > 255) || bits > 30) return undefined; // /31 and /32 leave no pod addresses
  const addr = octets.reduce((acc, o) => acc * 256 + o, 0);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (addr & mask) >>> 0, bits };
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const lifecycleSchema = z.strictObject({
  /** How long createPod takes to resolve (the pod is visible, Pending, meanwhile). */
  createDelayMs: delayMs.default(0),
  /** From createPod until the containers run (ContainerCreating meanwhile). */
  runningDelayMs: delayMs.default(0),
  /** When set, containers exit (code 0 unless the exit-code annotation says otherwise) this long after starting. */
  completeAfterMs: delayMs.optional(),
  /** CrashLoopBackOff-style wait between a container's exit and its restart. */
  restartDelayMs: delayMs.default(0),
});

const taintSchema = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

export const mockConfigSchema = z
  .strictObject({
    /** Merged over DEFAULT_CAPACITY, so `{ cpu: '4' }` keeps the other defaults. */
    capacity: resourceList.default({}),
    /** Merged over capacity; defaults to capacity. */
    allocatable: resourceList.default({}),
    labels: z.record(z.string().min(1), z.string()).default({}),
    /** Extra taints, besides the core's virtual-kubelet.io/provider taint. */
    taints: z.array(taintSchema).default([]),
    operatingSystem: z.string().min(1).default('linux'),
    architecture: z.string().min(1).default(() => goArch()),
    lifecycle: lifecycleSchema.prefault({}),
    /** false: poll-only provider, without the notifyPods capability. */
    notify: z.boolean().default(true),
    /** Fake pod IPs are handed out sequentially from here (network+2 on) and reused after delete. */
    podCIDR: z
      .string()
      .default('10.244.0.0/16')
      .refine((s) => parseIPv4Cidr(s) !== undefined, 'expected an IPv4 CIDR with a prefix of /30 or shorter, such as 10.244.0.0/16'),
    /**
     * Where the "backend" keeps its pods, so they outlive the process (kill -9 included) like a
     * real backend's do: loaded at start-up, rewritten (atomically) after every change.
     * Relative paths are resolved against the working directory. Unset: pods live in memory only.
     */
    stateFile: z.string().min(1).optional(),
    /** Running containers print a log line this often (0: only their start lines). See logs.ts. */
    logIntervalMs: delayMs.default(1000),
  })
  .transform((c) => {
    const capacity = { ...DEFAULT_CAPACITY, ...c.capacity };
    return { ...c, capacity, allocatable: { ...capacity, ...c.allocatable } };
  });

export type MockProviderConfig = z.output<typeof mockConfigSchema>;

const ARTICLE: Record<string, string> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'a boolean',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // A custom message (quantity) wins over the generic one.
      return issue.message.startsWith('Invalid input') ? `expected ${ARTICLE[issue.expected] ?? issue.expected}` : issue.message;
    case 'too_small':
      return issue.origin === 'string' || issue.origin === 'array' ? 'must not be empty' : `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/** One line for a zod error: the first issue's path and problem, and how many more there are. */
export function formatZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  let path = issue.path;
  let text = describeIssue(issue);
  if (issue.code === 'unrecognized_keys') {
    // Name the offending key itself, not its parent object.
    path = [...issue.path, issue.keys[0] ?? ''];
    text = issue.keys.length > 1 ? `unknown field (also ${issue.keys.slice(1).join(', ')})` : 'unknown field';
  }
  const where = formatPath(path);
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${where ? `${where}: ` : ''}${text}${more}`;
}

/** Validates and defaults the provider config; a bad field throws a one-line ConfigError naming its path. */
export function parseMockConfig(input: unknown): MockProviderConfig {
  const result = mockConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(`provider config: ${formatZodError(result.error)}`);
}
