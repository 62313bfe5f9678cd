import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fakeSource, service } from '../../test/fixtures/fake-source.ts';
import { loadServiceEnv, serviceEnvFor, serviceEnvVars } from './service-links.ts';

const kubernetes = service('kubernetes', '10.96.0.1', [{ name: 'https', port: 443, protocol: 'TCP' }], 'default');

test('one service yields host, ports and docker-link variables', () => {
  const svc = service('my-db', '10.96.0.20', [
    { name: 'sql', port: 5432 },
    { name: 'metrics-http', port: 9187, protocol: 'TCP' },
    { name: 'dns', port: 53, protocol: 'UDP' },
  ]);
  assert.deepEqual(Object.fromEntries(serviceEnvVars(svc)), {
    MY_DB_SERVICE_HOST: '10.96.0.20',
    MY_DB_SERVICE_PORT: '5432',
    MY_DB_SERVICE_PORT_SQL: '5432',
    MY_DB_SERVICE_PORT_METRICS_HTTP: '9187',
    MY_DB_SERVICE_PORT_DNS: '53',
    MY_DB_PORT: 'tcp://10.96.0.20:5432',
    MY_DB_PORT_5432_TCP: 'tcp://10.96.0.20:5432',
    MY_DB_PORT_5432_TCP_PROTO: 'tcp',
    MY_DB_PORT_5432_TCP_PORT: '5432',
    MY_DB_PORT_5432_TCP_ADDR: '10.96.0.20',
    MY_DB_PORT_9187_TCP: 'tcp://10.96.0.20:9187',
    MY_DB_PORT_9187_TCP_PROTO: 'tcp',
    MY_DB_PORT_9187_TCP_PORT: '9187',
    MY_DB_PORT_9187_TCP_ADDR: '10.96.0.20',
    MY_DB_PORT_53_UDP: 'udp://10.96.0.20:53',
    MY_DB_PORT_53_UDP_PROTO: 'udp',
    MY_DB_PORT_53_UDP_PORT: '53',
    MY_DB_PORT_53_UDP_ADDR: '10.96.0.20',
  });
});

test('the kubernetes service gives the in-cluster config variables', () => {
  const env = serviceEnvFor('ns', false, [], [kubernetes]);
  assert.equal(env.get('KUBERNETES_SERVICE_HOST'), '10.96.0.1');
  assert.equal(env.get('KUBERNETES_SERVICE_PORT'), '443');
  assert.equal(env.get('KUBERNETES_SERVICE_PORT_HTTPS'), '443');
  assert.equal(env.get('KUBERNETES_PORT'), 'tcp://10.96.0.1:443');
  assert.equal(env.get('KUBERNETES_PORT_443_TCP_ADDR'), '10.96.0.1');
});

test('IPv6 cluster IPs are bracketed in URLs', () => {
  const env = new Map(serviceEnvVars(service('v6', 'fd00::10', [{ port: 80 }])));
  assert.equal(env.get('V6_PORT'), 'tcp://[fd00::10]:80');
  assert.equal(env.get('V6_PORT_80_TCP_ADDR'), 'fd00::10');
});

test('headless and ExternalName services are skipped; other default services only with links in default', () => {
  const own = [service('headless', 'None', [{ port: 80 }]), service('external', '', []), service('api', '10.96.1.1', [{ port: 80 }])];
  const defaults = [kubernetes, service('other', '10.96.2.2', [{ port: 80 }], 'default')];
  const env = serviceEnvFor('ns', true, own, defaults);
  assert.ok(env.has('API_SERVICE_HOST'));
  assert.ok(env.has('KUBERNETES_SERVICE_HOST'));
  assert.ok(!env.has('HEADLESS_SERVICE_HOST'));
  assert.ok(!env.has('EXTERNAL_SERVICE_HOST'));
  assert.ok(!env.has('OTHER_SERVICE_HOST'), 'default-namespace services other than kubernetes are not linked into ns');
});

test('enableServiceLinks=false keeps only the master service', () => {
  const env = serviceEnvFor('ns', false, [service('api', '10.96.1.1', [{ port: 80 }])], [kubernetes]);
  assert.deepEqual(
    [...env.keys()].filter((k) => !k.startsWith('KUBERNETES_')),
    [],
  );
  assert.ok(env.has('KUBERNETES_SERVICE_HOST'));
});

test('a kubernetes service in the pod namespace wins over the master one', () => {
  const env = serviceEnvFor('ns', true, [service('kubernetes', '10.96.9.9', [{ port: 8443 }])], [kubernetes]);
  assert.equal(env.get('KUBERNETES_SERVICE_HOST'), '10.96.9.9');
  assert.equal(env.get('KUBERNETES_SERVICE_PORT'), '8443');
});

test('loadServiceEnv lists only the namespaces it needs', async () => {
  const source = fakeSource({ services: [kubernetes, service('api', '10.96.1.1', [{ port: 80 }])] });
  let env = await loadServiceEnv(source, 'ns', true);
  assert.deepEqual(source.calls.sort(), ['services default', 'services ns']);
  assert.ok(env.has('API_SERVICE_HOST'));
  source.calls.length = 0;
  env = await loadServiceEnv(source, 'ns', false);
  assert.deepEqual(source.calls, ['services default']);
  assert.ok(!env.has('API_SERVICE_HOST') && env.has('KUBERNETES_SERVICE_HOST'));
  source.calls.length = 0;
  await loadServiceEnv(source, 'default', true);
  assert.deepEqual(source.calls, ['services default']);
});
