// ARM access tokens: an @azure/identity credential chosen by the config (client secret,
// certificate, managed identity, workload identity, or the default chain), or a fixed bearer
// token. @azure/identity (with MSAL) is loaded only when one of its credentials is used.
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { AciConfig } from './config.ts';
import { readSecretFile } from './config.ts';

/** A token obtained elsewhere and used as is (not refreshed): `az account get-access-token`, tests. */
export class StaticTokenCredential implements TokenCredential {
  private readonly token: string;
  constructor(token: string) {
    this.token = token;
  }
  async getToken(): Promise<AccessToken> {
    return { token: this.token, expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

export async function createCredential(config: AciConfig): Promise<TokenCredential> {
  const c = config.credential;
  if (c.type === 'accessToken') return new StaticTokenCredential(c.token ?? readSecretFile(c.tokenFile!, 'credential.tokenFile'));
  const identity = await import('@azure/identity');
  switch (c.type) {
    case 'default':
      return new identity.DefaultAzureCredential();
    case 'clientSecret':
      return new identity.ClientSecretCredential(c.tenantId, c.clientId, c.secret ?? readSecretFile(c.secretFile!, 'credential.secretFile'), {
        ...(c.authorityHost && { authorityHost: c.authorityHost }),
      });
    case 'certificate':
      return new identity.ClientCertificateCredential(
        c.tenantId,
        c.clientId,
        { certificatePath: c.certificatePath },
        {
          ...(c.authorityHost && { authorityHost: c.authorityHost }),
        },
      );
    case 'managedIdentity':
      return c.clientId ? new identity.ManagedIdentityCredential({ clientId: c.clientId }) : new identity.ManagedIdentityCredential();
    case 'workloadIdentity':
      return new identity.WorkloadIdentityCredential({
        ...(c.tenantId && { tenantId: c.tenantId }),
        ...(c.clientId && { clientId: c.clientId }),
        ...(c.tokenFilePath && { tokenFilePath: c.tokenFilePath }),
      });
  }
}
