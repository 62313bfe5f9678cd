// Probe and lifecycle-hook actions as the kubelet runs them: exec in the container, HTTP GET and
// TCP connect and gRPC health checks to the pod IP (from the host, through the pod's veth pair), sleep.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Container } from '../../kube/types.ts';
import { grpcProbe } from './grpc-probe.ts';

type IntOrString = number | string;

export interface ProbeAction {
  exec?: { command?: string[] };
  httpGet?: { host?: string; path?: string; port: IntOrString; scheme?: string; httpHeaders?: { name: string; value: string }[] };
  tcpSocket?: { host?: string; port: IntOrString };
  grpc?: { port: number; service?: string };
  sleep?: { seconds: number };
}

export interface ProbeResult {
  ok: boolean;
  message: string;
}

export interface ProbeContext {
  container: Container;
  podIP: string | undefined;
  /** Runs a command in the container, output discarded; resolves with the exit code. */
  exec(command: string[], timeoutMs: number): Promise<number>;
}

/** A named port of the container, or the number itself. */
export function resolvePort(container: Container, port: IntOrString): number | undefined {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(action: NonNullable<ProbeAction['httpGet']>, host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const secure = (action.scheme ?? 'HTTP').toUpperCase() === 'HTTPS';
  const headers: Record<string, string> = { 'User-Agent': 'kube-probe/1.36', Accept: '*/*' };
  for (const h of action.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise((resolve) => {
    const req = (secure ? https : http).request(
      { host, port, path: action.path || '/', method: 'GET', headers, timeout: timeoutMs, ...(secure && { rejectUnauthorized: false }) },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(code >= 200 && code < 400 ? { ok: true, message: `HTTP ${code}` } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` });
      },
    );
    req.on('timeout', () => {
      req.destroy();
      resolve({
        ok: false,
        message: `Get "${secure ? 'https' : 'http'}://${host}:${port}${action.path || '/'}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
      });
    });
    req.on('error', (err) => resolve({ ok: false, message: `Get "${secure ? 'https' : 'http'}://${host}:${port}${action.path || '/'}": ${err.message}` }));
    req.end();
  });
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: true, message: '' });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, message: `dial tcp ${host}:${port}: ${err.message}` });
    });
  });
}

/** Runs one probe or hook action; never throws. */
export async function runAction(action: ProbeAction, ctx: ProbeContext, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  try {
    if (action.exec) {
      const command = action.exec.command ?? [];
      const code = await ctx.exec(command, timeoutMs);
      if (code === 0) return { ok: true, message: '' };
      return {
        ok: false,
        message: code === -1 ? `command ${JSON.stringify(command.join(' '))} timed out` : `command ${JSON.stringify(command.join(' '))} exited with ${code}`,
      };
    }
    if (action.httpGet || action.tcpSocket) {
      const target = (action.httpGet ?? action.tcpSocket)!;
      const port = resolvePort(ctx.container, target.port);
      if (port === undefined) return { ok: false, message: `port ${String(target.port)} not found in container ${ctx.container.name}` };
      const host = target.host || ctx.podIP;
      if (!host) return { ok: false, message: 'the pod has no IP' };
      return action.httpGet ? await httpProbe(action.httpGet, host, port, timeoutMs) : await tcpProbe(host, port, timeoutMs);
    }
    if (action.sleep) {
      await sleep(action.sleep.seconds * 1000, undefined, signal ? { signal } : {});
      return { ok: true, message: '' };
    }
    if (action.grpc) {
      if (!ctx.podIP) return { ok: false, message: 'the pod has no IP' };
      return await grpcProbe(ctx.podIP, action.grpc.port, action.grpc.service ?? '', timeoutMs);
    }
    return { ok: false, message: 'probe has no action' };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

export interface ProbeSpec extends ProbeAction {
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
  successThreshold?: number;
}

export type ProbeKind = 'startup' | 'liveness' | 'readiness';

/**
 * Runs one probe of one container instance on its period. `onChange` fires when the result
 * crosses a threshold: true after successThreshold successes in a row, false after
 * failureThreshold failures in a row.
 */
export class Prober {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private successes = 0;
  private failures = 0;
  private result: boolean | undefined;
  private stopped = false;
  readonly kind: ProbeKind;
  private readonly spec: ProbeSpec;
  private readonly ctx: ProbeContext;
  private readonly onChange: (ok: boolean, message: string) => void;

  constructor(kind: ProbeKind, spec: ProbeSpec, ctx: ProbeContext, onChange: (ok: boolean, message: string) => void) {
    this.kind = kind;
    this.spec = spec;
    this.ctx = ctx;
    this.onChange = onChange;
  }

  /** Starts probing `delayMs` from now (initialDelaySeconds counted from the container's start). */
  start(delayMs: number): void {
    this.timer = setTimeout(() => void this.tick(), Math.max(0, delayMs));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const timeoutMs = (this.spec.timeoutSeconds ?? 1) * 1000;
    const outcome = await runAction(this.spec, this.ctx, timeoutMs);
    if (this.stopped) return;
    if (outcome.ok) {
      this.successes++;
      this.failures = 0;
      const threshold = this.kind === 'readiness' ? (this.spec.successThreshold ?? 1) : 1;
      if (this.successes >= threshold && this.result !== true) {
        this.result = true;
        this.onChange(true, outcome.message);
      }
    } else {
      this.failures++;
      this.successes = 0;
      if (this.failures >= (this.spec.failureThreshold ?? 3) && this.result !== false) {
        this.result = false;
        this.onChange(false, outcome.message);
      }
      // A liveness/startup failure past the threshold restarts the container; keep counting anew.
      if (this.kind !== 'readiness' && this.failures >= (this.spec.failureThreshold ?? 3)) this.failures = 0;
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), (this.spec.periodSeconds ?? 10) * 1000);
  }
}
