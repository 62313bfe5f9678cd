// The in-process Provider contract suite (Hono's shared router tests play this part for
// routers): every provider's unit tests run these cases against it, in seconds and without a
// control plane. The conformance suite (conformance/) checks the same providers end to end
// against a real cluster; this one pins down the interface's promises, one readable failure
// message per broken promise.
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasCode } from '../errors.ts';
import type { Pod } from '../kube/types.ts';
import { CAPABILITIES, podKey, providerCapabilities, type CallOptions, type Provider, type ResolvedPod } from './provider.ts';
import { cloneJson } from '../util/clone-json.ts';

export interface ContractSubject {
  /** Shown in the test names, e.g. 'mock' or 'remote (mock behind the SDK)'. */
  name: string;
  /** A fresh provider; `close` undoes whatever `make` set up. */
  make(): Promise<{ provider: Provider; close(): Promise<void> }>;
  /** A pod this provider can run (its image, its namespace); the suite sets name and uid. */
  pod(name: string, uid: string): Pod;
  /** How long a created pod may take to show up with a status (default 10 s). */
  timeoutMs?: number;
  /** Cases this provider cannot meet, with the reason (reported as skipped). */
  skip?: Partial<Record<ContractCaseName, string>>;
}

export class ContractViolation extends Error {
  constructor(subject: string, promise: string) {
    super(`${subject} breaks the Provider contract: ${promise}`);
    this.name = 'ContractViolation';
  }
}

interface CaseContext {
  provider: Provider;
  subject: ContractSubject;
  /** Fails the case with "<subject> breaks the Provider contract: <promise>" unless `ok`. */
  expect(ok: unknown, promise: string): void;
  pod(name: string, uid: string): Pod;
  create(pod: Pod): Promise<void>;
  call: CallOptions;
  /** Polls until `check` is truthy or the subject's timeout passes, then fails with `promise`. */
  eventually<T>(promise: string, check: () => Promise<T | undefined | false>): Promise<T>;
}

interface ContractCase {
  name: string;
  run(ctx: CaseContext): Promise<void>;
}

function resolved(pod: Pod): ResolvedPod {
  return { pod, volumes: new Map() };
}

function uidOf(pod: Pod | undefined): string | undefined {
  return pod?.metadata?.uid;
}

/** Deletes and swallows NotFound: cleanup between cases. */
async function remove(ctx: CaseContext, pod: Pod): Promise<void> {
  try {
    await ctx.provider.deletePod(pod, { ...ctx.call, reason: 'deleted' });
  } catch (err) {
    if (!hasCode(err, 'VK_NOT_FOUND')) throw err;
  }
}

const CASES = [
  {
    name: 'getPod, getPodStatus and listPods carry the pod with its UID',
    async run(ctx) {
      const pod = ctx.pod('contract-get', 'uid-get-1');
      await ctx.create(pod);
      const got = await ctx.eventually('getPod returns a pod it created', () => ctx.provider.getPod('contract', 'contract-get', ctx.call));
      ctx.expect(uidOf(got) === 'uid-get-1', `getPod must return metadata.uid (got ${JSON.stringify(uidOf(got))}, created uid-get-1)`);
      ctx.expect(
        got.metadata?.name === 'contract-get' && got.metadata?.namespace === 'contract',
        `getPod must return the pod's namespace and name (got ${podKey(got)})`,
      );
      const status = await ctx.eventually('getPodStatus returns a status for a pod it created', () =>
        ctx.provider.getPodStatus('contract', 'contract-get', ctx.call),
      );
      ctx.expect(typeof status.phase === 'string', 'getPodStatus must return a status with a phase');
      const listed = (await ctx.provider.listPods(ctx.call)).filter((p) => podKey(p) === 'contract/contract-get');
      ctx.expect(listed.length === 1, `listPods must hold the pod exactly once (found ${listed.length})`);
      ctx.expect(uidOf(listed[0]) === 'uid-get-1', `listPods must carry metadata.uid (got ${JSON.stringify(uidOf(listed[0]))})`);
      await remove(ctx, pod);
    },
  },
  {
    name: 'unknown pods read as absent and deleting them is NotFound',
    async run(ctx) {
      ctx.expect((await ctx.provider.getPod('contract', 'contract-none', ctx.call)) === undefined, 'getPod of an unknown pod must resolve to undefined');
      ctx.expect(
        (await ctx.provider.getPodStatus('contract', 'contract-none', ctx.call)) === undefined,
        'getPodStatus of an unknown pod must resolve to undefined',
      );
      let error: unknown;
      try {
        await ctx.provider.deletePod(ctx.pod('contract-none', 'uid-none'), { ...ctx.call, reason: 'deleted' });
      } catch (err) {
        error = err;
      }
      ctx.expect(error !== undefined, 'deletePod of an unknown pod must reject (it resolved)');
      ctx.expect(hasCode(error, 'VK_NOT_FOUND'), `deletePod of an unknown pod must reject with NotFoundError (VK_NOT_FOUND), not ${describe_(error)}`);
    },
  },
  {
    name: 'UID incarnations: a delete with another UID is NotFound and keeps the pod; a new UID under the same name is a new pod',
    async run(ctx) {
      const first = ctx.pod('contract-inc', 'uid-inc-1');
      await ctx.create(first);
      await ctx.eventually('the first incarnation is visible', () => ctx.provider.getPod('contract', 'contract-inc', ctx.call));
      let error: unknown;
      try {
        await ctx.provider.deletePod(ctx.pod('contract-inc', 'uid-inc-other'), { ...ctx.call, reason: 'deleted' });
      } catch (err) {
        error = err;
      }
      ctx.expect(hasCode(error, 'VK_NOT_FOUND'), `deletePod with a UID the provider does not run must reject with NotFoundError, not ${describe_(error)}`);
      ctx.expect(
        uidOf(await ctx.provider.getPod('contract', 'contract-inc', ctx.call)) === 'uid-inc-1',
        'deletePod with another UID must leave the running incarnation alone',
      );
      await ctx.provider.deletePod(first, { ...ctx.call, reason: 'deleted' });
      ctx.expect((await ctx.provider.getPod('contract', 'contract-inc', ctx.call)) === undefined, 'after deletePod resolves, getPod must not return the pod');
      const second = ctx.pod('contract-inc', 'uid-inc-2');
      await ctx.create(second);
      const got = await ctx.eventually('the second incarnation is visible', () => ctx.provider.getPod('contract', 'contract-inc', ctx.call));
      ctx.expect(uidOf(got) === 'uid-inc-2', `a pod re-created under the same name must have its new UID (got ${uidOf(got)})`);
      const copies = (await ctx.provider.listPods(ctx.call)).filter((p) => podKey(p) === 'contract/contract-inc');
      ctx.expect(copies.length === 1, `listPods must hold one incarnation per name (found ${copies.length})`);
      await remove(ctx, second);
    },
  },
  {
    name: 'createPod of a UID it already runs makes no second copy',
    async run(ctx) {
      const pod = ctx.pod('contract-twice', 'uid-twice');
      await ctx.create(pod);
      await ctx.provider.createPod(resolved(cloneJson(pod)), ctx.call).catch(() => {});
      const copies = (await ctx.provider.listPods(ctx.call)).filter((p) => podKey(p) === 'contract/contract-twice');
      ctx.expect(copies.length === 1, `a second createPod of the same UID must not make a second copy (found ${copies.length})`);
      await remove(ctx, pod);
    },
  },
  {
    name: 'deletePod with reason finished releases the pod',
    async run(ctx) {
      const pod = ctx.pod('contract-release', 'uid-release');
      await ctx.create(pod);
      await ctx.eventually('the pod is visible', () => ctx.provider.getPod('contract', 'contract-release', ctx.call));
      await ctx.provider.deletePod(pod, { ...ctx.call, reason: 'finished' });
      ctx.expect(
        (await ctx.provider.getPod('contract', 'contract-release', ctx.call)) === undefined,
        'after deletePod(reason finished) resolves, getPod must not return the pod',
      );
    },
  },
  {
    name: 'an aborted createPod rejects and leaves no pod behind',
    async run(ctx) {
      const pod = ctx.pod('contract-abort', 'uid-abort');
      const controller = new AbortController();
      controller.abort();
      let error: unknown;
      try {
        await ctx.provider.createPod(resolved(pod), { signal: controller.signal });
      } catch (err) {
        error = err;
      }
      ctx.expect(error !== undefined, 'createPod with an aborted signal must reject (it resolved)');
      ctx.expect(hasCode(error, 'VK_ABORTED'), `an aborted createPod must reject with the abort (AbortedError or AbortError), not ${describe_(error)}`);
      ctx.expect((await ctx.provider.getPod('contract', 'contract-abort', ctx.call)) === undefined, 'an aborted createPod must leave no pod behind');
    },
  },
  {
    name: 'notifyPods reports a created pod with its UID and status, never inside createPod',
    async run(ctx) {
      if (!ctx.provider.notifyPods) return;
      const seen: Pod[] = [];
      let inside = false;
      let calledInside = false;
      ctx.provider.notifyPods((p) => {
        if (inside) calledInside = true;
        if (podKey(p) === 'contract/contract-notify') seen.push(p);
      });
      const pod = ctx.pod('contract-notify', 'uid-notify');
      inside = true;
      const creating = ctx.create(pod);
      inside = false;
      await creating;
      const first = await ctx.eventually('a notification for the created pod', async () => seen[0]);
      ctx.expect(!calledInside, 'notifyPods listeners must not be called synchronously inside createPod');
      ctx.expect(uidOf(first) === 'uid-notify', `notifications must carry metadata.uid (got ${JSON.stringify(uidOf(first))})`);
      ctx.expect(typeof first.status?.phase === 'string', 'notifications must carry the pod status with a phase');
      await remove(ctx, pod);
    },
  },
  {
    name: 'capabilities are the optional methods it implements, and each answers',
    async run(ctx) {
      const { provider } = ctx;
      const declared = providerCapabilities(provider);
      for (const name of declared) ctx.expect((CAPABILITIES as readonly string[]).includes(name), `capability ${name} is not one of the Provider interface's`);
      if (provider.nodeConfig) ctx.expect(typeof provider.nodeConfig().capacity === 'object', 'nodeConfig() must return a capacity');
      if (provider.ping) await provider.ping(AbortSignal.timeout(ctx.subject.timeoutMs ?? 10_000));
      if (provider.getStats) ctx.expect(Array.isArray(await provider.getStats()), 'getStats() must resolve to an array');
      if (provider.getContainerLogs) {
        let error: unknown;
        try {
          const stream = await provider.getContainerLogs('contract', 'contract-none', 'app', {
            follow: false,
            previous: false,
            timestamps: false,
            signal: ctx.call.signal,
          });
          stream.destroy();
        } catch (err) {
          error = err;
        }
        ctx.expect(hasCode(error, 'VK_NOT_FOUND'), `getContainerLogs of an unknown pod must reject with NotFoundError, not ${describe_(error)}`);
      }
      ctx.expect(typeof provider.name === 'string' && provider.name.length > 0, 'a provider must have a name');
    },
  },
] as const satisfies readonly ContractCase[];

export type ContractCaseName = (typeof CASES)[number]['name'];

function describe_(err: unknown): string {
  if (err === undefined) return 'no error';
  if (err instanceof Error) return `${err.name}${'code' in err ? ` (${String(err.code)})` : ''}: ${err.message}`;
  return String(err);
}

/** Runs one case; resolves when the contract holds, rejects with a ContractViolation naming the broken promise. */
export async function checkCase(subject: ContractSubject, provider: Provider, name: ContractCaseName): Promise<void> {
  const found = CASES.find((c) => c.name === name);
  if (!found) throw new Error(`no contract case "${name}"`);
  const timeoutMs = subject.timeoutMs ?? 10_000;
  const ctx: CaseContext = {
    provider,
    subject,
    call: { signal: AbortSignal.timeout(timeoutMs * 3) },
    expect(ok, promise) {
      if (!ok) throw new ContractViolation(subject.name, promise);
    },
    pod: (podName, uid) => {
      const pod = subject.pod(podName, uid);
      pod.metadata = { ...pod.metadata, name: podName, namespace: 'contract', uid };
      return pod;
    },
    create: (pod) => provider.createPod(resolved(pod), ctx.call),
    async eventually(promise, check) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = await check();
        if (value !== undefined && value !== false) return value;
        if (Date.now() > deadline) throw new ContractViolation(subject.name, `${promise} (not within ${timeoutMs} ms)`);
        await sleep(5);
      }
    },
  };
  await found.run(ctx);
}

export const CONTRACT_CASES: readonly ContractCaseName[] = CASES.map((c) => c.name);

/** Registers the contract's cases as node:test tests for the subject (skips reported with their reasons). */
export function runProviderContract(subject: ContractSubject): void {
  describe(`Provider contract: ${subject.name}`, () => {
    for (const name of CONTRACT_CASES) {
      const reason = subject.skip?.[name];
      test(name, { skip: reason ?? false }, async () => {
        const { provider, close } = await subject.make();
        try {
          await checkCase(subject, provider, name);
        } finally {
          await close();
        }
      });
    }
  });
}
