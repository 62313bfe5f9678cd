// A Fargate provider pointed at a fresh contract server, with the test credentials in the
// environment (the SDK's default chain reads them from there, as it would in production).
import { silentLogger } from '../../../src/log.ts';
import { FargateProvider } from '../../../src/providers/fargate/fargate-provider.ts';
import { AwsContractServer, TEST_CREDENTIALS, type AwsContractServerOptions } from './server.ts';

export const CLUSTER = 'vk-fargate';

export function useTestCredentials(credentials: { accessKeyId: string; secretAccessKey: string } = TEST_CREDENTIALS): void {
  process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  // Never reach for instance metadata from a test.
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

/** Provider config for the server: fast polling and restarts, everything else as in production. */
export function testConfig(server: AwsContractServer, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    region: server.region,
    cluster: CLUSTER,
    subnets: ['subnet-0123456789abcdef0'],
    securityGroups: ['sg-0123456789abcdef0'],
    executionRoleArn: 'arn:aws:iam::123456789012:role/ecsTaskExecutionRole',
    endpoints: { ecs: server.url, logs: server.url },
    pollIntervalMs: 50,
    logPollIntervalMs: 100,
    restartBackoff: { initialMs: 500, maxMs: 2_000 },
    ...overrides,
  };
}

export async function startFargate(
  options: { server?: AwsContractServerOptions; config?: Record<string, unknown>; nodeName?: string } = {},
): Promise<{ server: AwsContractServer; provider: FargateProvider; close(): Promise<void> }> {
  useTestCredentials();
  const server = await AwsContractServer.start({ clusters: [CLUSTER], ...options.server });
  let provider: FargateProvider;
  try {
    provider = await FargateProvider.open(testConfig(server, options.config), {
      nodeName: options.nodeName ?? 'vk-fargate',
      nodeIP: '127.0.0.1',
      log: silentLogger,
    });
  } catch (err) {
    await server.close();
    throw err;
  }
  return {
    server,
    provider,
    async close() {
      await provider.close();
      await server.close();
      if (server.violations.length > 0) throw new Error(`requests or answers the official model rejects:\n${server.violations.join('\n')}`);
    },
  };
}
