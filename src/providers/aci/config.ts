// Configuration of the Azure Container Instances provider (`--provider aci --provider-config
// aci.yaml`). Unknown fields are rejected and a bad one is named in one line.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { quantitySchema } from '../../kube/quantity.ts';
import { formatZodError } from '../../util/zod-error.ts';

const secretOrFile = { secret: z.string().min(1).optional(), secretFile: z.string().min(1).optional() };

/** How the provider gets its ARM tokens; every kind except accessToken is an @azure/identity credential. */
const credentialSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('default') }),
  z.strictObject({
    type: z.literal('clientSecret'),
    tenantId: z.string().min(1),
    clientId: z.string().min(1),
    ...secretOrFile,
    authorityHost: z.url().optional(),
  }),
  z.strictObject({
    type: z.literal('certificate'),
    tenantId: z.string().min(1),
    clientId: z.string().min(1),
    certificatePath: z.string().min(1),
    authorityHost: z.url().optional(),
  }),
  z.strictObject({ type: z.literal('managedIdentity'), clientId: z.string().min(1).optional() }),
  z.strictObject({
    type: z.literal('workloadIdentity'),
    tenantId: z.string().min(1).optional(),
    clientId: z.string().min(1).optional(),
    tokenFilePath: z.string().min(1).optional(),
  }),
  /** A bearer token obtained elsewhere (e.g. `az account get-access-token`); it is not refreshed. */
  z.strictObject({ type: z.literal('accessToken'), token: z.string().min(1).optional(), tokenFile: z.string().min(1).optional() }),
]);

const taintSchema = z.strictObject({ key: z.string().min(1), value: z.string().optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']) });

export const ACI_DEFAULT_CAPACITY: Readonly<Record<string, string>> = { cpu: '10000', memory: '4Ti', pods: '5000' };

export const aciConfigSchema = z
  .strictObject({
    subscriptionId: z.string().min(1),
    resourceGroup: z.string().min(1),
    /** The Azure region container groups are created in, e.g. westeurope. */
    region: z.string().min(1),
    /** The ARM endpoint: another cloud's (https://management.usgovcloudapi.net) or a test server's. */
    endpoint: z.url({ protocol: /^https$/ }).default('https://management.azure.com'),
    /** The token scope; default: the endpoint's origin + "/.default". */
    tokenScope: z.string().min(1).optional(),
    /** PEM file of CA certificates to trust for the endpoint (private endpoints, test servers). */
    caFile: z.string().min(1).optional(),
    credential: credentialSchema.default({ type: 'default' }),
    /** The virtual node's OS: Windows makes a Windows node (labels, nodeInfo) and Windows container groups. */
    osType: z.enum(['Linux', 'Windows']).default('Linux'),
    /** An extra node taint besides virtual-kubelet.io/provider, e.g. { key: azure.com/aci, effect: NoSchedule }. */
    taint: taintSchema.optional(),
    labels: z.record(z.string().min(1), z.string()).default({}),
    /** Node capacity, merged over ACI_DEFAULT_CAPACITY. */
    capacity: z.record(z.string().min(1), quantitySchema).default({}),
    /** Largest container group the region allows (sum of the containers' requests). */
    maxCpu: z.number().positive().default(4),
    maxMemoryGB: z.number().positive().default(16),
    /** GPU SKU for pods with nvidia.com/gpu limits; without it such pods are rejected. */
    gpuSku: z.enum(['K80', 'P100', 'V100']).optional(),
    /** VNet subnets (ARM resource IDs): groups get a private IP there. */
    subnetIds: z.array(z.string().min(1)).default([]),
    dnsConfig: z
      .strictObject({ nameServers: z.array(z.string().min(1)).min(1), searchDomains: z.string().optional(), options: z.string().optional() })
      .optional(),
    logAnalytics: z
      .strictObject({
        workspaceId: z.string().min(1),
        workspaceKey: z.string().min(1).optional(),
        workspaceKeyFile: z.string().min(1).optional(),
        logType: z.enum(['ContainerInsights', 'ContainerInstanceLogs']).optional(),
      })
      .optional(),
    /** How often container groups' instance views are read. */
    statusPollIntervalMs: z.number().int().min(50).default(5000),
    /** How often `kubectl logs -f` asks for new lines. */
    logPollIntervalMs: z.number().int().min(50).default(2000),
    /** Attempts per ARM call for transient failures (429, 5xx, connection errors) before the error reaches the core. */
    retry: z
      .strictObject({
        attempts: z.number().int().min(1).max(10).default(3),
        baseMs: z.number().int().min(1).default(500),
        maxMs: z.number().int().min(1).default(8000),
      })
      .prefault({}),
    requestTimeoutMs: z.number().int().min(100).default(30_000),
  })
  .superRefine((c, ctx) => {
    if (c.credential.type === 'clientSecret' && !c.credential.secret === !c.credential.secretFile)
      ctx.addIssue({ code: 'custom', path: ['credential', 'secret'], message: 'set exactly one of secret and secretFile' });
    if (c.credential.type === 'accessToken' && !c.credential.token === !c.credential.tokenFile)
      ctx.addIssue({ code: 'custom', path: ['credential', 'token'], message: 'set exactly one of token and tokenFile' });
    if (c.logAnalytics && !c.logAnalytics.workspaceKey === !c.logAnalytics.workspaceKeyFile)
      ctx.addIssue({ code: 'custom', path: ['logAnalytics', 'workspaceKey'], message: 'set exactly one of workspaceKey and workspaceKeyFile' });
  });

export type AciConfig = z.output<typeof aciConfigSchema>;

/** Validates and defaults the provider config; a bad field throws a one-line ConfigError naming its path. */
export function parseAciConfig(input: unknown): AciConfig {
  const result = aciConfigSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(`aci provider config: ${formatZodError(result.error)}`);
  return result.data;
}

/** Reads a secret file named in the config (trailing newline dropped), naming the field when it cannot. */
export function readSecretFile(file: string, field: string): string {
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new ConfigError(`aci provider config: ${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
