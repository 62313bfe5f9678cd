// Rendering a mock pod's record as a kubelet-shaped PodStatus: pure functions of the record
// (and of the host IP and restart delay), built only when asked for.
import { createHash } from 'node:crypto';
import type { Container, ContainerStatus, Pod, PodCondition, PodStatus } from '../../kube/types.ts';
import { formatIPv4 } from '../../util/ipv4.ts';
import { rfc3339 } from '../../version.ts';
import { phaseOf, type ContainerRun, type PodRecord } from './lifecycle.ts';

export interface RenderContext {
  /** The node's IP: status.hostIP, and podIP of host-network pods. */
  hostIP: string;
  /** lifecycle.restartDelayMs, for the CrashLoopBackOff message. */
  restartDelayMs: number;
}

// rfc3339 costs about a microsecond and a status has ~10 stamps; pods share seconds, so cache.
const stamps = new Map<number, string>();

/** rfc3339 (src/version.ts) of an epoch-millisecond time, cached per second. */
export function stamp(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  let s = stamps.get(seconds);
  if (s === undefined) {
    if (stamps.size >= 4096) stamps.clear();
    s = rfc3339(new Date(seconds * 1000));
    stamps.set(seconds, s);
  }
  return s;
}

const imageIDs = new Map<string, string>();

/** A stable docker-pullable imageID per image: repository without tag, fake digest from the name. */
export function imageID(image: string): string {
  let id = imageIDs.get(image);
  if (id !== undefined) return id;
  const at = image.indexOf('@');
  let repo = at >= 0 ? image.slice(0, at) : image;
  const colon = repo.lastIndexOf(':');
  if (colon > repo.lastIndexOf('/')) repo = repo.slice(0, colon);
  const digest = at >= 0 ? image.slice(at + 1) : `sha256:${createHash('sha256').update(image).digest('hex')}`;
  id = `docker-pullable://${repo}@${digest}`;
  if (imageIDs.size >= 1024) imageIDs.clear(); // bounded even if every pod uses its own image
  imageIDs.set(image, id);
  return id;
}

export function containerID(rec: PodRecord, name: string): string {
  return `mock://${rec.uid}-${name}`;
}

export function terminatedState(exitCode: number, startedAt: number | undefined, finishedAt: number, containerID: string | undefined) {
  return {
    terminated: {
      exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      ...(startedAt !== undefined && { startedAt: stamp(startedAt) }),
      finishedAt: stamp(finishedAt),
      ...(containerID !== undefined && { containerID }),
    },
  };
}

/** The stored pod with its current status; shallow, so callers must not mutate the spec. */
export function renderPod(rec: PodRecord, ctx: RenderContext): Pod {
  return { ...rec.resolved.pod, status: renderStatus(rec, ctx) };
}

export function renderStatus(rec: PodRecord, ctx: RenderContext): PodStatus {
  const pod = rec.resolved.pod;
  const spec = pod.spec;
  const generation = pod.metadata?.generation;
  const phase = phaseOf(rec);
  const terminal = rec.stage === 'terminated';
  const running = rec.stage === 'running';
  const sandboxUp = rec.sandboxAt !== undefined;
  const initContainers = spec?.initContainers ?? [];
  const containers = spec?.containers ?? [];
  const blockingInit = initContainers.filter((c) => c.restartPolicy !== 'Always');

  const cond = (type: string, ok: boolean, at: number, reason?: string, message?: string): PodCondition => ({
    type,
    status: ok ? 'True' : 'False',
    ...(generation !== undefined && { observedGeneration: generation }),
    lastTransitionTime: stamp(at),
    ...(reason !== undefined && { reason }),
    ...(message !== undefined && { message }),
  });
  const unready = () =>
    `containers with unready status: [${[...initContainers.filter((c) => c.restartPolicy === 'Always'), ...containers].map((c) => c.name).join(' ')}]`;
  const initialized = blockingInit.length === 0 || sandboxUp;
  const readyReason = phase === 'Succeeded' ? 'PodCompleted' : 'ContainersNotReady';
  const readyMessage = running || phase === 'Succeeded' ? undefined : unready();
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const conditions: PodCondition[] = [
    cond('PodReadyToStartContainers', sandboxUp && !terminal, terminal && sandboxUp ? rec.stageAt : (rec.sandboxAt ?? rec.createdAt)),
    initialized
      ? cond('Initialized', true, blockingInit.length === 0 ? rec.createdAt : (rec.sandboxAt ?? rec.createdAt))
      : cond(
          'Initialized',
          false,
          rec.createdAt,
          'ContainersNotInitialized',
          `containers with incomplete status: [${blockingInit.map((c) => c.name).join(' ')}]`,
        ),
    running ? cond('Ready', true, rec.readyAt) : cond('Ready', false, rec.readyAt, readyReason, readyMessage),
    running ? cond('ContainersReady', true, rec.readyAt) : cond('ContainersReady', false, rec.readyAt, readyReason, readyMessage),
    scheduled ? { ...scheduled } : cond('PodScheduled', true, rec.createdAt),
  ];

  const podIP = rec.ip === 0 ? ctx.hostIP : formatIPv4(rec.ip);
  const status: PodStatus = {
    ...(generation !== undefined && { observedGeneration: generation }),
    phase,
    conditions,
    hostIP: ctx.hostIP,
    hostIPs: [{ ip: ctx.hostIP }],
    ...(sandboxUp && { podIP, podIPs: [{ ip: podIP }] }),
    startTime: stamp(rec.createdAt),
    ...(initContainers.length > 0 && { initContainerStatuses: initContainers.map((c) => initContainerStatus(rec, c)) }),
    containerStatuses: containers
      .map((c, i) => containerStatus(rec, c, rec.containers[i], ctx))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    ...(pod.status?.qosClass !== undefined && { qosClass: pod.status.qosClass }),
  };
  if (rec.endReason === 'DeadlineExceeded') {
    status.reason = 'DeadlineExceeded';
    status.message = 'Pod was active on the node longer than the specified deadline';
  }
  return status;
}

export function containerStatus(rec: PodRecord, c: Container, run: ContainerRun | undefined, ctx: RenderContext): ContainerStatus {
  const image = c.image ?? '';
  const base = { name: c.name, image, restartCount: run?.restartCount ?? 0 };
  const last = run?.last;
  const id = containerID(rec, c.name);
  const lastState = last ? terminatedState(last.exitCode, last.startedAt, last.finishedAt, id) : {};
  switch (rec.stage) {
    case 'creating': {
      const waitingFor = (rec.resolved.pod.spec?.initContainers ?? []).some((ic) => ic.restartPolicy !== 'Always');
      return {
        ...base,
        imageID: '',
        ready: false,
        started: false,
        state: { waiting: { reason: waitingFor ? 'PodInitializing' : 'ContainerCreating' } },
        lastState,
      };
    }
    case 'running':
      return {
        ...base,
        imageID: imageID(image),
        containerID: id,
        ready: true,
        started: true,
        state: { running: { startedAt: stamp(run?.startedAt ?? rec.runStart) } },
        lastState,
      };
    case 'backoff': {
      const pod = rec.resolved.pod;
      const seconds = Math.ceil(ctx.restartDelayMs / 1000);
      const message = `back-off ${seconds}s restarting failed container=${c.name} pod=${pod.metadata?.name ?? ''}_${pod.metadata?.namespace ?? ''}(${rec.uid})`;
      return {
        ...base,
        imageID: imageID(image),
        containerID: id,
        ready: false,
        started: false,
        state: { waiting: { reason: 'CrashLoopBackOff', message } },
        lastState,
      };
    }
    case 'terminated':
      return {
        ...base,
        imageID: run?.startedAt !== undefined || last ? imageID(image) : '',
        ...(run?.startedAt !== undefined && { containerID: id }),
        ready: false,
        started: false,
        state: terminatedState(rec.exitCode, run?.startedAt, rec.stageAt, run?.startedAt !== undefined ? id : undefined),
        lastState,
      };
  }
}

// Init containers finish the moment the sandbox is up; sidecars (restartPolicy Always) run until the pod ends.
export function initContainerStatus(rec: PodRecord, c: Container): ContainerStatus {
  const image = c.image ?? '';
  const id = containerID(rec, c.name);
  const base = { name: c.name, image, restartCount: 0, lastState: {} };
  const at = rec.sandboxAt;
  if (at === undefined) return { ...base, imageID: '', ready: false, started: false, state: { waiting: { reason: 'PodInitializing' } } };
  if (c.restartPolicy !== 'Always') {
    return { ...base, imageID: imageID(image), containerID: id, ready: true, started: false, state: terminatedState(0, at, at, id) };
  }
  if (rec.stage === 'terminated') {
    return {
      ...base,
      imageID: imageID(image),
      containerID: id,
      ready: false,
      started: false,
      state: terminatedState(rec.endReason === 'DeadlineExceeded' ? 137 : 0, at, rec.stageAt, id),
    };
  }
  return { ...base, imageID: imageID(image), containerID: id, ready: true, started: true, state: { running: { startedAt: stamp(at) } } };
}
