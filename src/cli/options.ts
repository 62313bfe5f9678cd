// Node options from flags and an optional config file, validated in one place so every bad
// value gets a one-line error naming the field.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { priceTableFor } from '../cost/prices.ts';
import { ConfigError } from '../errors.ts';
import type { Taint } from '../kube/types.ts';
import type { ShutdownMode } from '../node/node-controller.ts';
import { tracesUrl } from '../tracing/start.ts';
import type { VirtualKubeletOptions } from '../virtual-kubelet.ts';

// One or more number+unit parts, as Go's time.ParseDuration writes them ("1m0s", "1h30m", "500ms"),
// so upstream virtual-kubelet's duration flags keep their values; a bare "0" is zero too.
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(value: string | number, field: string): number {
  if (typeof value === 'number') return value * 1000;
  const text = value.trim();
  if (text === '0') return 0;
  if (!DURATION.test(text)) throw new ConfigError(`${field}: invalid duration ${JSON.stringify(value)} (use e.g. 500ms, 10s, 5m, 1h, 1m30s)`);
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * DURATION_UNIT_MS[unit as keyof typeof DURATION_UNIT_MS];
  return ms;
}

const TAINT = /^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/;

export function parseTaint(text: string): Taint {
  const match = TAINT.exec(text);
  if (!match)
    throw new ConfigError(`--taint: invalid taint ${JSON.stringify(text)} (use key=value:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute)`);
  return { key: match[1]!, value: match[2] ?? undefined, effect: match[3]! };
}

export function parseLabel(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--label: invalid label ${JSON.stringify(text)} (use key=value)`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const duration = z.union([z.string(), z.number().nonnegative()]);
const taintSchema = z.object({ key: z.string().min(1), value: z.string().optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']) });

/** One entry of the config file's `nodes` list: what differs between the process's virtual nodes. */
export const nodeEntrySchema = z
  .object({
    nodeName: z.string().min(1),
    providerConfig: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    taints: z.array(taintSchema).optional(),
    kubeletPort: z.number().int().min(0).max(65535).optional(),
  })
  .strict();

export type NodeEntry = z.infer<typeof nodeEntrySchema>;

export const nodeSettingsSchema = z
  .object({
    kubeconfig: z.string().optional(),
    context: z.string().optional(),
    /** With several nodes, "{i}" stands for the node's index (0, 1, ...). */
    nodeName: z
      .string()
      .max(253)
      .refine((name) => DNS_SUBDOMAIN.test(name.replaceAll('{i}', '0')), 'must be a lowercase DNS subdomain (a-z, 0-9, "-", "."), "{i}" for the index'),
    provider: z.string().min(1),
    providerConfig: z.string().optional(),
    nodeIp: z.union([z.ipv4(), z.ipv6()]),
    kubeletPort: z.number().int().min(0).max(65535),
    kubeletAddress: z.union([z.ipv4(), z.ipv6()]),
    clusterDomain: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a lowercase DNS domain such as cluster.local'),
    clusterDns: z.array(z.ipv4()).max(3),
    kubeletAuth: z.enum(['webhook', 'none']),
    kubeletClientCaFile: z.string().min(1).optional(),
    kubeletTlsCertFile: z.string().min(1).optional(),
    kubeletTlsKeyFile: z.string().min(1).optional(),
    kubeletServingCert: z.enum(['csr', 'self-signed']),
    kubeletCsrTimeout: duration,
    labels: z.record(z.string(), z.string()),
    taints: z.array(taintSchema).optional(),
    /** The node's OS (labels kubernetes.io/os and beta.kubernetes.io/os, nodeInfo); unset: the provider's. */
    os: z.enum(['linux', 'windows']).optional(),
    /** DaemonSet pods: rejected at admission (Failed, as the kubelet rejects pods), or run like any pod. */
    daemonsetPods: z.enum(['reject', 'run']),
    /** Virtual nodes this process runs: a count (names from the nodeName template) or a list. */
    nodes: z.union([z.number().int().min(1).max(1000), z.array(nodeEntrySchema).min(1).max(1000)]).optional(),
    /** A plain-HTTP listener serving /metrics besides the kubelet port (upstream's --metrics-addr). */
    metricsAddr: z.string().optional(),
    leaderElect: z.boolean(),
    leaderElectLeaseDuration: duration,
    leaderElectRenewDeadline: duration,
    leaderElectRetryPeriod: duration,
    leaderElectResourceNamespace: z.string().regex(DNS_SUBDOMAIN, 'must be a namespace name'),
    leaderElectResourceName: z.string().min(1),
    podWorkers: z.number().int().min(1).max(1000),
    eventQps: z.number().positive().max(100000),
    eventBurst: z.number().int().min(1).max(100000),
    resyncInterval: duration,
    statusPollInterval: duration,
    leaseDurationSeconds: z.number().int().min(1).max(3600),
    leaseRenewInterval: duration,
    statusUpdateInterval: duration,
    pingInterval: duration,
    pingTimeout: duration,
    shutdown: z.enum(['keep', 'not-ready', 'delete']),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    tracingEndpoint: z.string().min(1).optional(),
    tracingSamplingRate: z.number().min(0).max(1),
    startupTimeout: duration,
    priceFile: z.string().min(1).optional(),
  })
  .strict();

export type NodeSettings = z.infer<typeof nodeSettingsSchema>;

export function defaultNodeIp(): string {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

export const NODE_DEFAULTS: Omit<NodeSettings, 'nodeName' | 'nodeIp'> = {
  provider: 'mock',
  kubeletPort: 10250,
  kubeletAddress: '0.0.0.0',
  clusterDomain: 'cluster.local',
  clusterDns: [],
  kubeletAuth: 'webhook',
  kubeletServingCert: 'csr',
  kubeletCsrTimeout: '5s',
  labels: {},
  podWorkers: 50,
  eventQps: 50,
  eventBurst: 100,
  resyncInterval: '60s',
  statusPollInterval: '5s',
  leaseDurationSeconds: 40,
  leaseRenewInterval: '10s',
  // The kubelet's nodeStatusReportFrequency: an unchanged status is re-sent every 5 minutes (the
  // Lease is the heartbeat); a change is written at once. 1,000 nodes at 60 s cost 17 writes/s.
  statusUpdateInterval: '5m',
  pingInterval: '10s',
  pingTimeout: '5s',
  shutdown: 'keep',
  logLevel: 'info',
  startupTimeout: '30s',
  tracingSamplingRate: 1,
  daemonsetPods: 'reject',
  leaderElect: false,
  // Worst-case takeover after the holder dies: lease duration + one retry period (< 15 s);
  // the holder fences itself at the renew deadline, before anyone else may take the Lease.
  leaderElectLeaseDuration: '8s',
  leaderElectRenewDeadline: '5s',
  leaderElectRetryPeriod: '2s',
  leaderElectResourceNamespace: 'kube-node-lease',
  leaderElectResourceName: '{node}-vk-leader',
};

/** Reads --config: YAML or JSON whose keys are the flags' camelCase names. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`--config ${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`--config ${file}: expected a mapping of option names to values`);
  return parsed as Record<string, unknown>;
}

/** Validates merged settings; the first problem becomes a one-line error naming the field. */
export function validateNodeSettings(raw: Record<string, unknown>, source: string): NodeSettings {
  const result = nodeSettingsSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length ? issue.path.join('.') : ((issue as { keys?: string[] }).keys?.join(', ') ?? '');
    throw new ConfigError(`${source}: ${field}: ${issue.message}`);
  }
  // Durations are checked here so their errors name the field too.
  for (const key of [
    'resyncInterval',
    'statusPollInterval',
    'leaseRenewInterval',
    'statusUpdateInterval',
    'pingInterval',
    'pingTimeout',
    'startupTimeout',
    'kubeletCsrTimeout',
    'leaderElectLeaseDuration',
    'leaderElectRenewDeadline',
    'leaderElectRetryPeriod',
  ] as const) {
    parseDurationMs(result.data[key], `${source}: ${key}`);
  }
  if (result.data.tracingEndpoint !== undefined) tracesUrl(result.data.tracingEndpoint, `${source}: tracingEndpoint`);
  const lease = parseDurationMs(result.data.leaderElectLeaseDuration, 'leaderElectLeaseDuration');
  const renew = parseDurationMs(result.data.leaderElectRenewDeadline, 'leaderElectRenewDeadline');
  const retry = parseDurationMs(result.data.leaderElectRetryPeriod, 'leaderElectRetryPeriod');
  if (!(retry < renew && renew < lease))
    throw new ConfigError(
      `${source}: --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration is required (a holder must fence itself before its Lease can be taken)`,
    );
  if (Boolean(result.data.kubeletTlsCertFile) !== Boolean(result.data.kubeletTlsKeyFile)) {
    throw new ConfigError(
      `${source}: --kubelet-tls-cert-file and --kubelet-tls-key-file (kubeletTlsCertFile, kubeletTlsKeyFile) go together: give both or neither`,
    );
  }
  return result.data;
}

export function toVirtualKubeletOptions(settings: NodeSettings): VirtualKubeletOptions {
  return {
    nodeName: settings.nodeName,
    nodeIP: settings.nodeIp,
    kubeletPort: settings.kubeletPort,
    labels: settings.labels,
    taints: settings.taints,
    operatingSystem: settings.os,
    daemonSetPods: settings.daemonsetPods,
    podWorkers: settings.podWorkers,
    eventQps: settings.eventQps,
    eventBurst: settings.eventBurst,
    resyncIntervalMs: parseDurationMs(settings.resyncInterval, 'resyncInterval'),
    statusPollIntervalMs: parseDurationMs(settings.statusPollInterval, 'statusPollInterval'),
    leaseDurationSeconds: settings.leaseDurationSeconds,
    leaseRenewIntervalMs: parseDurationMs(settings.leaseRenewInterval, 'leaseRenewInterval'),
    statusUpdateIntervalMs: parseDurationMs(settings.statusUpdateInterval, 'statusUpdateInterval'),
    pingIntervalMs: parseDurationMs(settings.pingInterval, 'pingInterval'),
    pingTimeoutMs: parseDurationMs(settings.pingTimeout, 'pingTimeout'),
    shutdownMode: settings.shutdown as ShutdownMode,
    prices: priceTableFor(settings.provider, settings.priceFile),
    kubeletApi: {
      address: settings.kubeletAddress,
      auth: settings.kubeletAuth,
      clientCAFile: settings.kubeletClientCaFile,
      tlsCertFile: settings.kubeletTlsCertFile,
      tlsKeyFile: settings.kubeletTlsKeyFile,
      servingCert: settings.kubeletServingCert,
      csrTimeoutMs: parseDurationMs(settings.kubeletCsrTimeout, 'kubeletCsrTimeout'),
    },
  };
}
