// Configuration of the `remote` provider (--provider remote --provider-config file.yaml):
//
//   endpoint: https://provider.example:9443   # http:// is fine on loopback
//   token: s3cr3t              # or tokenFile: /var/run/secrets/provider-token (re-read on 401)
//   caFile: ca.crt             # verifies the server's certificate (else the system CAs)
//   certFile: client.crt       # client certificate for mTLS, with keyFile
//   keyFile: client.key
//   timeoutMs: 30000           # per unary call (each retry gets its own)
//
// Every field is checked here; a bad one is a one-line ConfigError naming it.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { formatZodError } from '../../util/zod-error.ts';

const positiveMs = z.number().int().positive();

export const remoteConfigSchema = z
  .strictObject({
    endpoint: z
      .string({ error: 'expected a URL such as https://127.0.0.1:9443' })
      .min(1)
      .refine((s) => {
        try {
          const url = new URL(s);
          return (url.protocol === 'http:' || url.protocol === 'https:') && url.search === '' && url.hash === '';
        } catch {
          return false;
        }
      }, 'expected an http:// or https:// URL without query or fragment, such as https://127.0.0.1:9443'),
    token: z.string().min(1).optional(),
    tokenFile: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** Per attempt of a unary call, and until the response headers of a streaming call. */
    timeoutMs: positiveMs.default(30_000),
    /** How long start-up keeps trying to reach the server (GET /v1/capabilities) before giving up. */
    connectTimeoutMs: positiveMs.default(30_000),
    /** Extra attempts of an idempotent call after a transport error or 502/503/504 (jittered exponential backoff). */
    retries: z.number().int().min(0).max(10).default(3),
    /** Responses larger than this are refused (listPods of a big node is the largest). */
    maxResponseBytes: positiveMs.default(256 << 20),
  })
  .superRefine((c, ctx) => {
    if (c.token !== undefined && c.tokenFile !== undefined) ctx.addIssue({ code: 'custom', path: ['tokenFile'], message: 'give token or tokenFile, not both' });
    if ((c.certFile === undefined) !== (c.keyFile === undefined))
      ctx.addIssue({
        code: 'custom',
        path: [c.certFile === undefined ? 'certFile' : 'keyFile'],
        message: 'certFile and keyFile go together: give both or neither',
      });
    const https = c.endpoint.startsWith('https:');
    for (const field of ['caFile', 'certFile', 'keyFile'] as const) {
      if (c[field] !== undefined && !https) ctx.addIssue({ code: 'custom', path: [field], message: 'needs an https:// endpoint' });
    }
  });

export type RemoteProviderConfig = z.output<typeof remoteConfigSchema>;

/** Validates and defaults the remote provider config; errors are one line naming the field. */
export function parseRemoteConfig(input: unknown): RemoteProviderConfig {
  const result = remoteConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(`provider config: ${formatZodError(result.error)}`);
}

export interface RemoteTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

function readConfigFile(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(`provider config: ${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Reads the CA, client certificate and key files named by the config. */
export function loadRemoteTls(config: RemoteProviderConfig): RemoteTls {
  return {
    ...(config.caFile && { ca: readConfigFile('caFile', config.caFile) }),
    ...(config.certFile && { cert: readConfigFile('certFile', config.certFile) }),
    ...(config.keyFile && { key: readConfigFile('keyFile', config.keyFile) }),
  };
}

/** The bearer token: inline, or the file's content trimmed (read again on demand, as tokens rotate). */
export function readRemoteToken(config: RemoteProviderConfig): string | undefined {
  if (config.token !== undefined) return config.token;
  if (config.tokenFile === undefined) return undefined;
  const token = readConfigFile('tokenFile', config.tokenFile).toString('utf8').trim();
  if (!token) throw new ConfigError(`provider config: tokenFile: ${config.tokenFile} is empty`);
  return token;
}
