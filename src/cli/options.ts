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
import type { VirtualKubeletOptions } from '../virtual-kubelet.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

export function parseDurationMs(value: string | number, field: string): number {
  if (typeof value === 'number') return value * 1000;
  const match = DURATION.exec(value.trim());
  if (!match) throw new ConfigError(`${field}: invalid duration ${JSON.stringify(value)} (use e.g. 500ms, 10s, 5m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
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

export const nodeSettingsSchema = z
  .object({
    kubeconfig: z.string().optional(),
    context: z.string().optional(),
    nodeName: z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a lowercase DNS subdomain (a-z, 0-9, "-", ".")'),
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
    taints: z
      .array(z.object({ key: z.string().min(1), value: z.string().optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']) }))
      .optional(),
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
  statusUpdateInterval: '60s',
  pingInterval: '10s',
  pingTimeout: '5s',
  shutdown: 'keep',
  logLevel: 'info',
  startupTimeout: '30s',
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
  ] as const) {
    parseDurationMs(result.data[key], `${source}: ${key}`);
  }
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
