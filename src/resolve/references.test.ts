import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pod } from '../../test/fixtures/fake-source.ts';
import { referencedObjects } from './references.ts';

test('collects ConfigMaps and Secrets from env, envFrom, volumes, projections and pull secrets', () => {
  const p = pod({
    imagePullSecrets: [{ name: 'regcred' }, { name: '' }],
    initContainers: [{ name: 'init', envFrom: [{ configMapRef: { name: 'init-cm' } }, { secretRef: { name: 'init-secret', optional: true } }] }],
    containers: [
      {
        name: 'main',
        env: [
          { name: 'A', valueFrom: { configMapKeyRef: { name: 'env-cm', key: 'a' } } },
          { name: 'B', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'b' } } },
          { name: 'C', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          { name: 'D', value: 'plain' },
        ],
      },
    ],
    ephemeralContainers: [{ name: 'debug', envFrom: [{ configMapRef: { name: 'debug-cm' } }] }],
    volumes: [
      { name: 'v1', configMap: { name: 'vol-cm' } },
      { name: 'v2', secret: { secretName: 'vol-secret' } },
      {
        name: 'kube-api-access-x',
        projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { configMap: { name: 'kube-root-ca.crt' } }, { secret: { name: 'proj-secret' } }] },
      },
      { name: 'e', emptyDir: {} },
    ],
  });
  const refs = referencedObjects(p);
  assert.deepEqual([...refs.configMaps].sort(), ['debug-cm', 'env-cm', 'init-cm', 'kube-root-ca.crt', 'vol-cm']);
  assert.deepEqual([...refs.secrets].sort(), ['env-secret', 'init-secret', 'proj-secret', 'regcred', 'vol-secret']);
});

test('a pod without references yields empty sets', () => {
  const refs = referencedObjects(pod());
  assert.equal(refs.configMaps.size + refs.secrets.size, 0);
  assert.equal(referencedObjects({}).configMaps.size, 0);
});
