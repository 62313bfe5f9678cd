// Configuration of the sandbox provider (--provider sandbox --provider-config file.yaml).
// Every field has a default; unknown fields are rejected.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { goArch } from '../../util/platform.ts';
import { parseIPv4Cidr } from '../../util/ipv4.ts';
import { formatZodError } from '../../util/zod-error.ts';
import { quantitySchema } from '../../kube/quantity.ts';

export function defaultDataDir(): string {
  if (process.getuid?.() === 0) return '/var/lib/virtual-kubelet-ts/sandbox';
  return path.join(os.homedir(), '.local/share/virtual-kubelet-ts/sandbox');
}

const ms = z.number().int().nonnegative();

const toolsSchema = z.strictObject({
  bwrap: z.string().min(1).default('bwrap'),
  nsenter: z.string().min(1).default('nsenter'),
  unshare: z.string().min(1).default('unshare'),
  ip: z.string().min(1).default('ip'),
  /** The pod's pause process (PID 1 of its pid namespace, reaps orphans). */
  pause: z.string().min(1).default('catatonit'),
  /** util-linux script: gives TTY containers and exec -t a pseudo-terminal. */
  script: z.string().min(1).default('script'),
  stty: z.string().min(1).default('stty'),
  /** A statically linked busybox: switches user inside containers (runAsUser) and forwards ports. */
  busybox: z.string().min(1).default('/bin/busybox'),
  /** nftables: the node's Service, egress and DNS rules (Debian nftables). */
  nft: z.string().min(1).default('nft'),
  /** Deletes UDP conntrack entries a Service change leaves stale, as kube-proxy does (Debian conntrack). */
  conntrack: z.string().min(1).default('conntrack'),
});

/** The pods' network beyond pod-to-pod (see src/network/): Services, cluster DNS, egress. */
const networkSchema = z.strictObject({
  /** ClusterIP Services and cluster DNS for the pods (needs the cluster: off when the provider runs without one). */
  services: z.boolean().default(true),
  /** Masquerade pods' traffic to addresses outside podCIDR (and forward the replies). */
  egress: z.boolean().default(true),
  /** The uplinks egress leaves through; default: the interfaces of the host's default routes. */
  egressInterfaces: z.array(z.string().regex(/^[\w.-]{1,15}$/, 'expected an interface name')).optional(),
  /** Cluster DNS without --cluster-dns: auto (kube-system/kube-dns when the cluster has it, else the node's own) or node. */
  dns: z.enum(['auto', 'node']).default('auto'),
  /** The address pods and the host reach the node's own DNS server at (redirected to its port). */
  dnsAddress: z.ipv4().default('169.254.20.10'),
});

export const sandboxConfigSchema = z
  .strictObject({
    /** Pods, logs, state and (unless imageDir says otherwise) images live here. */
    dataDir: z.string().min(1).default(defaultDataDir),
    /** The image store; default <dataDir>/images. */
    imageDir: z.string().min(1).optional(),
    /** Each pod gets a /30 of this range: the host end of its veth pair is .1, the pod .2. */
    podCIDR: z
      .string()
      .default('10.215.0.0/16')
      .refine((s) => (parseIPv4Cidr(s)?.bits ?? 31) <= 29, 'expected an IPv4 CIDR of /29 or larger, such as 10.215.0.0/16'),
    /**
     * How a container's root filesystem is made from its image: an overlayfs mount over the
     * image (overlay.ts), its own copy, or hardlinks (fast, but shares inodes); auto: overlay
     * where a test mount works at start, else copy.
     */
    rootfsMode: z.enum(['auto', 'overlay', 'copy', 'hardlink']).default('auto'),
    /** Image references (as written in pod specs) served from a local root filesystem directory instead of a registry. */
    localImages: z.record(z.string().min(1), z.string().min(1)).default({}),
    /** Registries reached over plain http (loopback always is). */
    insecureRegistries: z.array(z.string().min(1)).default([]),
    /** Container log rotation (the kubelet's containerLogMaxSize / containerLogMaxFiles). */
    containerLogMaxBytes: z
      .number()
      .int()
      .min(1024)
      .default(10 * 1024 * 1024),
    containerLogMaxFiles: z.number().int().min(1).default(5),
    /** CrashLoopBackOff: first delay, doubling up to max; reset after a container ran resetAfterMs. */
    crashLoopBackOff: z.strictObject({ initialMs: ms.default(10_000), maxMs: ms.default(300_000), resetAfterMs: ms.default(600_000) }).prefault({}),
    /** ImagePullBackOff: same shape. */
    imagePullBackOff: z.strictObject({ initialMs: ms.default(10_000), maxMs: ms.default(300_000) }).prefault({}),
    /** Which cgroups enforce limits: the best the machine offers (v2, else v1), one of them only, or none. */
    cgroups: z.enum(['auto', 'v2', 'v1', 'none']).default('auto'),
    /** The kubelet's podPidsLimit: most processes a pod may have (pids controller); default no limit. */
    podPidsLimit: z.number().int().positive().optional(),
    /**
     * Appends one JSON line per pod the provider starts ({uid, namespace, name, at}), written and
     * fsynced before createPod returns: a chaos run counts starts per UID from it (a kubelet starts
     * a pod once per UID). Unset: no log.
     */
    createLog: z.string().min(1).optional(),
    capacity: z.record(z.string().min(1), quantitySchema).default({}),
    labels: z.record(z.string().min(1), z.string()).default({}),
    tools: toolsSchema.prefault({}),
    network: networkSchema.prefault({}),
  })
  .transform((c) => ({
    ...c,
    dataDir: path.resolve(c.dataDir),
    imageDir: path.resolve(c.imageDir ?? path.join(c.dataDir, 'images')),
    ...(c.createLog !== undefined && { createLog: path.resolve(c.createLog) }),
    capacity: { cpu: String(os.cpus().length), memory: `${Math.floor(os.totalmem() / 1024 / 1024)}Mi`, pods: '110', ...c.capacity },
    architecture: goArch(),
  }));

export type SandboxConfig = z.output<typeof sandboxConfigSchema>;

export function parseSandboxConfig(input: unknown): SandboxConfig {
  const result = sandboxConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(`provider config: ${formatZodError(result.error)}`);
}
