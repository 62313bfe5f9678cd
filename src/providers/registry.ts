// The providers this build knows, by the name given to --provider.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { AciProvider } from './aci/aci-provider.ts';
import { fromUpstreamMockConfig, parseMockConfig } from './mock/config.ts';
import { MockProvider } from './mock/mock-provider.ts';
import { ClusterProvider } from './cluster/cluster-provider.ts';
import { FargateProvider } from './fargate/fargate-provider.ts';
import type { Provider } from './provider.ts';
import { RemoteProvider } from './remote/remote-provider.ts';
import { SandboxProvider } from './sandbox/sandbox-provider.ts';

export interface ProviderContext {
  nodeName: string;
  nodeIP: string;
  log: Logger;
  /** The cluster the node is in, for providers that watch more than their pods (sandbox: Services for its pods' network). */
  kube?: KubeClient;
  /** The kubelet's --cluster-domain and --cluster-dns. */
  clusterDomain?: string;
  clusterDNS?: string[];
}

/** A provider that needs I/O to come up (remote: it reads the server's capabilities first) returns a promise. */
type ProviderFactory = (config: unknown, context: ProviderContext) => Provider | Promise<Provider>;

const providers: Record<string, ProviderFactory> = {
  aci: (config, context) => AciProvider.open(config, context),
  cluster: (config, context) => ClusterProvider.open(config, context),
  mock: (config, context) =>
    new MockProvider(parseMockConfig(fromUpstreamMockConfig(config, context.nodeName)), {
      nodeName: context.nodeName,
      hostIP: context.nodeIP,
      log: context.log,
    }),
  remote: (config, context) => RemoteProvider.connect(config, { log: context.log }),
  sandbox: (config, context) => SandboxProvider.open(config, context),
  fargate: (config, context) => FargateProvider.open(config, context),
};

export const PROVIDER_NAMES = Object.keys(providers);

/** Reads a provider config file (YAML or JSON); a missing path means an empty config. */
export function readProviderConfig(file: string | undefined): unknown {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--provider-config: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`--provider-config ${file}: not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
  }
}

export async function createProvider(name: string, config: unknown, context: ProviderContext): Promise<Provider> {
  const factory = providers[name];
  if (!factory) throw new ConfigError(`--provider: unknown provider "${name}" (available: ${PROVIDER_NAMES.join(', ')})`);
  return await factory(config, context);
}
