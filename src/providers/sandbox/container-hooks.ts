// A running container's probes (startup gating liveness and readiness), its postStart hook, and
// running commands inside it (exec probes and hooks, kubectl exec). The pod runtime records what
// they find; the rules of what follows (restart on liveness failure...) are here.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Container } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { SandboxConfig } from './config.ts';
import { parseTime } from './container-exit.ts';
import { execCommand, launchEnv, type ContainerLaunch } from './launch.ts';
import { Prober, runAction, type ProbeAction, type ProbeContext, type ProbeKind, type ProbeSpec } from './probes.ts';
import { descendantsOf, isAlive, signal as sendSignal } from './procfs.ts';
import { readJson } from './shim-launcher.ts';
import type { ContainerRecord, Instance } from './state.ts';

/** What the hooks need of the pod runtime. */
export interface HookHost {
  readonly log: Logger;
  readonly tools: SandboxConfig['tools'];
  containerSpec(name: string): Container | undefined;
  podIP(): string | undefined;
  graceSeconds(): number;
  /** The record changed: save and report it. */
  changed(): void;
  /** Something the reconcile loop waits for happened. */
  requestReconcile(): void;
  stopContainer(c: ContainerRecord, graceSeconds: number, why: string): Promise<void>;
}

/** Spawns `command` inside the running instance (the same mounts, user, capabilities and env). */
export function spawnExec(tools: SandboxConfig['tools'], inst: Instance, command: string[], tty: boolean): ChildProcess | undefined {
  const launch = readJson<ContainerLaunch>(inst.launchFile);
  if (!launch || !inst.childPid || !isAlive(inst.childPid, inst.childStart)) return undefined;
  const env = tty && !launch.env.some((e) => e.startsWith('TERM=')) ? [...launch.env, 'TERM=xterm'] : launch.env;
  const argv = execCommand(tools, { ...launch, env }, inst.childPid, command, tty);
  return spawn(argv[0]!, argv.slice(1), { env: launchEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
}

export function probeContext(host: HookHost, c: ContainerRecord, inst: Instance): ProbeContext {
  return {
    container: host.containerSpec(c.name)!,
    podIP: host.podIP(),
    exec: async (command, timeoutMs) => {
      const child = spawnExec(host.tools, inst, command, false);
      if (!child) return 126;
      child.stdout?.resume();
      child.stderr?.resume();
      return new Promise<number>((resolve) => {
        const timer = setTimeout(() => {
          for (const p of descendantsOf(child.pid ?? 0)) sendSignal(p.pid, 'SIGKILL');
          resolve(-1);
        }, timeoutMs);
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve(code ?? 137);
        });
        child.once('error', () => {
          clearTimeout(timer);
          resolve(126);
        });
      });
    },
  };
}

/** Runs the postStart hook; a failure kills the container (it restarts per its policy). */
export async function runPostStart(host: HookHost, c: ContainerRecord, inst: Instance, container: Container): Promise<void> {
  const hook = container.lifecycle?.postStart as ProbeAction | undefined;
  if (!hook) return;
  const result = await runAction(hook, probeContext(host, c, inst), 30_000);
  if (result.ok || c.running !== inst) return;
  host.log.info({ container: c.name, message: result.message }, 'postStart hook failed; killing the container');
  c.waiting = undefined;
  await host.stopContainer(c, host.graceSeconds(), `FailedPostStartHook: ${result.message}`);
}

/**
 * Starts the instance's probes into `probers`: the startup probe first (the container is
 * `started` when it passes), then readiness (`ready`) and liveness (a failure restarts the
 * container). Without a readiness probe the container is ready once started. An adopted
 * instance's probes count initialDelaySeconds from its original start.
 */
export function startProbes(host: HookHost, c: ContainerRecord, inst: Instance, probers: Prober[], adopted: boolean): void {
  if (c.running !== inst) return;
  const container = host.containerSpec(c.name);
  if (!container || (c.init && !c.sidecar)) {
    if (adopted && !container?.readinessProbe) c.ready = c.init ? false : true;
    return;
  }
  const sinceStart = Date.now() - parseTime(inst.startedAt);
  const ctx = probeContext(host, c, inst);
  const make = (kind: ProbeKind, spec: ProbeSpec | undefined, onChange: (ok: boolean, message: string) => void) => {
    if (!spec) return;
    const p = new Prober(kind, spec, ctx, onChange);
    probers.push(p);
    p.start((spec.initialDelaySeconds ?? 0) * 1000 - sinceStart);
  };
  const readiness = container.readinessProbe as ProbeSpec | undefined;
  const liveness = container.livenessProbe as ProbeSpec | undefined;
  const startAfterStartup = () => {
    if (!readiness) {
      c.ready = true;
      host.changed();
    }
    make('readiness', readiness, (ok) => {
      if (c.running !== inst) return;
      c.ready = ok;
      host.changed();
    });
    make('liveness', liveness, (ok, message) => {
      if (ok || c.running !== inst) return;
      host.log.info({ container: c.name, message }, 'liveness probe failed; restarting the container');
      void host.stopContainer(c, container.livenessProbe?.terminationGracePeriodSeconds ?? host.graceSeconds(), `Liveness probe failed: ${message}`);
    });
  };
  if (container.startupProbe && !(adopted && c.started)) {
    make('startup', container.startupProbe as ProbeSpec, (ok, message) => {
      if (c.running !== inst) return;
      if (!ok) {
        void host.stopContainer(c, host.graceSeconds(), `Startup probe failed: ${message}`);
        return;
      }
      c.started = true;
      for (const p of probers.filter((x) => x.kind === 'startup')) p.stop();
      host.changed();
      if (c.sidecar) host.requestReconcile();
      startAfterStartup();
    });
  } else {
    c.started = true;
    if (c.sidecar) host.requestReconcile();
    startAfterStartup();
  }
}
