// What the sandbox provider keeps per pod, in memory and in <dataDir>/pods/<uid>/pod.json, so a
// restarted provider adopts the pod's processes instead of starting them again.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Container, Pod } from '../../kube/types.ts';
import type { PodIPTemplate } from '../provider.ts';
import type { CgroupPaths } from './cgroups.ts';
import type { PodNetwork } from './network.ts';
import type { PauseProcess } from './pause.ts';

export interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt?: string;
  finishedAt: string;
  containerID?: string;
}

/** One run of a container: its shim, and the sandboxed process once known. */
export interface Instance {
  attempt: number;
  containerID: string;
  startedAt: string;
  shimPid: number;
  shimStart: number;
  /** Host pid of bwrap's sandboxed child: the container's pid-namespace init, or the command itself with shareProcessNamespace. */
  childPid?: number;
  childStart?: number;
  /** Where the container runs: rootfs, uid/gid, env... (to exec into it later). */
  launchFile: string;
  /** The run's cgroup, when the provider has cgroups (limits, usage, OOM kills). */
  cgroup?: CgroupPaths;
}

export interface ContainerRecord {
  name: string;
  init: boolean;
  /** An init container with restartPolicy Always. */
  sidecar: boolean;
  restartCount: number;
  /** Instances started so far (the next one's number). */
  attempts: number;
  waiting?: { reason: string; message?: string };
  running?: Instance;
  terminated?: Terminated;
  last?: Terminated;
  /** Attempt number of the instance `last` describes (for logs --previous). */
  lastAttempt?: number;
  /** Attempt whose log is "current" (the running one, or the one that ended last). */
  logAttempt?: number;
  /** CrashLoopBackOff: the next delay, and when the restart is due. 0: restart at once. */
  backoffMs: number;
  backoffUntil?: number;
  /** The wait before backoffUntil (for the CrashLoopBackOff message). */
  backoffWaitMs?: number;
  pullBackoffMs: number;
  pullRetryAt?: number;
  imageID?: string;
  ready: boolean;
  started: boolean;
}

export interface PodRecordState {
  version: 1;
  uid: string;
  namespace: string;
  name: string;
  pod: Pod;
  /** ResolvedPod.podIPTemplates of `pod`: what a container started after a restart of the provider fills in. */
  podIPTemplates?: PodIPTemplate[];
  createdAt: number;
  /**
   * The pod's sandbox, saved as soon as its pause process exists. `creating` stays set until the
   * rest (hostname, network, sysctls, /etc files) is made: a provider killed meanwhile leaves a
   * half-made sandbox, which its successor makes again instead of starting containers in it.
   */
  sandbox?: { pause: PauseProcess; network?: PodNetwork; readyAt: number; creating?: true };
  /** The pod's cgroup (its containers' are under it), when the provider has cgroups. */
  cgroup?: CgroupPaths;
  containers: ContainerRecord[];
  initDone: boolean;
  terminal?: { phase: 'Succeeded' | 'Failed'; reason?: string; message?: string; at: number };
  /**
   * Saved when the deletion starts: a provider restarted meanwhile (kill -9) finishes it instead
   * of starting the pod again. keepLogs: a release of a finished pod (its logs stay readable).
   */
  deleting?: { at: number; graceSeconds: number; keepLogs: boolean };
}

/** The record of a pod not started yet: every container waiting (PodInitializing behind init containers). */
export function newPodState(pod: Pod, now: number): PodRecordState {
  const inits = pod.spec?.initContainers ?? [];
  const record = (c: Container, init: boolean): ContainerRecord => ({
    name: c.name,
    init,
    sidecar: init && c.restartPolicy === 'Always',
    restartCount: 0,
    attempts: 0,
    waiting: { reason: init || inits.length > 0 ? 'PodInitializing' : 'ContainerCreating' },
    backoffMs: 0,
    pullBackoffMs: 0,
    ready: false,
    started: false,
  });
  return {
    version: 1,
    uid: pod.metadata?.uid ?? '',
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    pod,
    createdAt: now,
    containers: [...inits.map((c) => record(c, true)), ...(pod.spec?.containers ?? []).map((c) => record(c, false))],
    initDone: inits.length === 0,
  };
}

export function podsDir(dataDir: string): string {
  return path.join(dataDir, 'pods');
}

export function podDir(dataDir: string, uid: string): string {
  return path.join(podsDir(dataDir), uid);
}

export function saveState(dir: string, state: PodRecordState): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'pod.json');
  writeFileSync(`${file}.tmp`, JSON.stringify(state));
  renameSync(`${file}.tmp`, file);
}

/** Every pod state under dataDir; unreadable ones are returned as errors (the caller cleans them). */
export function loadStates(dataDir: string): { dir: string; state?: PodRecordState; error?: string }[] {
  let names: string[];
  try {
    names = readdirSync(podsDir(dataDir));
  } catch {
    return [];
  }
  return names.map((name) => {
    const dir = path.join(podsDir(dataDir), name);
    try {
      const state = JSON.parse(readFileSync(path.join(dir, 'pod.json'), 'utf8')) as PodRecordState;
      if (state.version !== 1) return { dir, error: `unknown state version ${String(state.version)}` };
      return { dir, state };
    } catch (err) {
      return { dir, error: (err as Error).message };
    }
  });
}

export function containerID(uid: string, name: string, attempt: number): string {
  return `sandbox://${createHash('sha256').update(`${uid}/${name}/${attempt}`).digest('hex')}`;
}
