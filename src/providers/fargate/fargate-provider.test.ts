// The Fargate provider against the AWS contract server: the mapping as the service receives it,
// pods running to their end (exit codes decide Succeeded/Failed), rejections made before any AWS
// call, service errors classified, credentials checked at start-up, logs read back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { text } from 'node:stream/consumers';
import { ConfigError, hasCode, PodRejectedError } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import { silentLogger } from '../../log.ts';
import { waitFor } from '../../../test/harness/wait.ts';
import { CLUSTER, startFargate, testConfig, useTestCredentials } from '../../../test/contract/aws/fargate-fixture.ts';
import { AwsContractServer, FAULTS } from '../../../test/contract/aws/server.ts';
import type { RegisterTaskDefinitionCommandInput, RunTaskCommandInput } from '@aws-sdk/client-ecs';
import type { PodEvent } from '../provider.ts';
import { FargateProvider } from './fargate-provider.ts';

const call = { signal: AbortSignal.timeout(60_000) };
let counter = 0;

function pod(spec: Record<string, unknown>, name = `p${++counter}`): Pod {
  return {
    metadata: { namespace: 'ns', name, uid: `00000000-0000-0000-0000-${String(counter).padStart(12, '0')}` },
    spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }], ...spec },
  } as Pod;
}

const resolved = (p: Pod) => ({ pod: p, volumes: new Map() });

describe('fargate provider against the AWS contract server', () => {
  let env: Awaited<ReturnType<typeof startFargate>>;
  before(async () => {
    env = await startFargate();
  });
  after(() => env.close());

  const status = (p: Pod) => env.provider.getPodStatus('ns', p.metadata!.name!, call);
  const until = (p: Pod, what: string, ok: (phase: string | undefined) => boolean) =>
    waitFor(
      what,
      async () => {
        const s = await status(p);
        return s && ok(s.phase) ? s : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 20 },
    );

  test('a pod maps to a FARGATE/awsvpc task definition and RunTask with startedBy = UID and tags', async () => {
    const p = pod({
      containers: [
        {
          name: 'main',
          image: 'busybox:1.36',
          command: ['sh', '-c'],
          args: ['echo "$GREETING"; sleep 3600'],
          env: [{ name: 'GREETING', value: 'hello' }],
          ports: [{ containerPort: 8080 }, { containerPort: 53, protocol: 'UDP' }],
          resources: { requests: { cpu: '1500m', memory: '3Gi' } },
        },
      ],
    });
    await env.provider.createPod(resolved(p), call);
    const register = env.server.calls('RegisterTaskDefinition').at(-1)!.body as unknown as RegisterTaskDefinitionCommandInput;
    assert.equal(register.family, `vk_ns_${p.metadata!.name}`);
    assert.deepEqual(register.requiresCompatibilities, ['FARGATE']);
    assert.equal(register.networkMode, 'awsvpc');
    // 1.5 vCPU and 3 GiB round up to 2 vCPU / 4 GiB, the smallest Fargate size that holds them.
    assert.equal(register.cpu, '2048');
    assert.equal(register.memory, '4096');
    const c = register.containerDefinitions![0]!;
    assert.deepEqual(c.entryPoint, ['sh', '-c']);
    assert.deepEqual(c.command, ['echo "$GREETING"; sleep 3600']);
    assert.deepEqual(c.environment, [{ name: 'GREETING', value: 'hello' }]);
    assert.deepEqual(c.portMappings, [
      { containerPort: 8080, protocol: 'tcp' },
      { containerPort: 53, protocol: 'udp' },
    ]);
    assert.equal(c.cpu, 1536);
    assert.equal(c.memoryReservation, 3072);
    assert.equal(c.logConfiguration?.logDriver, 'awslogs');
    const run = env.server.calls('RunTask').at(-1)!.body as unknown as RunTaskCommandInput;
    assert.equal(run.launchType, 'FARGATE');
    assert.equal(run.startedBy, p.metadata!.uid);
    assert.deepEqual(run.networkConfiguration?.awsvpcConfiguration?.subnets, ['subnet-0123456789abcdef0']);
    assert.ok(run.tags?.some((t) => t.key === 'virtual-kubelet.io/uid' && t.value === p.metadata!.uid));
    const running = await until(p, 'Running', (phase) => phase === 'Running');
    assert.match(running.podIP ?? '', /^10\.0\.\d+\.\d+$/, 'podIP comes from the ENI attachment');
    assert.equal(running.containerStatuses?.[0]?.ready, true);
    await env.provider.deletePod(p, { ...call, reason: 'deleted' });
    assert.equal(env.server.calls('StopTask').at(-1)!.body.reason, 'virtual-kubelet: pod deleted');
    const family = env.server.ecs.definitions.get(register.family!)!;
    assert.ok(
      family.every((d) => d.status === 'INACTIVE'),
      'every revision of the pod family is deregistered on delete',
    );
  });

  test('a container that exits 1 ends the pod Failed, with the exit code and stoppedReason; exit 0 is Succeeded', async () => {
    const failing = pod({ containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.2; exit 1'] }] });
    const passing = pod({ containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.2'] }] });
    await env.provider.createPod(resolved(failing), call);
    await env.provider.createPod(resolved(passing), call);
    const failed = await until(failing, 'finished', (phase) => phase === 'Failed' || phase === 'Succeeded');
    assert.equal(failed.phase, 'Failed');
    assert.equal(failed.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);
    assert.equal(failed.containerStatuses?.[0]?.state?.terminated?.reason, 'Error');
    assert.match(failed.message ?? '', /EssentialContainerExited: Essential container in task exited.*main=1/);
    const succeeded = await until(passing, 'finished', (phase) => phase === 'Failed' || phase === 'Succeeded');
    assert.equal(succeeded.phase, 'Succeeded');
    assert.equal(succeeded.containerStatuses?.[0]?.state?.terminated?.reason, 'Completed');
    for (const p of [failing, passing]) await env.provider.deletePod(p, { ...call, reason: 'finished' });
  });

  test('a sidecar that exits 0 does not make a pod Succeeded while another essential container failed', async () => {
    const p = pod({
      containers: [
        { name: 'ok', image: 'busybox:1.36', command: ['sh', '-c', 'exit 0'] },
        { name: 'bad', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 5; exit 2'] },
      ],
    });
    await env.provider.createPod(resolved(p), call);
    const done = await until(p, 'finished', (phase) => phase === 'Failed' || phase === 'Succeeded');
    // ECS stops the task when the first essential container exits: the other was killed (137).
    assert.equal(done.phase, 'Failed');
    assert.match(done.message ?? '', /ok=0, bad=137/);
    await env.provider.deletePod(p, { ...call, reason: 'finished' });
  });

  test('restartPolicy OnFailure runs a new task after a failure, counting the restart', async (t) => {
    const p = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.2; exit 3'] }] });
    await env.provider.createPod(resolved(p), call);
    // Deleted however the test ends: a pod left restarting would take the RunTask faults later tests inject.
    t.after(() => env.provider.deletePod(p, { ...call, reason: 'deleted' }).catch(() => undefined));
    const restarted = await waitFor(
      'a restart',
      async () => {
        const s = await status(p);
        // The restart is counted once the new task is asked for; wait until its RunTask is recorded too.
        const runs = env.server.calls('RunTask').filter((r) => r.body.startedBy === p.metadata!.uid).length;
        return (s?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 && runs >= 2 ? s : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 20 },
    );
    assert.notEqual(restarted.phase, 'Failed');
    assert.equal(restarted.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 3);
  });

  test('init containers run first (dependsOn SUCCESS) and are not essential', async () => {
    const p = pod({
      initContainers: [{ name: 'setup', image: 'busybox:1.36', command: ['sh', '-c', 'echo ready'] }],
      containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.3'] }],
    });
    await env.provider.createPod(resolved(p), call);
    const definitions = (env.server.calls('RegisterTaskDefinition').at(-1)!.body as unknown as RegisterTaskDefinitionCommandInput).containerDefinitions!;
    assert.equal(definitions[0]!.essential, false);
    assert.deepEqual(definitions[1]!.dependsOn, [{ containerName: 'setup', condition: 'SUCCESS' }]);
    const done = await until(p, 'Succeeded', (phase) => phase === 'Succeeded' || phase === 'Failed');
    assert.equal(done.phase, 'Succeeded');
    assert.equal(done.initContainerStatuses?.[0]?.state?.terminated?.exitCode, 0);
    await env.provider.deletePod(p, { ...call, reason: 'finished' });
  });

  test('secrets: ecs turns Secrets Manager and SSM ARNs into ECS secrets', async () => {
    const isolated = await startFargate({ config: { secrets: 'ecs' } });
    try {
      const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:db-password-AbCdEf';
      const p = pod({
        containers: [
          {
            name: 'main',
            image: 'busybox:1.36',
            env: [
              { name: 'DB_PASSWORD', value: arn },
              { name: 'MODE', value: 'prod' },
            ],
          },
        ],
      });
      await isolated.provider.createPod(resolved(p), call);
      const c = (isolated.server.calls('RegisterTaskDefinition').at(-1)!.body as unknown as RegisterTaskDefinitionCommandInput).containerDefinitions![0]!;
      assert.deepEqual(c.secrets, [{ name: 'DB_PASSWORD', valueFrom: arn }]);
      assert.deepEqual(c.environment, [{ name: 'MODE', value: 'prod' }]);
    } finally {
      await isolated.close();
    }
  });

  const rejected: [string, Record<string, unknown>, RegExp][] = [
    ['hostNetwork', { hostNetwork: true }, /^spec\.hostNetwork:/],
    [
      'a privileged container',
      { containers: [{ name: 'main', image: 'busybox', securityContext: { privileged: true } }] },
      /^spec\.containers\[0\]\.securityContext\.privileged:/,
    ],
    ['a hostPath volume', { volumes: [{ name: 'data', hostPath: { path: '/data' } }] }, /^spec\.volumes\[0\]\.hostPath:/],
    ['a configMap volume', { volumes: [{ name: 'cfg', configMap: { name: 'x' } }] }, /^spec\.volumes\[0\]\.configMap:/],
    [
      'more CPU than the largest Fargate task',
      { containers: [{ name: 'main', image: 'busybox', resources: { requests: { cpu: '20' } } }] },
      /^spec\.containers\[\]\.resources\.cpu: .*20 vCPU.*16/,
    ],
    [
      'more memory than the largest Fargate task',
      { containers: [{ name: 'main', image: 'busybox', resources: { limits: { memory: '200Gi' } } }] },
      /^spec\.containers\[\]\.resources\.memory:/,
    ],
    ['a GPU', { containers: [{ name: 'main', image: 'busybox', resources: { limits: { 'nvidia.com/gpu': '1' } } }] }, /nvidia\.com\/gpu/],
    [
      'a hostPort other than the container port',
      { containers: [{ name: 'main', image: 'busybox', ports: [{ containerPort: 80, hostPort: 8080 }] }] },
      /^spec\.containers\[0\]\.ports\[0\]\.hostPort:/,
    ],
  ];
  for (const [what, spec, field] of rejected) {
    test(`${what} is rejected naming the field, with no AWS call`, async () => {
      const before = env.server.requests.length;
      const p = pod(spec);
      await assert.rejects(env.provider.createPod(resolved(p), call), (err: unknown) => {
        assert.ok(err instanceof PodRejectedError, `expected PodRejectedError, got ${String(err)}`);
        assert.match(err.message, field);
        return true;
      });
      const made = env.server.requests.slice(before).filter((r) => r.operation !== 'DescribeTasks' && r.operation !== 'DescribeClusters');
      assert.deepEqual(
        made.map((r) => r.operation),
        [],
        'no AWS call for a rejected pod',
      );
      assert.equal(await env.provider.getPod('ns', p.metadata!.name!, call), undefined);
    });
  }

  test('throttling the SDK retries away is invisible; throttling that persists is TryLater; 5xx is ProviderUnavailable', async () => {
    env.server.inject({ ...FAULTS.throttling, operation: 'RunTask', times: 1 });
    const p = pod({});
    await env.provider.createPod(resolved(p), call);
    assert.ok(await env.provider.getPod('ns', p.metadata!.name!, call));
    await env.provider.deletePod(p, { ...call, reason: 'deleted' });

    env.server.inject({ ...FAULTS.throttling, operation: 'RunTask', times: 3 });
    const throttled = pod({});
    await assert.rejects(env.provider.createPod(resolved(throttled), call), (err) => hasCode(err, 'VK_TRY_LATER'));
    assert.equal(await env.provider.getPod('ns', throttled.metadata!.name!, call), undefined);
    assert.equal(
      env.server.calls('DeregisterTaskDefinition').at(-1)!.body.taskDefinition,
      env.server.ecs.definitions.get(`vk_ns_${throttled.metadata!.name}`)![0]!.arn,
    );

    env.server.inject({ ...FAULTS.serverError, operation: 'RegisterTaskDefinition', times: 3 });
    await assert.rejects(env.provider.createPod(resolved(pod({})), call), (err) => hasCode(err, 'VK_PROVIDER_UNAVAILABLE'));
  });

  test('access denied is reported as a permissions problem and not retried as throttling', async () => {
    env.server.inject({ ...FAULTS.accessDenied, operation: 'RunTask' });
    await assert.rejects(env.provider.createPod(resolved(pod({})), call), (err: Error) => {
      assert.ok(hasCode(err, 'VK_PROVIDER'), String(err));
      assert.match(err.message, /AccessDeniedException.*not authorized.*check the AWS credentials/);
      return true;
    });
  });

  test("the account's task quota answers TryLater", async () => {
    const quota = await startFargate({ server: { maxRunningTasks: 0 } });
    try {
      await assert.rejects(
        quota.provider.createPod(resolved(pod({})), call),
        (err: Error) => hasCode(err, 'VK_TRY_LATER') && /limit on the number of tasks/.test(err.message),
      );
    } finally {
      await quota.close();
    }
  });

  test('logs: the whole log, --tail, --since and -f (new lines only)', async () => {
    const p = pod({
      containers: [
        { name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'echo one; echo two; sleep 0.4; echo three; while true; do echo tick; sleep 0.2; done'] },
      ],
    });
    await env.provider.createPod(resolved(p), call);
    const name = p.metadata!.name!;
    const read = (options: Partial<Parameters<FargateProvider['getContainerLogs']>[3]> = {}) =>
      env.provider
        .getContainerLogs('ns', name, 'main', { follow: false, previous: false, timestamps: false, signal: call.signal, ...options })
        .then((s) => text(s));
    await waitFor('the third line', async () => (await read()).includes('three\n'), { timeoutMs: 10_000 });
    const all = await read();
    assert.ok(all.startsWith('one\ntwo\nthree\n'), all);
    assert.equal((await read({ tailLines: 1 })).split('\n').length, 2);
    assert.match(await read({ timestamps: true, tailLines: 1 }), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick\n$/);
    const since = await read({ sinceTime: new Date(Date.now() + 60_000) });
    assert.equal(since, '');
    const abort = new AbortController();
    const stream = await env.provider.getContainerLogs('ns', name, 'main', {
      follow: true,
      previous: false,
      timestamps: false,
      tailLines: 0,
      signal: abort.signal,
    });
    let followed = '';
    stream.on('data', (c: Buffer) => (followed += c.toString()));
    await waitFor('followed lines', () => followed.split('tick\n').length >= 3, { timeoutMs: 10_000 });
    assert.ok(!followed.includes('one'), 'follow with tail 0 sends only new lines');
    abort.abort();
    stream.destroy();
    await assert.rejects(read({ previous: true }), (err) => hasCode(err, 'VK_CONTAINER_STATE'));
    await assert.rejects(
      env.provider.getContainerLogs('ns', name, 'nope', { follow: false, previous: false, timestamps: false, signal: call.signal }),
      (err: Error) => hasCode(err, 'VK_NOT_FOUND') && /nope/.test(err.message),
    );
    await env.provider.deletePod(p, { ...call, reason: 'deleted' });
  });

  test('task events become pod Events once: pulls, a stop that failed the pod, a container that could not pull, restart back-off', async () => {
    const seen: PodEvent[] = [];
    env.provider.notifyPodEvents((event) => seen.push(event));
    const failing = pod({ containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.2; exit 1'] }] });
    const passing = pod({ containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 0.2'] }] });
    const unpullable = pod({ containers: [{ name: 'main', image: 'example.com/does-not-exist:1' }] });
    const crashing = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', 'exit 3'] }] });
    for (const p of [failing, passing, unpullable, crashing]) await env.provider.createPod(resolved(p), call);
    const of = (p: Pod) => seen.filter((e) => e.name === p.metadata!.name).map((e) => `${e.type} ${e.reason}${e.container ? ` ${e.container}` : ''}`);
    for (const p of [failing, passing, unpullable]) await until(p, 'finished', (phase) => phase === 'Failed' || phase === 'Succeeded');
    await waitFor('a back-off before the second restart', () => of(crashing).includes('Warning BackOff'), { timeoutMs: 15_000, intervalMs: 20 });
    // More describe rounds (every 50 ms) report nothing again.
    const rounds = env.server.calls('DescribeTasks').length;
    await waitFor('five more describe rounds', () => env.server.calls('DescribeTasks').length >= rounds + 5, { timeoutMs: 5_000, intervalMs: 20 });
    assert.deepEqual(of(failing), ['Normal Pulling', 'Normal Pulled', 'Warning EssentialContainerExited']);
    assert.match(seen.find((e) => e.name === failing.metadata!.name && e.type === 'Warning')!.message, /^task \S+ stopped: Essential container in task exited/);
    assert.deepEqual(of(passing), ['Normal Pulling', 'Normal Pulled'], 'a pod that completed has no Warning');
    // The pull failure is told once, on the container (the task's stoppedReason says the same).
    assert.deepEqual(of(unpullable), ['Normal Pulling', 'Normal Pulled', 'Warning Failed main']);
    assert.match(seen.find((e) => e.name === unpullable.metadata!.name && e.type === 'Warning')!.message, /^CannotPullContainerError/);
    const failed = seen.find((e) => e.name === failing.metadata!.name && e.type === 'Warning')!;
    assert.equal(failed.uid, failing.metadata!.uid);
    assert.ok(failed.firstTimestamp instanceof Date);
    for (const p of [failing, passing, unpullable]) await env.provider.deletePod(p, { ...call, reason: 'finished' });
    await env.provider.deletePod(crashing, { ...call, reason: 'deleted' });
  });

  test('an adopting process reports only what happens after it started', async () => {
    const p = pod({});
    await env.provider.createPod(resolved(p), call);
    await until(p, 'Running', (phase) => phase === 'Running');
    const again = await FargateProvider.open(testConfig(env.server), { nodeName: 'vk-fargate', nodeIP: '127.0.0.1', log: silentLogger });
    const seen: PodEvent[] = [];
    again.notifyPodEvents((event) => seen.push(event));
    try {
      await again.poll();
      assert.deepEqual(
        seen.filter((e) => e.name === p.metadata!.name),
        [],
        'the pull was reported by the run that started the task',
      );
    } finally {
      await again.close();
    }
    await env.provider.deletePod(p, { ...call, reason: 'deleted' });
  });

  test('tasks of this node survive a restart of the provider (adopted by their tags)', async () => {
    const p = pod({});
    await env.provider.createPod(resolved(p), call);
    await until(p, 'Running', (phase) => phase === 'Running');
    const again = await FargateProvider.open(testConfig(env.server), { nodeName: 'vk-fargate', nodeIP: '127.0.0.1', log: silentLogger });
    const other = await FargateProvider.open(testConfig(env.server), { nodeName: 'another-node', nodeIP: '127.0.0.1', log: silentLogger });
    try {
      const adopted = await again.getPod('ns', p.metadata!.name!, call);
      assert.equal(adopted?.metadata?.uid, p.metadata!.uid);
      assert.equal(adopted?.status?.phase, 'Running');
      assert.equal(await other.getPod('ns', p.metadata!.name!, call), undefined, "another node's provider leaves the task alone");
    } finally {
      await again.close();
      await other.close();
    }
    await env.provider.deletePod(p, { ...call, reason: 'deleted' });
  });
});

describe('fargate provider start-up', () => {
  test('invalid credentials are one line', async () => {
    const server = await AwsContractServer.start({ clusters: [CLUSTER] });
    try {
      useTestCredentials({ accessKeyId: 'AKIDWRONGWRONGWRONG1', secretAccessKey: 'nope' });
      await assert.rejects(FargateProvider.open(testConfig(server), { nodeName: 'n', nodeIP: '127.0.0.1', log: silentLogger }), (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^fargate: AWS credentials rejected \(ECS DescribeClusters in us-east-1: UnrecognizedClientException: /);
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      });
      useTestCredentials({ accessKeyId: 'AKIDFARGATECONTRACT1', secretAccessKey: 'a wrong secret' });
      await assert.rejects(FargateProvider.open(testConfig(server), { nodeName: 'n', nodeIP: '127.0.0.1', log: silentLogger }), /InvalidSignatureException/);
    } finally {
      useTestCredentials();
      await server.close();
    }
  });

  test('a missing cluster and a bad config field are one line each', async () => {
    useTestCredentials();
    const server = await AwsContractServer.start({ clusters: [CLUSTER] });
    try {
      await assert.rejects(
        FargateProvider.open(testConfig(server, { cluster: 'nope' }), { nodeName: 'n', nodeIP: '127.0.0.1', log: silentLogger }),
        /^ConfigError: fargate: cluster: ECS cluster nope not found or not ACTIVE in us-east-1 \(MISSING\)$/,
      );
      await assert.rejects(
        FargateProvider.open(testConfig(server, { subnets: ['net-1'] }), { nodeName: 'n', nodeIP: '127.0.0.1', log: silentLogger }),
        /^ConfigError: fargate provider config: subnets\[0\]: expected a subnet ID/,
      );
      await assert.rejects(
        FargateProvider.open(testConfig(server, { executionRoleArn: undefined }), { nodeName: 'n', nodeIP: '127.0.0.1', log: silentLogger }),
        /executionRoleArn: required for the awslogs log driver/,
      );
      assert.deepEqual(server.violations, []);
    } finally {
      await server.close();
    }
  });
});
