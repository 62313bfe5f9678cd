// The conformance cases. Each runs in the suite's namespace on the suite's virtual node, creates
// its own pods (named after the case), and throws with a message saying what went wrong.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { isStatus, NotFoundError, VkError } from '../src/errors.ts';
import type { Node, Pod } from '../src/kube/types.ts';
import { milliValue, parseQuantity } from '../src/kube/quantity.ts';
import { waitFor } from '../test/harness/wait.ts';
import type { CaseContext, ConformanceCase } from './support.ts';

const SLEEP = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'];

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

interface PodOptions {
  annotations?: Record<string, string>;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  command?: string[];
  container?: Record<string, unknown>;
  spec?: Record<string, unknown>;
}

function manifest(ctx: CaseContext, name: string, options: PodOptions = {}): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ctx.namespace, labels: { 'conformance.vk.io/case': name }, annotations: options.annotations ?? {} },
    spec: {
      nodeName: ctx.nodeName,
      tolerations: [{ operator: 'Exists' }],
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 5,
      restartPolicy: options.restartPolicy ?? 'Always',
      containers: [{ name: 'main', image: ctx.profile.image, command: options.command ?? SLEEP, ...options.container }],
      ...options.spec,
    },
  } as Pod;
}

const podsPath = (ctx: CaseContext) => `/api/v1/namespaces/${ctx.namespace}/pods`;

async function createPod(ctx: CaseContext, pod: Pod): Promise<Pod> {
  return ctx.client.create<Pod>(podsPath(ctx), pod);
}

async function apiPod(ctx: CaseContext, name: string): Promise<Pod | undefined> {
  try {
    return await ctx.client.get<Pod>(`${podsPath(ctx)}/${name}`);
  } catch (err) {
    if (isStatus(err, 404)) return undefined;
    throw err;
  }
}

async function deletePod(ctx: CaseContext, name: string): Promise<void> {
  try {
    await ctx.client.delete(`${podsPath(ctx)}/${name}`);
  } catch (err) {
    if (!isStatus(err, 404)) throw err;
  }
}

function describe(pod: Pod | undefined): string {
  if (!pod) return 'absent';
  const c = pod.status?.containerStatuses?.[0];
  const state = c?.state?.waiting
    ? `waiting ${c.state.waiting.reason ?? ''}`
    : c?.state?.terminated
      ? `terminated ${c.state.terminated.reason ?? ''} exit ${c.state.terminated.exitCode}`
      : c?.state?.running
        ? 'running'
        : 'no container status';
  return `phase ${pod.status?.phase ?? '?'}, ${state}, restarts ${c?.restartCount ?? 0}`;
}

/** Waits until the API pod satisfies `ok`; the timeout message shows the pod's last state. */
async function waitPod(ctx: CaseContext, name: string, what: string, ok: (pod: Pod) => boolean, timeoutMs = 30_000): Promise<Pod> {
  let last: Pod | undefined;
  try {
    return await waitFor(
      `pod ${name} ${what}`,
      async () => {
        last = await apiPod(ctx, name);
        return last && ok(last) ? last : undefined;
      },
      { timeoutMs, signal: ctx.signal },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen: ${describe(last)}`, { cause: err });
  }
}

const isRunning = (pod: Pod) => pod.status?.phase === 'Running' && pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

async function runningPod(ctx: CaseContext, name: string, options: PodOptions = {}): Promise<Pod> {
  await createPod(ctx, manifest(ctx, name, options));
  return waitPod(ctx, name, 'Running and Ready', isRunning);
}

async function nodeReady(ctx: CaseContext): Promise<{ status?: string; reason?: string; message?: string } | undefined> {
  const node = await ctx.client.get<Node>(`/api/v1/nodes/${ctx.nodeName}`);
  return node.status?.conditions?.find((c) => c.type === 'Ready');
}

/** Runs kubectl in the background until `until` sees what it waits for in its output; then kills it. */
async function watchKubectl(ctx: CaseContext, args: string[], until: (stdout: string) => boolean, timeoutMs = 20_000, input?: string): Promise<string> {
  const child = spawn(ctx.kubectlBinary, ['-n', ctx.namespace, ...args], {
    env: { ...process.env, KUBECONFIG: ctx.kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.on('error', () => {});
  let exited = false;
  child.on('exit', () => (exited = true));
  try {
    if (input !== undefined) child.stdin.write(input);
    await waitFor(
      `kubectl ${args.join(' ')} to print the expected output`,
      () => {
        if (until(stdout)) return true;
        if (exited) throw new Error(`kubectl exited early: ${stderr.trim() || stdout.trim()}`);
        return false;
      },
      { timeoutMs, signal: ctx.signal },
    );
    return stdout;
  } catch (err) {
    throw new Error(`${(err as Error).message}; stdout so far: ${JSON.stringify(stdout.slice(-300))}; stderr: ${JSON.stringify(stderr.slice(-300))}`, {
      cause: err,
    });
  } finally {
    child.kill();
  }
}

function httpGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no HTTP answer within 10 s')));
    req.on('error', reject);
  });
}

export const CASES: ConformanceCase[] = [
  {
    name: 'ping',
    tier: 'core',
    description: 'the provider answers its health check and the node is Ready with the provider taint',
    async run(ctx) {
      if (ctx.provider.ping) await ctx.provider.ping(AbortSignal.timeout(5_000));
      const ready = await waitFor('the node Ready', async () => ((await nodeReady(ctx))?.status === 'True' ? true : undefined), {
        timeoutMs: 30_000,
        signal: ctx.signal,
      });
      check(ready, 'node not Ready');
      const node = await ctx.client.get<Node>(`/api/v1/nodes/${ctx.nodeName}`);
      const taint = node.spec?.taints?.find((t) => t.key === 'virtual-kubelet.io/provider');
      check(
        taint?.value === ctx.provider.name,
        `node taint virtual-kubelet.io/provider is ${JSON.stringify(taint?.value)}, expected ${JSON.stringify(ctx.provider.name)}`,
      );
      const pods = ctx.provider.nodeConfig?.().capacity.pods;
      const same = (a: string | undefined, b: string) => a !== undefined && milliValue(parseQuantity(a)) === milliValue(parseQuantity(b));
      if (pods !== undefined)
        check(same(node.status?.capacity?.pods, pods), `node capacity pods is ${node.status?.capacity?.pods}, the provider's nodeConfig says ${pods}`);
    },
  },
  {
    name: 'create-delete',
    tier: 'core',
    description: 'a pod runs, is deleted from the provider when deleted in the API, and a new pod of the same name is a new incarnation',
    async run(ctx) {
      const first = await runningPod(ctx, 'create-delete');
      check(first.status?.podIP, 'the Running pod has no podIP');
      const inProvider = await ctx.provider.getPod(ctx.namespace, 'create-delete', { signal: ctx.signal });
      check(
        inProvider?.metadata?.uid === first.metadata?.uid,
        `provider getPod returned uid ${inProvider?.metadata?.uid}, the API pod has ${first.metadata?.uid}`,
      );
      await deletePod(ctx, 'create-delete');
      await waitFor('the pod to be gone from the API', async () => (await apiPod(ctx, 'create-delete')) === undefined, {
        timeoutMs: 30_000,
        signal: ctx.signal,
      });
      await waitFor(
        'the pod to be gone from the provider',
        async () => (await ctx.provider.getPod(ctx.namespace, 'create-delete', { signal: ctx.signal })) === undefined,
        { timeoutMs: 15_000, signal: ctx.signal },
      );
      const second = await runningPod(ctx, 'create-delete');
      check(second.metadata?.uid !== first.metadata?.uid, 'the re-created pod has the old UID');
      const copies = (await ctx.provider.listPods({ signal: ctx.signal })).filter(
        (p) => p.metadata?.namespace === ctx.namespace && p.metadata?.name === 'create-delete',
      );
      check(
        copies.length === 1 && copies[0]?.metadata?.uid === second.metadata?.uid,
        `the provider holds ${copies.length} copies (uids ${copies.map((p) => p.metadata?.uid).join(', ')}), expected only ${second.metadata?.uid}`,
      );
      await deletePod(ctx, 'create-delete');
    },
  },
  {
    name: 'list-get-status',
    tier: 'core',
    description: 'listPods, getPod and getPodStatus agree with each other and with the API',
    async run(ctx) {
      const pods = await Promise.all(['list-a', 'list-b'].map((name) => runningPod(ctx, name)));
      const listed = (await ctx.provider.listPods({ signal: ctx.signal })).filter(
        (p) => p.metadata?.namespace === ctx.namespace && p.metadata?.name?.startsWith('list-'),
      );
      check(listed.length === 2, `listPods has ${listed.length} of the 2 pods`);
      for (const pod of pods) {
        const name = pod.metadata?.name ?? '';
        const entry = listed.find((p) => p.metadata?.name === name);
        check(entry?.metadata?.uid === pod.metadata?.uid, `listPods has ${name} with uid ${entry?.metadata?.uid}, the API ${pod.metadata?.uid}`);
        check(entry?.status?.phase === 'Running', `listPods shows ${name} in phase ${entry?.status?.phase}`);
        const status = await ctx.provider.getPodStatus(ctx.namespace, name, { signal: ctx.signal });
        check(status?.phase === 'Running', `getPodStatus(${name}) phase is ${status?.phase}`);
        check((await ctx.provider.getPod(ctx.namespace, name, { signal: ctx.signal }))?.status?.phase === 'Running', `getPod(${name}) is not Running`);
      }
      await Promise.all(['list-a', 'list-b'].map((name) => deletePod(ctx, name)));
    },
  },
  {
    name: 'status-transitions',
    tier: 'core',
    description: 'a pod goes Pending → Running → Succeeded, never backwards, and ends with exit code 0 (Completed)',
    async run(ctx) {
      const name = 'transitions';
      await createPod(
        ctx,
        manifest(ctx, name, {
          restartPolicy: 'Never',
          command: ['sh', '-c', 'sleep 2'],
          annotations: { 'mock.vk.io/running-delay-ms': '1500', 'mock.vk.io/complete-after-ms': '2000' },
        }),
      );
      const order = ['Pending', 'Running', 'Succeeded'];
      const seen: string[] = [];
      const done = await waitPod(
        ctx,
        name,
        'Succeeded',
        (pod) => {
          const phase = pod.status?.phase ?? 'Pending';
          if (seen.at(-1) !== phase) seen.push(phase);
          return phase === 'Succeeded' || phase === 'Failed';
        },
        60_000,
      );
      check(
        seen.every((phase, i) => order.includes(phase) && (i === 0 || order.indexOf(phase) > order.indexOf(seen[i - 1]!))),
        `phases went ${seen.join(' → ')}`,
      );
      check(seen.includes('Running'), `the pod was never seen Running (phases: ${seen.join(' → ')})`);
      const terminated = done.status?.containerStatuses?.[0]?.state?.terminated;
      check(done.status?.phase === 'Succeeded' && terminated?.exitCode === 0 && terminated.reason === 'Completed', `ended ${describe(done)}`);
      check(done.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'False', 'a finished pod is still Ready');
    },
  },
  {
    name: 'notify-stream',
    tier: 'core',
    description: 'the provider pushes status changes (notifyPods) without being polled',
    capabilities: ['notifyPods'],
    async run(ctx) {
      const seen: Pod[] = [];
      ctx.provider.notifyPods!((pod) => {
        if (pod.metadata?.namespace === ctx.namespace && pod.metadata.name === 'pushed') seen.push(pod);
      });
      const created = await createPod(ctx, manifest(ctx, 'pushed', { annotations: { 'mock.vk.io/running-delay-ms': '1000' } }));
      await waitFor(
        'a pushed notification with phase Running',
        () => seen.some((p) => p.status?.phase === 'Running' && p.metadata?.uid === created.metadata?.uid),
        { timeoutMs: 20_000, signal: ctx.signal },
      );
      await waitPod(ctx, 'pushed', 'Running', isRunning);
      await deletePod(ctx, 'pushed');
    },
  },
  {
    name: 'error-paths',
    tier: 'core',
    description: 'unknown pods read as absent, deleting one is NotFound, and exec/logs into an unknown container fail clearly',
    async run(ctx) {
      check((await ctx.provider.getPod(ctx.namespace, 'does-not-exist', { signal: ctx.signal })) === undefined, 'getPod of an unknown pod is not undefined');
      check(
        (await ctx.provider.getPodStatus(ctx.namespace, 'does-not-exist', { signal: ctx.signal })) === undefined,
        'getPodStatus of an unknown pod is not undefined',
      );
      try {
        await ctx.provider.deletePod(
          { metadata: { namespace: ctx.namespace, name: 'does-not-exist', uid: '00000000-0000-0000-0000-000000000000' } },
          { signal: ctx.signal, reason: 'deleted' },
        );
        throw new Error('deletePod of an unknown pod resolved; expected a NotFoundError');
      } catch (err) {
        check(
          err instanceof NotFoundError || (err instanceof VkError && err.code === 'VK_NOT_FOUND'),
          `deletePod of an unknown pod failed with ${(err as Error).message}, not NotFound`,
        );
      }
      if (ctx.provider.runInContainer || ctx.provider.getContainerLogs) {
        await runningPod(ctx, 'errors');
        if (ctx.provider.runInContainer) {
          const exec = await ctx.kubectl(['exec', 'errors', '-c', 'nope', '--', 'true']);
          check(exec.code !== 0 && /nope/.test(exec.stderr), `kubectl exec into an unknown container: exit ${exec.code}, ${exec.stderr.trim()}`);
        }
        if (ctx.provider.getContainerLogs) {
          const logs = await ctx.kubectl(['logs', 'errors', '-c', 'nope']);
          check(logs.code !== 0 && /nope/.test(logs.stderr), `kubectl logs of an unknown container: exit ${logs.code}, ${logs.stderr.trim()}`);
        }
        await deletePod(ctx, 'errors');
      }
    },
  },
  {
    name: 'env-volume-delivery',
    tier: 'lifecycle',
    description: 'resolved env (ConfigMap, Secret, fieldRef, expansion, envFrom) and volume files (content and mode) reach the backend',
    needs: ['inspect'],
    async run(ctx) {
      const ns = ctx.namespace;
      await ctx.client.create(`/api/v1/namespaces/${ns}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'settings' },
        data: { color: 'blue', 'file.txt': 'hello file\n' },
      });
      await ctx.client.create(`/api/v1/namespaces/${ns}/secrets`, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds' },
        stringData: { password: 's3cr3t' },
      });
      await runningPod(ctx, 'delivery', {
        container: {
          envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }],
          env: [
            { name: 'COLOR', valueFrom: { configMapKeyRef: { name: 'settings', key: 'color' } } },
            { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
            { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'GREETING', value: 'hello $(COLOR)' },
          ],
          volumeMounts: [
            { name: 'config', mountPath: '/etc/config' },
            { name: 'secret', mountPath: '/etc/secret' },
            { name: 'scratch', mountPath: '/scratch' },
          ],
        },
        spec: {
          volumes: [
            { name: 'config', configMap: { name: 'settings', items: [{ key: 'file.txt', path: 'nested/file.txt', mode: 0o640 }] } },
            { name: 'secret', secret: { secretName: 'creds', defaultMode: 0o400 } },
            { name: 'scratch', emptyDir: {} },
          ],
        },
      });
      const received = await ctx.inspect!(ns, 'delivery');
      check(received, 'the backend does not show the pod it received');
      const env = Object.fromEntries((received.pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
      for (const [key, value] of Object.entries({ COLOR: 'blue', PASSWORD: 's3cr3t', POD_NAME: 'delivery', GREETING: 'hello blue', CFG_color: 'blue' })) {
        check(env[key] === value, `env ${key} is ${JSON.stringify(env[key])}, expected ${JSON.stringify(value)}`);
      }
      const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);
      const config = received.volumes.get('config');
      check(config?.type === 'files', `volume config is ${config?.type ?? 'missing'}, expected files`);
      const file = config.files.find((f) => f.path === 'nested/file.txt');
      check(
        text(file?.content) === 'hello file\n' && file?.mode === 0o640,
        `config nested/file.txt arrived as ${JSON.stringify(text(file?.content))} mode ${file?.mode?.toString(8)}`,
      );
      const secret = received.volumes.get('secret');
      check(secret?.type === 'files', `volume secret is ${secret?.type ?? 'missing'}, expected files`);
      const password = secret.files.find((f) => f.path === 'password');
      check(
        text(password?.content) === 's3cr3t' && password?.mode === 0o400,
        `secret password arrived as ${JSON.stringify(text(password?.content))} mode ${password?.mode?.toString(8)}`,
      );
      check(received.volumes.get('scratch')?.type === 'emptyDir', 'volume scratch did not arrive as an emptyDir');
      if (ctx.provider.runInContainer) {
        const printed = await ctx.kubectl(['exec', 'delivery', '--', 'printenv', 'COLOR']);
        check(
          printed.stdout === 'blue\n',
          `printenv COLOR in the container printed ${JSON.stringify(printed.stdout)} (exit ${printed.code}: ${printed.stderr.trim()})`,
        );
      }
      await deletePod(ctx, 'delivery');
    },
  },
  {
    name: 'update',
    tier: 'lifecycle',
    description: 'an image change on a running pod reaches the provider (updatePod) and the pod keeps running with the new image',
    async run(ctx) {
      const before = await runningPod(ctx, 'updated');
      const image = ctx.profile.updateImage;
      await ctx.client.patch(`${podsPath(ctx)}/updated`, { spec: { containers: [{ name: 'main', image }] } }, 'application/strategic-merge-patch+json');
      await waitFor(
        'the provider to run the new image',
        async () => (await ctx.provider.getPod(ctx.namespace, 'updated', { signal: ctx.signal }))?.spec?.containers[0]?.image === image,
        { timeoutMs: 30_000, signal: ctx.signal },
      );
      const after = await waitPod(
        ctx,
        'updated',
        'Running with the new image',
        (p) => isRunning(p) && p.status?.containerStatuses?.[0]?.image === image,
        60_000,
      );
      check(after.metadata?.uid === before.metadata?.uid, 'the pod was re-created instead of updated');
      const copies = (await ctx.provider.listPods({ signal: ctx.signal })).filter(
        (p) => p.metadata?.namespace === ctx.namespace && p.metadata.name === 'updated',
      );
      check(copies.length === 1, `the provider holds ${copies.length} copies after the update`);
      await deletePod(ctx, 'updated');
    },
  },
  {
    name: 'restart-policy',
    tier: 'lifecycle',
    description:
      'exits are handled per restartPolicy: Never → Failed (exit code, reason Error); OnFailure restarts failures and completes successes; Always restarts',
    async run(ctx) {
      const exiting = (code: number) => ({
        command: ['sh', '-c', `sleep 1; exit ${code}`],
        annotations: { 'mock.vk.io/complete-after-ms': '1000', 'mock.vk.io/exit-code': String(code) },
      });
      await Promise.all([
        createPod(ctx, manifest(ctx, 'never-fails', { restartPolicy: 'Never', ...exiting(3) })),
        createPod(ctx, manifest(ctx, 'onfailure-fails', { restartPolicy: 'OnFailure', ...exiting(3) })),
        createPod(ctx, manifest(ctx, 'onfailure-succeeds', { restartPolicy: 'OnFailure', ...exiting(0) })),
        createPod(ctx, manifest(ctx, 'always-restarts', { restartPolicy: 'Always', ...exiting(0) })),
      ]);
      const failed = await waitPod(ctx, 'never-fails', 'Failed', (p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded');
      const terminated = failed.status?.containerStatuses?.[0]?.state?.terminated;
      check(
        failed.status?.phase === 'Failed' && terminated?.exitCode === 3 && terminated.reason === 'Error',
        `restartPolicy Never, exit 3: ${describe(failed)}`,
      );
      const restarted = (p: Pod) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1;
      const onFailure = await waitPod(ctx, 'onfailure-fails', 'restarted', (p) => restarted(p) || p.status?.phase === 'Failed');
      check(
        onFailure.status?.phase !== 'Failed' && (onFailure.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode ?? 3) === 3,
        `restartPolicy OnFailure, exit 3: ${describe(onFailure)}`,
      );
      const succeeded = await waitPod(
        ctx,
        'onfailure-succeeds',
        'Succeeded',
        (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || restarted(p),
      );
      check(succeeded.status?.phase === 'Succeeded', `restartPolicy OnFailure, exit 0: ${describe(succeeded)}`);
      const always = await waitPod(ctx, 'always-restarts', 'restarted', (p) => restarted(p) || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed');
      check(always.status?.phase !== 'Succeeded' && always.status?.phase !== 'Failed', `restartPolicy Always, exit 0: ${describe(always)}`);
      await Promise.all(['never-fails', 'onfailure-fails', 'onfailure-succeeds', 'always-restarts'].map((name) => deletePod(ctx, name)));
    },
  },
  {
    name: 'create-failure',
    tier: 'lifecycle',
    description: "a createPod failure keeps the pod Pending with reason ProviderCreateFailed and the provider's message, and the retry succeeds once it clears",
    needs: ['simulated'],
    async run(ctx) {
      await createPod(ctx, manifest(ctx, 'fails-to-create', { annotations: { 'mock.vk.io/fail-create': 'conformance: injected create failure' } }));
      const pending = await waitPod(
        ctx,
        'fails-to-create',
        'waiting with ProviderCreateFailed',
        (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ProviderCreateFailed',
      );
      check(pending.status?.phase === 'Pending', `phase is ${pending.status?.phase}`);
      check(
        /conformance: injected create failure/.test(pending.status?.containerStatuses?.[0]?.state?.waiting?.message ?? ''),
        `the waiting message does not carry the provider's: ${pending.status?.containerStatuses?.[0]?.state?.waiting?.message}`,
      );
      await ctx.client.patch(`${podsPath(ctx)}/fails-to-create`, { metadata: { annotations: { 'mock.vk.io/fail-create': null } } });
      await waitPod(ctx, 'fails-to-create', 'Running after the failure cleared', isRunning, 60_000);
      await deletePod(ctx, 'fails-to-create');
    },
  },
  {
    name: 'deletion-while-creating',
    tier: 'lifecycle',
    description: 'a pod deleted while createPod is still in flight is removed from the API and does not stay behind in the provider',
    async run(ctx) {
      const name = 'deleted-early';
      await createPod(ctx, manifest(ctx, name, { annotations: { 'mock.vk.io/create-delay-ms': '3000', 'mock.vk.io/running-delay-ms': '3000' } }));
      await waitFor(
        'the provider to start creating the pod',
        async () => (await ctx.provider.getPod(ctx.namespace, name, { signal: ctx.signal })) !== undefined,
        { timeoutMs: 15_000, signal: ctx.signal },
      );
      await deletePod(ctx, name);
      await waitFor('the pod to be gone from the API', async () => (await apiPod(ctx, name)) === undefined, { timeoutMs: 45_000, signal: ctx.signal });
      await waitFor(
        'the pod to be gone from the provider',
        async () => !(await ctx.provider.listPods({ signal: ctx.signal })).some((p) => p.metadata?.namespace === ctx.namespace && p.metadata.name === name),
        { timeoutMs: 15_000, signal: ctx.signal },
      );
    },
  },
  {
    name: 'logs',
    tier: 'capability',
    description: "kubectl logs shows the container's output, with --tail and -f",
    capabilities: ['getContainerLogs'],
    async run(ctx) {
      const line = 'conformance log line';
      await runningPod(ctx, 'logger', {
        command: ['sh', '-c', `echo ${line}; while true; do echo tick; sleep 1; done`],
        annotations: { 'mock.vk.io/log-lines': line },
      });
      await waitFor(
        'kubectl logs to show the line',
        async () => {
          const logs = await ctx.kubectl(['logs', 'logger']);
          if (logs.code !== 0) throw new Error(`kubectl logs exited ${logs.code}: ${logs.stderr.trim()}`);
          return logs.stdout.includes(line);
        },
        { timeoutMs: 30_000, signal: ctx.signal },
      );
      const tail = await ctx.kubectl(['logs', 'logger', '--tail=1']);
      check(
        tail.code === 0 && tail.stdout.trimEnd().split('\n').length === 1,
        `kubectl logs --tail=1 printed ${JSON.stringify(tail.stdout)} (exit ${tail.code}: ${tail.stderr.trim()})`,
      );
      await watchKubectl(ctx, ['logs', '-f', '--tail=1', 'logger'], (out) => out.trimEnd().split('\n').length >= 2);
      await deletePod(ctx, 'logger');
    },
  },
  {
    name: 'exec',
    tier: 'capability',
    description: 'kubectl exec returns stdout, stderr and the exit code, and pipes stdin',
    capabilities: ['runInContainer'],
    async run(ctx) {
      await runningPod(ctx, 'exec-target');
      const failing = await ctx.kubectl(['exec', 'exec-target', '--', 'sh', '-c', 'echo hi; exit 3']);
      check(
        failing.stdout === 'hi\n' && failing.code === 3,
        `sh -c 'echo hi; exit 3': stdout ${JSON.stringify(failing.stdout)}, exit ${failing.code} (${failing.stderr.trim()})`,
      );
      const ok = await ctx.kubectl(['exec', 'exec-target', '--', 'sh', '-c', 'echo oops >&2']);
      check(ok.code === 0 && ok.stderr === 'oops\n', `sh -c 'echo oops >&2': stderr ${JSON.stringify(ok.stderr)}, exit ${ok.code}`);
      const input = 'conformance stdin\n'.repeat(500);
      const cat = await ctx.kubectl(['exec', '-i', 'exec-target', '--', 'cat'], input);
      check(
        cat.code === 0 && cat.stdout === input,
        `exec -i cat returned ${cat.stdout.length} of ${input.length} bytes (exit ${cat.code}: ${cat.stderr.trim()})`,
      );
      await deletePod(ctx, 'exec-target');
    },
  },
  {
    name: 'attach',
    tier: 'capability',
    description: 'kubectl attach -i connects to the main process: what is typed comes back',
    capabilities: ['attachToContainer'],
    async run(ctx) {
      await runningPod(ctx, 'attach-target', { command: ['cat'], container: { stdin: true } });
      await watchKubectl(ctx, ['attach', '-i', 'attach-target', '-c', 'main'], (out) => out.includes('attached input'), 20_000, 'attached input\n');
      await deletePod(ctx, 'attach-target');
    },
  },
  {
    name: 'port-forward',
    tier: 'capability',
    description: 'kubectl port-forward carries an HTTP request to port 80 of the pod and its answer back',
    capabilities: ['portForward'],
    async run(ctx) {
      await runningPod(ctx, 'web', { command: ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && httpd -f -p 80 -h /www'] });
      const child = spawn(ctx.kubectlBinary, ['-n', ctx.namespace, 'port-forward', 'pod/web', ':80'], { env: { ...process.env, KUBECONFIG: ctx.kubeconfig } });
      try {
        const port = await new Promise<number>((resolve, reject) => {
          createInterface({ input: child.stdout }).on('line', (l) => {
            const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 80/.exec(l);
            if (m) resolve(Number(m[1]));
          });
          let stderr = '';
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          child.on('exit', (code) => reject(new Error(`kubectl port-forward exited ${code}: ${stderr.trim()}`)));
          ctx.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        });
        for (let i = 0; i < 2; i++) {
          const answer = await httpGet(port);
          check(answer.status === 200, `HTTP GET through the forward answered ${answer.status}: ${answer.body.slice(0, 200)}`);
        }
      } finally {
        child.kill();
      }
      await deletePod(ctx, 'web');
    },
  },
  {
    name: 'stats',
    tier: 'capability',
    description: 'getStats reports running pods with their containers',
    capabilities: ['getStats'],
    async run(ctx) {
      const pod = await runningPod(ctx, 'measured');
      const stats = await waitFor('stats for the pod', async () => (await ctx.provider.getStats!()).find((s) => s.uid === pod.metadata?.uid), {
        timeoutMs: 15_000,
        signal: ctx.signal,
      });
      check(stats.namespace === ctx.namespace && stats.name === 'measured', `stats name ${stats.namespace}/${stats.name}`);
      check(
        stats.containers.some((c) => c.name === 'main'),
        `stats containers: ${stats.containers.map((c) => c.name).join(', ')}`,
      );
      await deletePod(ctx, 'measured');
    },
  },
  {
    name: 'provider-restart',
    tier: 'resilience',
    description:
      'while the backend is down the node is NotReady (ProviderUnhealthy); once it is back, pods keep their UIDs with no duplicates, and changes made meanwhile reach the API',
    needs: ['restart'],
    async run(ctx) {
      const kept = await runningPod(ctx, 'survivor');
      await runningPod(ctx, 'finishes-while-down', {
        restartPolicy: 'Never',
        command: ['sh', '-c', 'sleep 4'],
        annotations: { 'mock.vk.io/complete-after-ms': '4000' },
      });
      const downAt = Date.now();
      await ctx.restart!.stop();
      if (ctx.provider.ping) {
        const ready = await waitFor(
          'the node to turn NotReady',
          async () => {
            const condition = await nodeReady(ctx);
            return condition?.status === 'False' ? condition : undefined;
          },
          { timeoutMs: 30_000, signal: ctx.signal },
        );
        check(ready.reason === 'ProviderUnhealthy', `NotReady with reason ${ready.reason}, expected ProviderUnhealthy`);
        check((ready.message ?? '').length > 0, 'NotReady without a message');
      }
      // Stay down until the second pod has finished in the backend.
      await waitFor("the second pod's run to be over", () => Date.now() - downAt > 5_000, { timeoutMs: 10_000, signal: ctx.signal });
      await ctx.restart!.start();
      await waitFor('the node to be Ready again', async () => (await nodeReady(ctx))?.status === 'True', { timeoutMs: 30_000, signal: ctx.signal });
      const after = await waitPod(ctx, 'survivor', 'Running', isRunning);
      check(after.metadata?.uid === kept.metadata?.uid, 'the surviving pod changed UID');
      const copies = (await ctx.provider.listPods({ signal: ctx.signal })).filter(
        (p) => p.metadata?.namespace === ctx.namespace && p.metadata.name === 'survivor',
      );
      check(
        copies.length === 1 && copies[0]?.metadata?.uid === kept.metadata?.uid,
        `the provider holds ${copies.length} copies of the surviving pod (uids ${copies.map((p) => p.metadata?.uid).join(', ')})`,
      );
      await waitPod(ctx, 'finishes-while-down', 'Succeeded (it finished while the provider was down)', (p) => p.status?.phase === 'Succeeded', 30_000);
      await runningPod(ctx, 'created-after-restart');
      await Promise.all(['survivor', 'finishes-while-down', 'created-after-restart'].map((name) => deletePod(ctx, name)));
    },
  },
];
