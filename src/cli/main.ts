// The `vk` command: `vk up` runs a local control plane with a virtual node on it;
// `vk run` runs a virtual node against an existing cluster.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_APISERVER_ADDRESS_RANGE, claimHostAddress } from '../cluster/host-address.ts';
import { startLocalCluster, type LocalCluster } from '../cluster/local.ts';
import { startMetricsServer } from '../cluster/metrics-server.ts';
import { ConfigError, VkError, errorMessage } from '../errors.ts';
import { KubeClient } from '../kube/client.ts';
import { PROVIDER_NAMES } from '../providers/registry.ts';
import { tracingEndpointOption, tracingSamplingRateOption } from './tracing-flags.ts';
import { addCostCommand } from './cost.ts';
import { addProviderServerCommand } from './provider-server.ts';
import { addDownCommand, upPidFile, upSandboxDataDir } from './down.ts';
import { VK_VERSION } from '../version.ts';
import { serveMetrics } from './metrics-server.ts';
import { expandNodes } from './node-list.ts';
import { NodeRunner, checkPortFree } from './node-runner.ts';
import { addUpstreamAliases, unsupportedUpstreamFlag, upstreamEnvSettings, upstreamEnvTaint, upstreamFlagSettings } from './upstream.ts';
import {
  NODE_DEFAULTS,
  defaultNodeIp,
  parseDurationMs,
  parseLabel,
  parseTaint,
  nodeSettingsSchema,
  readConfigFile,
  validateNodeSettings,
  type NodeSettings,
} from './options.ts';

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a whole number.');
  return Number(value);
}

function collectLabel(value: string, previous: Record<string, string> = {}): Record<string, string> {
  try {
    const [key, val] = parseLabel(value);
    return { ...previous, [key]: val };
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

function collectTaint(value: string, previous: unknown[] = []): unknown[] {
  try {
    return [...previous, parseTaint(value)];
  } catch (err) {
    throw new InvalidArgumentError(errorMessage(err));
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** vk's levels, and upstream's (logrus) spellings of them. */
function logLevel(value: string): string {
  const level = ({ warning: 'warn', panic: 'fatal' } as Record<string, string>)[value.toLowerCase()] ?? value.toLowerCase();
  if (!LOG_LEVELS.includes(level)) throw new InvalidArgumentError(`Allowed choices are ${LOG_LEVELS.join(', ')}.`);
  return level;
}

/** linux or windows, in any case (upstream's default is spelt "Linux"). */
function operatingSystem(value: string): string {
  const os = value.toLowerCase();
  if (os !== 'linux' && os !== 'windows') throw new InvalidArgumentError('must be linux or windows.');
  return os;
}

/** Flags shared by `up` and `run`; their names are the config file's keys in camelCase. */
function addNodeOptions(command: Command): Command {
  return command
    .option('--node-name <name>', 'name of the Node object')
    .addOption(new Option('--provider <name>', 'provider that runs the pods').choices(PROVIDER_NAMES))
    .option('--provider-config <file>', 'provider configuration file (YAML or JSON)')
    .option('--node-ip <ip>', 'InternalIP published on the Node (where kube-apiserver reaches the kubelet API)')
    .option('--kubelet-port <port>', 'kubelet API port, published in the Node (0: any free port)', integer)
    .option('--kubelet-address <ip>', 'address the kubelet API listens on (default 0.0.0.0)')
    .option('--cluster-domain <domain>', "the cluster's DNS domain, as the kubelet's flag (default cluster.local)")
    .option(
      '--cluster-dns <ip,...>',
      "DNS server IPs for ClusterFirst pods, as the kubelet's flag (default: kube-system/kube-dns if the cluster has it, else the node's own DNS server where the provider runs one)",
      (value: string) =>
        value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
    )
    .addOption(
      new Option(
        '--kubelet-auth <mode>',
        'kubelet API authn/authz: webhook (TokenReview/SubjectAccessReview, like the kubelet) or none (local development only)',
      ).choices(['webhook', 'none']),
    )
    .option(
      '--kubelet-client-ca-file <file>',
      "CA bundle for kubelet API client certificates (default: the cluster's, from ConfigMap kube-system/extension-apiserver-authentication)",
    )
    .option('--kubelet-tls-cert-file <file>', 'kubelet API serving certificate (PEM); with --kubelet-tls-key-file')
    .option('--kubelet-tls-key-file <file>', 'kubelet API serving key (PEM)')
    .addOption(
      new Option(
        '--kubelet-serving-cert <mode>',
        'without --kubelet-tls-cert-file: csr (a kubernetes.io/kubelet-serving CSR, self-signed until it is signed) or self-signed',
      ).choices(['csr', 'self-signed']),
    )
    .option(
      '--kubelet-csr-timeout <duration>',
      'how long start-up waits for the serving-certificate CSR to be signed (then self-signed until it is; default 5s)',
    )
    .option('--label <key=value>', 'extra Node label (repeatable)', collectLabel)
    .option('--taint <key=value:Effect>', 'Node taint replacing the default virtual-kubelet.io/provider taint (repeatable)', collectTaint)
    .option('--pod-workers <n>', 'pods reconciled in parallel (default 50: each mostly waits on an API round trip)', integer)
    .option('--event-qps <n>', "Event writes per second, as the kubelet's --event-qps (default 50)", integer)
    .option('--event-burst <n>', "Event writes allowed in a burst, as the kubelet's --event-burst (default 100)", integer)
    .option('--resync-interval <duration>', 'every pod is reconciled at least this often')
    .option('--status-poll-interval <duration>', 'status poll period for providers that do not push')
    .option('--lease-duration-seconds <n>', 'Node Lease duration', integer)
    .option('--lease-renew-interval <duration>', 'Node Lease renewal period')
    .option(
      '--status-update-interval <duration>',
      'an unchanged Node status is written again this often (default 5m, as the kubelet; changes are written at once)',
    )
    .option('--ping-interval <duration>', 'provider health check period')
    .option('--ping-timeout <duration>', 'provider health check timeout')
    .addOption(new Option('--shutdown <mode>', 'what happens to the Node when vk stops').choices(['keep', 'not-ready', 'delete']))
    .addOption(new Option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')} (also upstream's warning, panic)`).argParser(logLevel))
    .option('--startup-timeout <duration>', 'how long to wait for the API server at start-up (0: no limit)')
    .addOption(tracingEndpointOption())
    .addOption(tracingSamplingRateOption())
    .addOption(
      new Option('--os <os>', "the node's OS, over the provider's: labels kubernetes.io/os and beta.kubernetes.io/os, nodeInfo").argParser(operatingSystem),
    )
    .addOption(
      new Option('--daemonset-pods <policy>', 'DaemonSet pods bound here: reject (Failed at admission, with an Event) or run (default reject)').choices([
        'reject',
        'run',
      ]),
    )
    .option('--nodes <n>', 'virtual nodes this process runs, named from --node-name ("{i}": the index; else -<i> is appended)', integer)
    .option('--metrics-addr <[host]:port>', "also serve /metrics over plain HTTP here (upstream's --metrics-addr; one node only)")
    .option('--leader-elect', 'standby replicas: serve each node only while holding its leader Lease (coordination.k8s.io), stand by otherwise')
    .option('--leader-elect-lease-duration <duration>', 'how long a dead holder keeps the Lease before a standby takes it (default 8s)')
    .option('--leader-elect-renew-deadline <duration>', 'the holder stops serving (fences itself) when it could not renew for this long (default 5s)')
    .option('--leader-elect-retry-period <duration>', 'how often the holder renews and standbys try to acquire (default 2s)')
    .option('--leader-elect-resource-namespace <namespace>', 'namespace of the leader Leases (default kube-node-lease)')
    .option('--leader-elect-resource-name <name>', 'leader Lease name, "{node}" for the node name (default {node}-vk-leader)')
    .option(
      '--price-file <file>',
      "what the node's pods cost (YAML/JSON price table, docs/cost.md; default: the list prices of the aci and fargate providers, none for the others)",
    )
    .option('--config <file>', 'YAML or JSON file with any of these options (flags win)');
}

/** Defaults, then the config file, then flags given on the command line. */
function nodeSettings(command: Command, defaults: Partial<NodeSettings>): NodeSettings {
  const opts = command.opts<Record<string, unknown> & { config?: string }>();
  const fromFile = opts.config ? readConfigFile(opts.config) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(opts)) {
    if (key in nodeSettingsSchema.shape && value !== undefined && command.getOptionValueSource(key) === 'cli') fromFlags[key] = value;
  }
  // The repeatable flags are singular (--label, --taint); their settings plural.
  if (opts.label !== undefined) fromFlags.labels = opts.label;
  if (opts.taint !== undefined) fromFlags.taints = opts.taint;
  const merged = { ...NODE_DEFAULTS, ...defaults, ...fromFile, ...upstreamFlagSettings(opts), ...fromFlags };
  return validateNodeSettings(merged, opts.config && Object.keys(fromFile).length ? `--config ${opts.config}` : 'options');
}

/** metrics-server next to vk up's control plane; without it everything else still works, so a failure is one line. */
async function startLocalMetricsServer(cluster: LocalCluster, address: string | undefined, stops: (() => Promise<void>)[]): Promise<void> {
  const note = (line: string) => process.stderr.write(`vk: ${line}; kubectl top and CPU/memory HorizontalPodAutoscalers will not work\n`);
  if (!address) {
    note("metrics-server needs the control plane's own address (root)");
    return;
  }
  try {
    const server = await startMetricsServer({
      info: cluster.info,
      kubectl: cluster.kubectl,
      address,
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    // Before the control plane stops (stops run in order; the node was unshifted before it).
    stops.unshift(() => server.stop());
    void server.exited.then((reason) => reason && note(reason));
  } catch (err) {
    note(errorMessage(err).split('\n')[0]!);
  }
}

/** Runs the stop actions once on SIGINT/SIGTERM; a second signal exits at once. */
function stopOnSignals(stops: (() => Promise<void>)[]): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`vk: ${signal} again, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      process.stderr.write(`vk: ${signal} received, stopping (again to force)\n`);
      void (async () => {
        for (const stop of stops) {
          try {
            await stop();
          } catch (err) {
            process.stderr.write(`vk: while stopping: ${errorMessage(err)}\n`);
          }
        }
        resolve();
      })();
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

/** `vk run`'s settings: defaults, upstream's environment variables, the config file, then flags. */
export function runSettings(command: Command, env: NodeJS.ProcessEnv): NodeSettings {
  const opts = command.opts<{ namespace?: string; 'klog.v'?: string }>();
  // Accepted for upstream manifests, but they change nothing here: say so rather than ignore them silently.
  if (opts.namespace !== undefined) process.stderr.write(`vk: --namespace ${opts.namespace} ignored (as upstream does): nodes serve pods of every namespace\n`);
  if (opts['klog.v'] !== undefined) process.stderr.write(`vk: --klog.v ${opts['klog.v']} ignored: vk logs at --log-level\n`);
  const settings = nodeSettings(command, { nodeName: 'virtual-kubelet', nodeIp: defaultNodeIp(), ...upstreamEnvSettings(env) });
  const envTaint = settings.taints === undefined ? upstreamEnvTaint(env, settings.provider) : undefined;
  return envTaint ? { ...settings, taints: envTaint } : settings;
}

export function buildProgram(): Command {
  const program = new Command('vk')
    .description('A Virtual Kubelet in TypeScript: a Kubernetes node whose pods run on a pluggable provider')
    .version(VK_VERSION)
    .showSuggestionAfterError(true);

  addNodeOptions(
    program
      .command('up')
      .description('build and start a local Kubernetes control plane, with a virtual node on it')
      .option('--dir <dir>', 'state directory (PKI, etcd data, logs, kubeconfig)', '.vk')
      .option('--apiserver-port <port>', 'kube-apiserver port on 127.0.0.1 and on its own address (default: a free one)', integer)
      .option(
        '--apiserver-address-range <cidr>',
        'range of the address vk up creates for kube-apiserver (interface vkapi<n>, address <n>th /24 + 1; needs root)',
        DEFAULT_APISERVER_ADDRESS_RANGE,
      )
      .option('--no-metrics-server', 'do not run metrics-server (metrics.k8s.io: kubectl top, CPU/memory HorizontalPodAutoscalers)'),
  ).action(async (_opts, command: Command) => {
    const { dir, apiserverPort, apiserverAddressRange, metricsServer } = command.opts<{
      dir: string;
      apiserverPort?: number;
      apiserverAddressRange: string;
      metricsServer: boolean;
    }>();
    let settings = nodeSettings(command, { nodeName: 'vk-local', nodeIp: '127.0.0.1' });
    await checkPortFree(settings.kubeletPort, '--kubelet-port', settings.kubeletAddress);
    if (apiserverPort) await checkPortFree(apiserverPort, '--apiserver-port', '127.0.0.1');
    const stops: (() => Promise<void>)[] = [];
    const stopped = stopOnSignals(stops);
    const stateDir = path.resolve(dir, 'cluster');
    mkdirSync(stateDir, { recursive: true });
    // For `vk down`, which stops this process and the pods its node ran.
    writeFileSync(upPidFile(dir), `${process.pid}\n`);
    stops.push(async () => rmSync(upPidFile(dir), { force: true }));
    // An address pods can reach: the kubernetes Service's endpoint, and the node's InternalIP so
    // that kube-apiserver's node proxy (which refuses loopback) reaches the kubelet API.
    const hostAddress = await claimHostAddress({
      range: apiserverAddressRange,
      note: (line) => process.stderr.write(`vk: ${line}; kube-apiserver stays on 127.0.0.1 only\n`),
    });
    if (hostAddress) settings = nodeSettings(command, { nodeName: 'vk-local', nodeIp: hostAddress.address });
    let cluster: LocalCluster;
    try {
      cluster = await startLocalCluster({
        dir: stateDir,
        apiserverPort,
        advertiseAddress: hostAddress?.address,
        progress: (line) => process.stderr.write(`${line}\n`),
      });
    } catch (err) {
      await hostAddress?.release();
      throw err;
    }
    stops.push(() => cluster.stop());
    // After the node (unshifted before everything) and the control plane have stopped.
    if (hostAddress) stops.push(() => hostAddress.release());
    try {
      const nodeList = expandNodes({ ...settings, kubeconfig: cluster.info.kubeconfig });
      const client = await KubeClient.load({ kubeconfig: cluster.info.kubeconfig, nodes: nodeList.length });
      stops.push(async () => client.close());
      // The sandbox's pods and images live under --dir, where `vk down` finds them.
      const nodes = new NodeRunner(client, { approveCsr: true, providerDefaults: { sandbox: { dataDir: upSandboxDataDir(dir) } } });
      // Unshifted: the nodes stop before the control plane.
      stops.unshift(() => nodes.stop());
      await nodes.start(nodeList);
      if (metricsServer) await startLocalMetricsServer(cluster, hostAddress?.address, stops);
    } catch (err) {
      // The control plane would die with this process anyway; the interface would stay.
      for (const stop of stops) await stop().catch(() => {});
      throw err;
    }
    process.stdout.write(
      [
        '',
        `Kubernetes ${cluster.info.version} is running on ${cluster.info.server} with virtual node ${settings.nodeName} (provider ${settings.provider}).`,
        ...(hostAddress
          ? [
              `Pods reach kube-apiserver at https://${hostAddress.address}:${cluster.info.ports['kube-apiserver']} (${hostAddress.interfaceName}, removed on stop).`,
            ]
          : []),
        '',
        `  export KUBECONFIG=${cluster.info.kubeconfig}`,
        `  alias kubectl=${cluster.kubectl}   # kubectl ${cluster.kubernetesVersion}, if you have none`,
        '  kubectl get nodes -o wide',
        '',
        'Press Ctrl-C to stop everything.',
        '',
      ].join('\n'),
    );
    void cluster.exited.then((reason) => {
      if (reason) {
        process.stderr.write(`vk: ${reason}\n`);
        process.kill(process.pid, 'SIGTERM');
      }
    });
    await stopped;
  });

  addUpstreamAliases(
    addNodeOptions(
      program
        .command('run')
        .description('run a virtual node against an existing cluster (--kubeconfig, $KUBECONFIG, ~/.kube/config, or in-cluster)')
        .option('--kubeconfig <file>', 'kubeconfig file')
        .option('--context <name>', 'kubeconfig context'),
    ),
  ).action(async (_opts, command: Command) => {
    const nodeList = expandNodes(runSettings(command, process.env));
    const settings = nodeList[0]!;
    const client = await KubeClient.load({ kubeconfig: settings.kubeconfig, context: settings.context, nodes: nodeList.length });
    await client.checkReachable(parseDurationMs(settings.startupTimeout, 'startupTimeout'));
    const stops: (() => Promise<void>)[] = [async () => client.close()];
    const stopped = stopOnSignals(stops);
    const nodes = new NodeRunner(client);
    stops.unshift(() => nodes.stop());
    await nodes.start(nodeList);
    if (settings.metricsAddr) {
      const metrics = await serveMetrics(settings.metricsAddr, () => nodes.metrics.get(settings.nodeName)?.registry);
      stops.unshift(() => metrics.close());
    }
    await stopped;
  });

  addProviderServerCommand(program);
  addDownCommand(program);
  addCostCommand(program);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    const unsupported = argv[2] === 'run' ? unsupportedUpstreamFlag(argv.slice(3)) : undefined;
    if (unsupported) throw new ConfigError(unsupported);
    await program.parseAsync(argv);
  } catch (err) {
    const code = err instanceof ConfigError ? 2 : 1;
    const message = err instanceof VkError ? err.message : errorMessage(err);
    process.stderr.write(`vk: ${message.split('\n')[0]}\n`);
    process.exit(code);
  }
}
