// Per-resolution view of ConfigMaps and Secrets: each object is fetched once, so every
// container and volume of one pod sees the same version.
import type { ConfigMap, Secret } from '../kube/types.ts';
import type { ObjectSource } from './types.ts';

export class ObjectCache {
  private readonly source: ObjectSource;
  private readonly namespace: string;
  private readonly configMaps = new Map<string, Promise<ConfigMap | undefined>>();
  private readonly secrets = new Map<string, Promise<Secret | undefined>>();

  constructor(source: ObjectSource, namespace: string) {
    this.source = source;
    this.namespace = namespace;
  }

  configMap(name: string): Promise<ConfigMap | undefined> {
    let found = this.configMaps.get(name);
    if (!found) {
      found = this.source.getConfigMap(this.namespace, name);
      this.configMaps.set(name, found);
    }
    return found;
  }

  secret(name: string): Promise<Secret | undefined> {
    let found = this.secrets.get(name);
    if (!found) {
      found = this.source.getSecret(this.namespace, name);
      this.secrets.set(name, found);
    }
    return found;
  }
}

export function decodeBase64(text: string): Uint8Array {
  // A copy, not a view into Buffer's shared pool.
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** A Secret's data value as text (env vars are strings). */
export function secretText(secret: Secret, key: string): string | undefined {
  const encoded = secret.data?.[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
}
