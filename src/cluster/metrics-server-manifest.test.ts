import assert from 'node:assert/strict';
import { test } from 'node:test';
import { metricsServerVersion } from './metrics-server.ts';
import { METRICS_SERVER_APISERVICE, METRICS_SERVER_USER, metricsServerManifest } from './metrics-server-manifest.ts';

interface Item {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { ports?: { name: string; port: number; targetPort: number }[]; service?: { name: string; namespace: string; port: number }; caBundle?: string };
  endpoints?: { addresses: string[] }[];
  ports?: { name: string; port: number }[];
  subjects?: { kind: string; name: string }[];
  rules?: { resources: string[]; verbs: string[] }[];
}

test("the APIService reaches metrics-server at the host address: the Service's port name is the EndpointSlice's, the CA is the bundle", () => {
  const { items } = metricsServerManifest({ address: '10.214.3.1', port: 34567, caBundlePem: 'PEM' }) as { items: Item[] };
  const find = (kind: string) => items.find((i) => i.kind === kind)!;
  const service = find('Service');
  const slice = find('EndpointSlice');
  const apiService = find('APIService');
  assert.equal(apiService.metadata.name, METRICS_SERVER_APISERVICE);
  assert.deepEqual(apiService.spec!.service, { name: service.metadata.name, namespace: service.metadata.namespace, port: service.spec!.ports![0]!.port });
  assert.equal(Buffer.from(apiService.spec!.caBundle!, 'base64').toString(), 'PEM');
  assert.equal(slice.metadata.labels!['kubernetes.io/service-name'], service.metadata.name);
  assert.equal(slice.metadata.namespace, service.metadata.namespace);
  assert.deepEqual(
    slice.endpoints!.map((e) => e.addresses),
    [['10.214.3.1']],
  );
  assert.deepEqual(slice.ports, [{ name: service.spec!.ports![0]!.name, port: 34567, protocol: 'TCP' }]);
  // Every binding names the certificate's user; it may read nodes/metrics (what our kubelet API authorizes).
  for (const binding of items.filter((i) => i.kind.endsWith('Binding')))
    assert.deepEqual(
      binding.subjects!.map((s) => [s.kind, s.name]),
      [['User', METRICS_SERVER_USER]],
    );
  assert.ok(find('ClusterRole') && items.some((i) => i.rules?.some((r) => r.resources.includes('nodes/metrics') && r.verbs.includes('get'))));
});

test('tools/metrics-server/go.mod pins metrics-server v0.8.0 (a tool requirement is marked indirect)', () => {
  assert.equal(metricsServerVersion(), 'v0.8.0');
});
