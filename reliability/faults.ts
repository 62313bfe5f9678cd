// The fault injector: one fault at a time, its kind and its size drawn from the run's seeded
// random source (the kinds in a shuffled round so each one comes up), each followed by the
// measurement of how long the node takes to converge again.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Outage } from './checker.ts';
import type { ApiserverRestart, ChaosEnvironment } from './environment.ts';

export const FAULT_KINDS = [
  'vk-kill',
  'apiserver-kill',
  'watch-drop',
  'connection-reset',
  'api-stall',
  'provider-fail',
  'provider-hang',
  'clock-jump',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * The kinds a provider can take. The mock's failures, hangs and clock come from its faults file;
 * the sandbox has no such hook (a failure or hang would have to be faked around it), so its runs
 * leave those three out.
 */
export function faultKindsFor(provider: 'mock' | 'sandbox'): readonly FaultKind[] {
  return provider === 'mock' ? FAULT_KINDS : FAULT_KINDS.filter((k) => k !== 'provider-fail' && k !== 'provider-hang' && k !== 'clock-jump');
}

export interface InjectedFault {
  kind: FaultKind;
  /** When it struck (ms since the epoch). */
  atMs: number;
  /** When it was over: the killed process back, the stall or the failures ended (atMs for instant faults). */
  endMs: number;
  /** What exactly was done, for the report. */
  detail: string;
  /** While the node could not act (vk dead, kube-apiserver down or stalled): deletions get this long more. */
  outage?: Outage;
  /** apiserver-kill: the pids before and after, and which other control-plane processes kept theirs. */
  apiserverRestart?: ApiserverRestart;
}

/** The next kinds: every kind once per round, in an order the seed decides. */
export function faultRounds(random: () => number, kinds: readonly FaultKind[] = FAULT_KINDS): () => FaultKind {
  let round: FaultKind[] = [];
  return () => {
    if (round.length === 0) {
      round = [...kinds];
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
    }
    return round.pop()!;
  };
}

/**
 * Injects `kind` and returns once the fault itself is over (the killed process is back, the
 * stall or the provider's failures have ended), with when it struck and when it ended.
 */
export async function inject(env: ChaosEnvironment, kind: FaultKind, random: () => number, seed: number, scale = 1): Promise<InjectedFault> {
  const fault = await strike(env, kind, random, seed, scale);
  return { ...fault, endMs: Date.now() };
}

/**
 * Injects `kind` and returns once the fault itself is over (the killed process is back, the
 * stall or the provider's failures have ended); convergence is measured from `atMs`.
 */
async function strike(env: ChaosEnvironment, kind: FaultKind, random: () => number, seed: number, scale = 1): Promise<Omit<InjectedFault, 'endMs'>> {
  const atMs = Date.now();
  // scale < 1 shortens every down time and stall (the smoke run).
  const between = (lo: number, hi: number) => Math.round((lo + random() * (hi - lo)) * scale);
  switch (kind) {
    case 'vk-kill': {
      const downMs = between(0, 10_000);
      env.killVk();
      await sleep(downMs);
      await env.startVk();
      return { kind, atMs, detail: `kill -9 of vk, restarted after ${downMs} ms`, outage: { startMs: atMs, endMs: Date.now() } };
    }
    case 'apiserver-kill': {
      const restart = await env.killApiserver();
      const others = ['kube-scheduler', 'kube-controller-manager'];
      const restartedToo = others.filter((name) => !restart.kept.includes(name));
      return {
        kind,
        atMs,
        detail:
          `kill -9 of kube-apiserver alone (pid ${restart.pid}); the supervisor restarted it (pid ${restart.newPid}), serving (readyz) ${restart.servingAfterMs} ms after the kill; ` +
          `${restart.supervisorKept ? 'supervisor and etcd kept' : 'the supervisor was gone'}, ` +
          (restartedToo.length === 0 ? `${others.join(' and ')} kept their pids` : `${restartedToo.join(' and ')} restarted too`),
        outage: { startMs: atMs, endMs: Date.now() },
        apiserverRestart: restart,
      };
    }
    case 'watch-drop':
      return { kind, atMs, detail: `dropped ${env.proxy.dropAll()} connections (watches included)` };
    case 'connection-reset':
      return { kind, atMs, detail: `reset ${env.proxy.resetAll()} connections` };
    case 'api-stall': {
      const ms = between(2_000, 10_000);
      env.proxy.stall(ms);
      await sleep(ms);
      return { kind, atMs, detail: `no bytes to or from kube-apiserver for ${ms} ms`, outage: { startMs: atMs, endMs: atMs + ms } };
    }
    case 'provider-fail': {
      const ms = between(5_000, 15_000);
      const failRate = Math.round(20 + random() * 40) / 100;
      env.setProviderFaults({ seed: seed + atMs, failRate });
      await sleep(ms);
      env.setProviderFaults({});
      return { kind, atMs, detail: `${failRate * 100}% of provider calls failed for ${ms} ms` };
    }
    case 'provider-hang': {
      const ms = between(5_000, 15_000);
      env.setProviderFaults({ seed: seed + atMs, hangRate: 0.2, hangMs: 20_000 });
      await sleep(ms);
      env.setProviderFaults({});
      return { kind, atMs, detail: `20% of provider calls hung (up to 20 s, or until the caller gave up) for ${ms} ms` };
    }
    case 'clock-jump': {
      const offsetMs = (random() < 0.5 ? -1 : 1) * Math.round(60_000 + random() * 3_540_000);
      env.setProviderFaults({ clockOffsetMs: offsetMs });
      return { kind, atMs, detail: `the provider's status timestamps jumped ${Math.round(offsetMs / 1000)} s` };
    }
  }
}
