// `vk provider-server`: runs one of this build's providers standalone, behind the remote
// provider protocol, for a virtual kubelet elsewhere to use with `--provider remote`.
//
//   vk provider-server --provider mock --provider-config mock.yaml --port 9443 --token-file token
//
// Prints "serving provider <name> at <url>" on stdout once it listens; stops on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ConfigError, errorMessage } from '../errors.ts';
import { createLogger } from '../log.ts';
import { PROVIDER_NAMES, createProvider, readProviderConfig } from '../providers/registry.ts';
import { serveProvider, type ProviderServerTls } from '../provider-sdk/server.ts';
import { startTracing, stopTracing } from '../tracing/start.ts';
import { tracingEndpointOption, tracingSamplingRateOption } from './tracing-flags.ts';

function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('not a whole number.');
  return Number(value);
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

interface ProviderServerFlags {
  provider: string;
  providerConfig?: string;
  port: number;
  host: string;
  token?: string;
  tokenFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsClientCaFile?: string;
  nodeName: string;
  nodeIp: string;
  maxRequestBytes?: number;
  heartbeatInterval?: number;
  logLevel: string;
  tracingEndpoint?: string;
  tracingSamplingRate?: number;
}

export function addProviderServerCommand(program: Command): Command {
  return program
    .command('provider-server')
    .description('serve a provider over the remote provider protocol (for `vk run --provider remote` elsewhere)')
    .addOption(new Option('--provider <name>', 'provider to serve').choices(PROVIDER_NAMES).default('mock'))
    .option('--provider-config <file>', 'provider configuration file (YAML or JSON)')
    .requiredOption('--port <port>', 'port to listen on (0: any free port; the URL is printed)', integer)
    .option('--host <ip>', 'address to listen on', '127.0.0.1')
    .option('--token <token>', 'bearer token clients must send (prefer --token-file)')
    .option('--token-file <file>', 'file holding the bearer token clients must send')
    .option('--tls-cert-file <file>', 'serving certificate (PEM); with --tls-key-file, serves HTTPS')
    .option('--tls-key-file <file>', 'serving key (PEM)')
    .option('--tls-client-ca-file <file>', 'CA bundle for client certificates: clients must present one (mTLS)')
    .option('--node-name <name>', 'node name the provider is told it serves', 'provider-server')
    .option('--node-ip <ip>', 'host IP the provider reports in pod statuses', '127.0.0.1')
    .option('--max-request-bytes <n>', 'largest request body accepted (larger: 413)', integer)
    .option('--heartbeat-interval <ms>', 'status stream heartbeat period in milliseconds', integer)
    .addOption(tracingEndpointOption())
    .addOption(tracingSamplingRateOption())
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
    .action(async (flags: ProviderServerFlags) => {
      if (flags.token !== undefined && flags.tokenFile !== undefined) throw new ConfigError('--token and --token-file: give one, not both');
      if (Boolean(flags.tlsCertFile) !== Boolean(flags.tlsKeyFile))
        throw new ConfigError('--tls-cert-file and --tls-key-file go together: give both or neither');
      if (flags.tlsClientCaFile && !flags.tlsCertFile) throw new ConfigError('--tls-client-ca-file needs --tls-cert-file and --tls-key-file');
      if (flags.port > 65535) throw new ConfigError(`--port ${flags.port}: must be at most 65535`);
      const token = flags.tokenFile !== undefined ? readFlagFile('--token-file', flags.tokenFile).toString('utf8').trim() : flags.token;
      if (token === '') throw new ConfigError(`--token-file: ${flags.tokenFile} is empty`);
      const tls: ProviderServerTls | undefined = flags.tlsCertFile
        ? {
            cert: readFlagFile('--tls-cert-file', flags.tlsCertFile),
            key: readFlagFile('--tls-key-file', flags.tlsKeyFile!),
            ...(flags.tlsClientCaFile && { ca: readFlagFile('--tls-client-ca-file', flags.tlsClientCaFile) }),
          }
        : undefined;
      const log = createLogger(flags.logLevel);
      // Its spans continue the callers' traces (the traceparent each request carries).
      if (flags.tracingEndpoint) await startTracing({ endpoint: flags.tracingEndpoint, samplingRate: flags.tracingSamplingRate ?? 1 });
      const provider = await createProvider(flags.provider, readProviderConfig(flags.providerConfig), { nodeName: flags.nodeName, nodeIP: flags.nodeIp, log });
      let server;
      try {
        server = await serveProvider(provider, {
          port: flags.port,
          host: flags.host,
          token,
          tls,
          maxRequestBytes: flags.maxRequestBytes,
          heartbeatIntervalMs: flags.heartbeatInterval,
          log,
        });
      } catch (err) {
        await provider.close?.();
        const code = (err as NodeJS.ErrnoException).code;
        throw new ConfigError(`--port ${flags.port}: ${code === 'EADDRINUSE' ? 'address already in use' : errorMessage(err)}`);
      }
      if (!tls && flags.host !== '127.0.0.1' && flags.host !== '::1' && flags.host !== 'localhost')
        log.warn({ host: flags.host }, 'serving without TLS on a non-loopback address');
      if (token === undefined) log.warn('serving without a bearer token: anyone who can reach the port can drive the provider');
      process.stdout.write(`serving provider ${provider.name} at ${server.url}\n`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) process.exit(130);
          stopping = true;
          process.stderr.write(`vk provider-server: ${signal} received, stopping\n`);
          void (async () => {
            try {
              await server.close();
              await provider.close?.();
              await stopTracing();
            } catch (err) {
              process.stderr.write(`vk provider-server: while stopping: ${errorMessage(err)}\n`);
            }
            resolve();
          })();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
