// Upstream virtual-kubelet's command line (cmd/virtual-kubelet flag.go, node-cli) on `vk run`, so
// an upstream Deployment works with only its image changed: the flags vk spells differently are
// hidden aliases, its environment variables are read as defaults under the config file and flags,
// and its flags vk has no counterpart for are a one-line error naming the flag.
import { Option, type Command } from 'commander';
import { ConfigError } from '../errors.ts';
import type { NodeSettings } from './options.ts';

const UNSUPPORTED: Record<string, string> = {
  '--trace-exporter': 'tracing (jaeger, ocagent) is not built in',
  '--trace-service-name': 'tracing is not built in',
  '--trace-tag': 'tracing is not built in',
  '--trace-sample-rate': 'tracing is not built in',
  '--trace-zpages-addr': 'tracing is not built in',
  '--stream-idle-timeout': 'exec/attach/port-forward idle timeouts are fixed',
  '--stream-creation-timeout': 'exec/attach/port-forward creation timeouts are fixed',
  '--kube-api-qps': 'API client rate limits are not configurable (use --event-qps for Events)',
  '--kube-api-burst': 'API client rate limits are not configurable (use --event-burst for Events)',
  '--no-verify-clients': 'the kubelet API always authenticates clients (--kubelet-auth none for local development)',
  '--authentication-token-webhook-cache-ttl': 'the authentication cache lifetime is fixed (2 min, as the kubelet)',
  '--authorization-webhook-cache-authorized-ttl': 'the authorization cache lifetime is fixed (5 min, as the kubelet)',
  '--authorization-webhook-cache-unauthorized-ttl': 'the authorization cache lifetime is fixed (30 s, as the kubelet)',
};

/** klog flags that only shape log output, which vk's own logger does (--log-level). */
const KLOG_ACCEPTED = new Set(['--klog.v', '--klog.logtostderr', '--klog.alsologtostderr']);

/** The first upstream flag in `args` that vk does not support, as a one-line error; undefined if none. */
export function unsupportedUpstreamFlag(args: string[]): string | undefined {
  for (const arg of args) {
    if (arg === '--') return undefined;
    const flag = arg.split('=', 1)[0]!;
    if (flag in UNSUPPORTED) return `${flag}: upstream virtual-kubelet flag not supported by vk run: ${UNSUPPORTED[flag]}`;
    if (flag.startsWith('--klog.') && !KLOG_ACCEPTED.has(flag))
      return `${flag}: upstream virtual-kubelet klog flag not supported by vk run (logging is set with --log-level)`;
  }
  return undefined;
}

function goBool(flag: string) {
  return (value: string | undefined): boolean => {
    if (value === undefined || /^(1|t|true|TRUE|True)$/.test(value)) return true;
    if (/^(0|f|false|FALSE|False)$/.test(value)) return false;
    throw new ConfigError(`${flag}: invalid boolean ${JSON.stringify(value)}`);
  };
}

/** Upstream's spellings, hidden from help; `vk run --help` shows vk's own names. */
export function addUpstreamAliases(command: Command): Command {
  const hidden = (flags: string, description: string) => new Option(flags, description).hideHelp();
  return command
    .addOption(hidden('--nodename <name>', 'upstream alias of --node-name'))
    .addOption(hidden('--pod-sync-workers <n>', 'upstream alias of --pod-workers'))
    .addOption(hidden('--full-resync-period <duration>', 'upstream alias of --resync-interval'))
    .addOption(hidden('--disable-taint [bool]', 'upstream: no node taint').argParser(goBool('--disable-taint')))
    .addOption(hidden('--client-verify-ca <file>', 'node-cli alias of --kubelet-client-ca-file'))
    .addOption(hidden('--authentication-token-webhook [bool]', 'node-cli: webhook authentication').argParser(goBool('--authentication-token-webhook')))
    .addOption(hidden('--namespace <namespace>', 'upstream: deprecated and ignored (nodes serve pods of every namespace)'))
    .addOption(hidden('--enable-node-lease [bool]', 'upstream: deprecated; node leases are always used').argParser(goBool('--enable-node-lease')))
    .addOption(hidden('--klog.v <level>', 'upstream: klog verbosity; vk logs by --log-level'))
    .addOption(hidden('--klog.logtostderr [bool]', 'upstream: klog to stderr; vk always logs to stderr').argParser(goBool('--klog.logtostderr')))
    .addOption(hidden('--klog.alsologtostderr [bool]', 'upstream: as --klog.logtostderr').argParser(goBool('--klog.alsologtostderr')));
}

interface UpstreamFlagValues {
  nodename?: string;
  podSyncWorkers?: string;
  fullResyncPeriod?: string;
  disableTaint?: boolean;
  clientVerifyCa?: string;
  authenticationTokenWebhook?: boolean;
}

/** Settings from upstream's flag spellings (vk's own spelling wins when both are given). */
export function upstreamFlagSettings(values: UpstreamFlagValues & Record<string, unknown>): Partial<NodeSettings> {
  const out: Partial<NodeSettings> = {};
  if (values.nodename !== undefined) out.nodeName = values.nodename;
  if (values.podSyncWorkers !== undefined) {
    if (!/^\d+$/.test(values.podSyncWorkers)) throw new ConfigError(`--pod-sync-workers: not a whole number: ${values.podSyncWorkers}`);
    out.podWorkers = Number(values.podSyncWorkers);
  }
  if (values.fullResyncPeriod !== undefined) out.resyncInterval = values.fullResyncPeriod;
  if (values.disableTaint) out.taints = [];
  if (values.clientVerifyCa !== undefined) out.kubeletClientCaFile = values.clientVerifyCa;
  if (values.authenticationTokenWebhook !== undefined) out.kubeletAuth = values.authenticationTokenWebhook ? 'webhook' : 'none';
  return out;
}

/** Upstream's environment variables, as settings; they sit under the config file and flags. */
export function upstreamEnvSettings(env: NodeJS.ProcessEnv): Partial<NodeSettings> {
  const out: Partial<NodeSettings> = {};
  if (env.DEFAULT_NODE_NAME) out.nodeName = env.DEFAULT_NODE_NAME;
  if (env.KUBELET_PORT) {
    if (!/^\d+$/.test(env.KUBELET_PORT)) throw new ConfigError(`KUBELET_PORT: not a port number: ${JSON.stringify(env.KUBELET_PORT)}`);
    out.kubeletPort = Number(env.KUBELET_PORT);
  }
  if (env.VKUBELET_POD_IP) out.nodeIp = env.VKUBELET_POD_IP;
  if (env.APISERVER_CERT_LOCATION) out.kubeletTlsCertFile = env.APISERVER_CERT_LOCATION;
  if (env.APISERVER_KEY_LOCATION) out.kubeletTlsKeyFile = env.APISERVER_KEY_LOCATION;
  if (env.APISERVER_CA_CERT_LOCATION) out.kubeletClientCaFile = env.APISERVER_CA_CERT_LOCATION;
  return out;
}

/**
 * Upstream's VKUBELET_TAINT_KEY/VALUE/EFFECT: the node's one taint (value: the provider's name
 * unless set), used when neither flags nor the config file set taints.
 */
export function upstreamEnvTaint(env: NodeJS.ProcessEnv, provider: string): NodeSettings['taints'] {
  if (!env.VKUBELET_TAINT_KEY && !env.VKUBELET_TAINT_VALUE && !env.VKUBELET_TAINT_EFFECT) return undefined;
  const effect = env.VKUBELET_TAINT_EFFECT ?? 'NoSchedule';
  if (effect !== 'NoSchedule' && effect !== 'PreferNoSchedule' && effect !== 'NoExecute')
    throw new ConfigError(`VKUBELET_TAINT_EFFECT: taint effect ${JSON.stringify(effect)} is not supported (NoSchedule, PreferNoSchedule or NoExecute)`);
  return [{ key: env.VKUBELET_TAINT_KEY || 'virtual-kubelet.io/provider', value: env.VKUBELET_TAINT_VALUE ?? provider, effect }];
}
