// Configuration of the mock provider. Every field has a default, so `{}` (or no config at
// all) is a usable 10,000-pod node. Unknown fields are rejected: a misspelt lifecycle key
// would otherwise silently leave a test running with the defaults.
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { parseIPv4Cidr } from '../../util/ipv4.ts';
import { goArch } from '../../util/platform.ts';
import { formatZodError } from '../../util/zod-error.ts';
import { quantitySchema } from '../../kube/quantity.ts';

export const MOCK_DEFAULT_CAPACITY: Readonly<Record<string, string>> = {
  cpu: '20',
  memory: '100Gi',
  pods: '10000',
  'ephemeral-storage': '1Ti',
};

const resourceList = z.record(z.string().min(1), quantitySchema);

const delayMs = z.number().int().nonnegative();

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
    /** Merged over MOCK_DEFAULT_CAPACITY, so `{ cpu: '4' }` keeps the other defaults. */
    capacity: resourceList.default({}),
    /** Merged over capacity; defaults to capacity. */
    allocatable: resourceList.default({}),
    labels: z.record(z.string().min(1), z.string()).default({}),
    /** Extra taints, besides the core's virtual-kubelet.io/provider taint. */
    taints: z.array(taintSchema).default([]),
    operatingSystem: z.string().min(1).default('linux'),
    architecture: z
      .string()
      .min(1)
      .default(() => goArch()),
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
    /**
     * Appends one JSON line per pod the backend creates ({uid, namespace, name, at}): a chaos
     * run counts creations per UID from it (a kubelet starts a pod once per UID).
     */
    createLog: z.string().min(1).optional(),
    /** Faults injected from outside the process while it runs: see fault-file.ts. */
    faultsFile: z.string().min(1).optional(),
    /** Running containers print a log line this often (0: only their start lines). See logs.ts. */
    logIntervalMs: delayMs.default(1000),
  })
  .transform((c) => {
    const capacity = { ...MOCK_DEFAULT_CAPACITY, ...c.capacity };
    return { ...c, capacity, allocatable: { ...capacity, ...c.allocatable } };
  });

export type MockProviderConfig = z.output<typeof mockConfigSchema>;

/** Validates and defaults the provider config; a bad field throws a one-line ConfigError naming its path. */
export function parseMockConfig(input: unknown): MockProviderConfig {
  const result = mockConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(`provider config: ${formatZodError(result.error)}`);
}

const UPSTREAM_KEYS = new Set(['cpu', 'memory', 'pods', 'others', 'providerID']);

/**
 * Upstream virtual-kubelet's mock config, `{ "<node name>": { cpu, memory, pods, others } }`,
 * as this mock's `{ capacity }`, so upstream manifests' config files keep working. Anything else
 * is returned as it is.
 */
export function fromUpstreamMockConfig(input: unknown, nodeName: string): unknown {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const entries = Object.entries(input);
  const upstream =
    entries.length > 0 &&
    entries.every(
      ([key, value]) =>
        !(key in mockConfigSchema.in.shape) && typeof value === 'object' && value !== null && Object.keys(value).every((k) => UPSTREAM_KEYS.has(k)),
    );
  if (!upstream) return input;
  const node = (input as Record<string, { cpu?: string; memory?: string; pods?: string; others?: Record<string, string> }>)[nodeName];
  if (!node) throw new ConfigError(`provider config: upstream mock format without an entry for node ${nodeName} (has ${entries.map(([k]) => k).join(', ')})`);
  const capacity = Object.fromEntries(
    Object.entries({ cpu: node.cpu, memory: node.memory, pods: node.pods, ...node.others }).filter(([, v]) => v !== undefined),
  );
  return { capacity };
}
