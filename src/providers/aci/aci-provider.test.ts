// The ACI provider against the ACI contract server: pods ACI cannot run are rejected naming the
// field with no API call, service errors are retried or surfaced by class, bad credentials stop
// start-up in one line, status follows the group's lifecycle, logs follow, exec runs.
import assert from 'node:assert/strict';
import https from 'node:https';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { hasCode, PodRejectedError, TryLaterError } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import { startAciFixture, type AciFixture } from '../../../test/contract/aci/fixture.ts';
import { AciContractServer } from '../../../test/contract/aci/server.ts';
import type { PodEvent } from '../provider.ts';
import type { AciProvider } from './aci-provider.ts';

const call = { signal: AbortSignal.timeout(60_000) };
let fixture: AciFixture;
let provider: AciProvider;

before(async () => {
  fixture = await startAciFixture(silentLogger, { timings: { provisionMs: 200, restartDelayMs: 300 } });
  provider = await fixture.open();
});
after(async () => {
  const violations = [...fixture.server.violations];
  await fixture.close();
  assert.deepEqual(violations, [], `requests the published schema rejects:\n${violations.join('\n')}`);
});

let serial = 0;
function pod(spec: Partial<NonNullable<Pod['spec']>> & { container?: Record<string, unknown> }, name = `p${++serial}`): Pod {
  const { container, ...rest } = spec;
  return {
    metadata: { namespace: 'ns', name, uid: `uid-${name}` },
    spec: { restartPolicy: 'Always', containers: [{ name: 'app', image: 'busybox', command: ['sleep', '3600'], ...container }], ...rest },
  };
}

async function phaseOf(name: string, phase: string) {
  return waitFor(
    `pod ${name} ${phase}`,
    async () => {
      const p = await provider.getPod('ns', name);
      return p?.status?.phase === phase ? p : undefined;
    },
    { timeoutMs: 10_000 },
  );
}

describe('pods ACI cannot run are rejected, naming the field, with no API call', () => {
  const cases: [string, Pod, RegExp][] = [
    ['hostNetwork', pod({ hostNetwork: true }), /^spec\.hostNetwork: /],
    ['privileged', pod({ container: { securityContext: { privileged: true } } }), /^spec\.containers\[0\]\.securityContext\.privileged: /],
    [
      'too much CPU',
      pod({ container: { resources: { requests: { cpu: '6' } } } }),
      /^spec\.containers\[0\]\.resources\.requests\.cpu: .*6 CPUs, more than ACI's 4/,
    ],
    [
      'too much CPU over two containers',
      {
        ...pod({}),
        spec: {
          containers: [
            { name: 'a', image: 'x', resources: { requests: { cpu: '3' } } },
            { name: 'b', image: 'x', resources: { requests: { cpu: '1500m' } } },
          ],
        },
      },
      /^spec\.containers\[1\]\.resources\.requests\.cpu: .*4\.5 CPUs/,
    ],
    ['hostPath volume', pod({ volumes: [{ name: 'h', hostPath: { path: '/etc' } }] }), /^spec\.volumes\[0\]\.hostPath: volume "h"/],
    ['persistentVolumeClaim', pod({ volumes: [{ name: 'c', persistentVolumeClaim: { claimName: 'x' } }] }), /^spec\.volumes\[0\]\.persistentVolumeClaim: /],
    ['args without command', pod({ container: { command: undefined, args: ['-x'] } }), /^spec\.containers\[0\]\.args: /],
    ['tcpSocket probe', pod({ container: { livenessProbe: { tcpSocket: { port: 80 } } } }), /^spec\.containers\[0\]\.livenessProbe\.tcpSocket: /],
    [
      'GPU without a configured SKU',
      pod({ container: { resources: { limits: { 'nvidia.com/gpu': '1' } } } }),
      /^spec\.containers\[0\]\.resources\.limits\.nvidia\.com\/gpu: .*gpuSku/,
    ],
  ];
  for (const [what, bad, field] of cases) {
    test(what, async () => {
      const before = fixture.server.requests.length;
      await assert.rejects(provider.createPod({ pod: bad, volumes: new Map() }, call), (err: unknown) => {
        assert.ok(err instanceof PodRejectedError, `expected PodRejectedError, got ${String(err)}`);
        assert.match(err.message, field);
        return true;
      });
      const sent = fixture.server.requests.slice(before).filter((r) => r.operationId === 'ContainerGroups_CreateOrUpdate');
      assert.deepEqual(sent, [], 'no container group may be created for a rejected pod');
    });
  }
});

test('a pod becomes a container group <namespace>-<name>: argv kept whole, CPU and memory rounded up, env as secureValue, tags', async () => {
  const p = pod(
    {
      container: {
        command: ['sh', '-c'],
        args: ['echo "a b"; sleep 3600'],
        env: [{ name: 'TOKEN', value: 's3cret' }],
        resources: { requests: { cpu: '333m', memory: '100Mi' } },
        ports: [{ containerPort: 8080 }],
      },
    },
    'shape',
  );
  await provider.createPod({ pod: p, volumes: new Map() }, call);
  const put = fixture.server.requests.findLast((r) => r.operationId === 'ContainerGroups_CreateOrUpdate');
  assert.equal(put?.path.split('/').pop(), 'ns-shape');
  const body = put!.body as { tags: Record<string, string>; properties: { containers: { properties: Record<string, unknown> }[]; ipAddress: unknown } };
  const c = body.properties.containers[0]!.properties;
  assert.deepEqual(c.command, ['sh', '-c', 'echo "a b"; sleep 3600']);
  assert.deepEqual(c.resources, { requests: { cpu: 0.34, memoryInGB: 0.1 } });
  assert.deepEqual(c.environmentVariables, [{ name: 'TOKEN', secureValue: 's3cret' }]);
  assert.deepEqual(c.ports, [{ port: 8080, protocol: 'TCP' }]);
  assert.deepEqual(body.tags, { 'k8s-namespace': 'ns', 'k8s-pod-name': 'shape', 'k8s-pod-uid': 'uid-shape', 'virtual-kubelet-node': 'aci-node' });
  const running = await phaseOf('shape', 'Running');
  assert.ok(running.status?.podIP, 'a Running pod in a subnet has the group IP');
  await provider.deletePod(p, { ...call, reason: 'deleted' });
  assert.ok(fixture.server.deleted.includes('ns-shape'));
});

test('status follows the group: exit codes, restarts per restartPolicy, and a failed provisioning ends the pod with the service message', async () => {
  const never = pod({ restartPolicy: 'Never', container: { command: ['sh', '-c', 'sleep 1; exit 3'] } }, 'never');
  const always = pod({ restartPolicy: 'Always', container: { command: ['sh', '-c', 'sleep 0.3; exit 0'] } }, 'always');
  const ok = pod({ restartPolicy: 'OnFailure', container: { command: ['sh', '-c', 'sleep 0.5'] } }, 'ok');
  fixture.server.failProvisioning('ns-broken', 'Subnet is full: no IP address left');
  const broken = pod({}, 'broken');
  for (const p of [never, always, ok, broken]) await provider.createPod({ pod: p, volumes: new Map() }, call);
  const failed = await phaseOf('never', 'Failed');
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 3);
  assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'Error');
  const done = await phaseOf('ok', 'Succeeded');
  assert.equal(done.status?.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
  const restarted = await waitFor(
    'a restart',
    async () => {
      const s = (await provider.getPod('ns', 'always'))?.status;
      return (s?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? s : undefined;
    },
    { timeoutMs: 10_000 },
  );
  assert.equal(restarted.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 0);
  const provisioning = await phaseOf('broken', 'Failed');
  assert.match(provisioning.status?.message ?? '', /Subnet is full/);
  for (const p of [never, always, ok, broken]) await provider.deletePod(p, { ...call, reason: 'deleted' });
});

test('throttling and server errors are retried; a Retry-After beyond the cap reaches the core as TryLaterError; quota is TryLater', async () => {
  const server = fixture.server;
  server.inject({ operationId: 'ContainerGroups_CreateOrUpdate', status: 429, code: 'TooManyRequests', retryAfterSeconds: 0, times: 1 });
  server.inject({ operationId: 'ContainerGroups_CreateOrUpdate', status: 503, code: 'ServiceUnavailable', times: 1 });
  const p = pod({}, 'retried');
  const before = server.count('ContainerGroups_CreateOrUpdate');
  await provider.createPod({ pod: p, volumes: new Map() }, call);
  assert.equal(server.count('ContainerGroups_CreateOrUpdate') - before, 3, 'two failures, then the group');
  await provider.deletePod(p, { ...call, reason: 'deleted' });

  server.inject({ operationId: 'ContainerGroups_CreateOrUpdate', status: 429, code: 'TooManyRequests', retryAfterSeconds: 30 });
  const slow = pod({}, 'slow');
  await assert.rejects(provider.createPod({ pod: slow, volumes: new Map() }, call), (err: unknown) => {
    assert.ok(err instanceof TryLaterError);
    assert.equal(err.retryAfterMs, 30_000);
    assert.match(err.message, /create container group ns-slow for pod ns\/slow: 429 TooManyRequests/);
    return true;
  });
  assert.equal(await provider.getPod('ns', 'slow'), undefined);

  server.inject({
    operationId: 'ContainerGroups_CreateOrUpdate',
    status: 409,
    code: 'ContainerGroupQuotaReached',
    message: 'Resource type quota exceeded',
    times: 5,
  });
  await assert.rejects(
    provider.createPod({ pod: slow, volumes: new Map() }, call),
    (err: unknown) => err instanceof TryLaterError && /ContainerGroupQuotaReached/.test(err.message),
  );
});

test('a refused credential: ping fails as ProviderUnavailable (node NotReady); pods are untouched', async () => {
  fixture.server.inject({ operationId: 'ContainerGroups_ListByResourceGroup', status: 401, code: 'InvalidAuthenticationToken' });
  await assert.rejects(
    provider.ping(AbortSignal.timeout(5000)),
    (err: unknown) => hasCode(err, 'VK_PROVIDER_UNAVAILABLE') && /401 InvalidAuthenticationToken.*credential was refused/.test((err as Error).message),
  );
});

test('start-up with an invalid credential fails with one line', async () => {
  await assert.rejects(fixture.open({ credential: { type: 'accessToken', token: 'wrong' } }), (err: unknown) => {
    const message = (err as Error).message;
    assert.ok(!message.includes('\n'), message);
    assert.match(
      message,
      /^aci provider: cannot list container groups in resource group rg at https:\/\/127\.0\.0\.1:\d+: list container groups: 401 InvalidAuthenticationToken/,
    );
    return true;
  });
  await assert.rejects(fixture.open({ region: undefined }), /aci provider config: region: required/);
});

test('a new process adopts the groups its node created (same UIDs, no duplicates)', async () => {
  const p = pod({}, 'adopted');
  await provider.createPod({ pod: p, volumes: new Map() }, call);
  const second = await fixture.open({}, 'aci-node');
  const other = await fixture.open({}, 'another-node');
  const got = await second.getPod('ns', 'adopted');
  assert.equal(got?.metadata?.uid, 'uid-adopted');
  assert.equal(await other.getPod('ns', 'adopted'), undefined, "another node's provider does not adopt it");
  await provider.deletePod(p, { ...call, reason: 'deleted' });
});

test('instance-view events become pod Events once each: a restart adds to Started, a failed provisioning is a Warning', async () => {
  const seen: PodEvent[] = [];
  provider.notifyPodEvents((event) => seen.push(event));
  const restarting = pod({ restartPolicy: 'Always', container: { image: 'nginx:1.27', command: ['sh', '-c', 'sleep 0.3; exit 0'] } }, 'events');
  fixture.server.failProvisioning('ns-events-broken', 'Subnet is full: no IP address left');
  const broken = pod({}, 'events-broken');
  for (const p of [restarting, broken]) await provider.createPod({ pod: p, volumes: new Map() }, call);
  const of = (name: string, reason: string) => seen.filter((e) => e.name === name && e.reason === reason);
  const occurrences = (name: string, reason: string) => of(name, reason).reduce((n, e) => n + (e.count ?? 1), 0);
  await waitFor('Started twice (a restart)', () => occurrences('events', 'Started') >= 2, { timeoutMs: 10_000 });
  await waitFor('the provisioning failure', () => of('events-broken', 'ProvisioningFailed').length === 1, { timeoutMs: 10_000 });
  const [pulling] = of('events', 'Pulling');
  assert.deepEqual(
    { ...pulling, firstTimestamp: undefined },
    {
      namespace: 'ns',
      name: 'events',
      uid: 'uid-events',
      type: 'Normal',
      reason: 'Pulling',
      message: 'pulling image "nginx:1.27"',
      container: 'app',
      count: 1,
      firstTimestamp: undefined,
    },
  );
  assert.ok(pulling!.firstTimestamp instanceof Date);
  assert.equal(of('events', 'Pulled')[0]?.message, 'Successfully pulled image "nginx:1.27"');
  const [failed] = of('events-broken', 'ProvisioningFailed');
  assert.equal(failed!.type, 'Warning');
  assert.equal(failed!.container, undefined, "the group's own event names no container");
  assert.equal(failed!.message, 'Subnet is full: no IP address left');
  // Polls go on (every 100 ms) without repeating what was reported.
  const polled = fixture.server.requests.length;
  await waitFor('three more polls', () => fixture.server.requests.length >= polled + 6, { timeoutMs: 5_000 });
  assert.equal(of('events', 'Pulling').length, 1);
  assert.equal(of('events', 'Pulled').length, 1);
  assert.equal(of('events-broken', 'ProvisioningFailed').length, 1);
  const started = of('events', 'Started');
  assert.ok(
    started.every((e, i) => i === 0 || e.firstTimestamp === undefined),
    'only the first report of Started carries its first time',
  );

  for (const p of [restarting, broken]) await provider.deletePod(p, { ...call, reason: 'deleted' });
});

test('logs: tail, and follow emits only new lines while the container runs', async () => {
  const p = pod({ container: { command: ['sh', '-c', 'echo first; while true; do echo tick; sleep 0.3; done'] } }, 'logger');
  await provider.createPod({ pod: p, volumes: new Map() }, call);
  await phaseOf('logger', 'Running');
  const abort = new AbortController();
  const stream = await provider.getContainerLogs('ns', 'logger', 'app', { follow: true, previous: false, timestamps: false, signal: abort.signal });
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  await waitFor('followed lines', () => text.split('\n').filter((l) => l === 'tick').length >= 4, { timeoutMs: 10_000 });
  abort.abort();
  const lines = text.trimEnd().split('\n');
  assert.equal(lines[0], 'first');
  assert.ok(
    lines.slice(1).every((l) => l === 'tick'),
    `only new lines, each once: ${JSON.stringify(lines)}`,
  );
  const tail = await provider.getContainerLogs('ns', 'logger', 'app', { follow: false, previous: false, timestamps: false, tailLines: 1, signal: call.signal });
  let tailText = '';
  for await (const c of tail) tailText += String(c);
  assert.equal(tailText, 'tick\n');
  await assert.rejects(
    provider.getContainerLogs('ns', 'logger', 'nope', { follow: false, previous: false, timestamps: false, signal: call.signal }),
    /container "nope" not found/,
  );
  await provider.deletePod(p, { ...call, reason: 'deleted' });
});

test('exec goes through the exec API and its WebSocket with the argv as one quoted command', async () => {
  const p = pod({}, 'exec');
  await provider.createPod({ pod: p, volumes: new Map() }, call);
  await phaseOf('exec', 'Running');
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await provider.runInContainer('ns', 'exec', 'app', ['echo', 'hello world'], { stdout, tty: true, signal: call.signal });
  assert.equal(code, 0);
  assert.equal(out, 'hello world\r\n');
  const sent = fixture.server.requests.findLast((r) => r.operationId === 'Containers_ExecuteCommand');
  assert.deepEqual((sent?.body as { command: string }).command, "echo 'hello world'");
  await provider.deletePod(p, { ...call, reason: 'deleted' });
});

test('the contract server answers a request the schema rejects with 400 and records the schema path', async () => {
  const server = await AciContractServer.start();
  try {
    const body = JSON.stringify({
      location: 'w',
      properties: { osType: 'Plan9', containers: [{ name: 'a', properties: { image: 'x', resources: { requests: { cpu: '1' } } } }] },
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        `${server.url}/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/x?api-version=2023-05-01`,
        { method: 'PUT', ca: server.caPem, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 400);
    const problems = server.violations.join('\n');
    assert.match(
      problems,
      /\$containerGroup\.properties\.osType \(#\/definitions\/ContainerGroupProperties\/properties\/properties\/properties\/osType\)\/enum: "Plan9"/,
    );
    assert.match(
      problems,
      /\$containerGroup\.properties\.containers\[0\]\.properties\.resources\.requests\.cpu \(#\/definitions\/ResourceRequests\/properties\/cpu\): expected a number/,
    );
    assert.match(
      problems,
      /\$containerGroup\.properties\.containers\[0\]\.properties\.resources\.requests\.memoryInGB \(#\/definitions\/ResourceRequests\/required\): required property missing/,
    );
    assert.equal(server.groupNames().length, 0, 'nothing is created from a rejected request');
  } finally {
    await server.close();
  }
});
