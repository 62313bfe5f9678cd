// The AWS Fargate provider: each pod is one ECS task definition family and one Fargate task
// (task-definition.ts), its status is the task's (status.ts), its logs are CloudWatch Logs
// (logs.ts). Tasks are described in one background loop (DescribeTasks, 100 per call), so reads
// cost no AWS calls; changes are pushed with notifyPods, and what a description says happened
// (pulls, failures, stop reasons) is reported once as pod Events (events.ts). A pod that restarts (restartPolicy
// Always/OnFailure) runs a new task of the same definition after a backoff, as the kubelet would
// restart its containers. Exec, attach and port-forward are not offered (see the docs).
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import {
  DeregisterTaskDefinitionCommand,
  DescribeClustersCommand,
  DescribeTasksCommand,
  ECSClient,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  type Task,
} from '@aws-sdk/client-ecs';
import type { Readable } from 'node:stream';
import { ConfigError, ContainerStateError, NotFoundError, throwIfAborted, TryLaterError, VkError, errorMessage } from '../../errors.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import { PodNotifier } from '../support/notifier.ts';
import { PodEventReporter } from '../support/pod-events.ts';
import type { CallOptions, DeleteOptions, LogOptions, NodeConfig, PodEvent, PodEventListener, PodListener, Provider, ResolvedPod } from '../provider.ts';
import { awsErrorName, isAuthError, toProviderError } from './aws-errors.ts';
import { FARGATE_DEFAULT_CAPACITY, parseFargateConfig, type FargateConfig } from './config.ts';
import { taskEvents } from './events.ts';
import { readContainerLog } from './logs.ts';
import { renderStatus, taskId, wantsRestart, type TaskView } from './status.ts';
import { runTaskFor, TAG, taskDefinitionFor } from './task-definition.ts';

export interface FargateContext {
  nodeName: string;
  nodeIP: string;
  log: Logger;
}

interface PodRecord extends TaskView {
  key: string;
  uid: string;
  /** Every revision registered for this pod (deregistered on delete). */
  definitionArns: string[];
  /** A stable JSON of the last status reported, to notify only on change. */
  reported: string;
  /** Keys of the task events already reported as pod Events (events.ts). */
  reportedEvents: Set<string>;
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

export class FargateProvider implements Provider {
  readonly name = 'fargate';
  private readonly config: FargateConfig;
  private readonly context: FargateContext;
  private readonly ecs: ECSClient;
  private readonly logsClient: CloudWatchLogsClient;
  private readonly pods = new Map<string, PodRecord>();
  private readonly creating = new Map<string, Promise<void>>();
  private readonly notifier: PodNotifier<PodRecord>;
  private readonly podEvents: PodEventReporter;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  private constructor(config: FargateConfig, context: FargateContext) {
    this.config = config;
    this.context = context;
    const common = { region: config.region, maxAttempts: config.maxAttempts };
    this.ecs = new ECSClient({ ...common, ...(config.endpoints.ecs && { endpoint: config.endpoints.ecs }) });
    this.logsClient = new CloudWatchLogsClient({ ...common, ...(config.endpoints.logs && { endpoint: config.endpoints.logs }) });
    this.notifier = new PodNotifier((rec) => (this.pods.get(rec.key) === rec ? this.render(rec) : undefined), context.log);
    this.podEvents = new PodEventReporter(context.log);
  }

  /**
   * Checks the credentials and the cluster (DescribeClusters), adopts this node's tasks that
   * are still there, and starts describing them. Bad credentials or a missing cluster: one line.
   */
  static async open(input: unknown, context: FargateContext): Promise<FargateProvider> {
    const provider = new FargateProvider(parseFargateConfig(input), context);
    try {
      await provider.checkCluster(AbortSignal.timeout(30_000));
      await provider.adopt();
    } catch (err) {
      provider.destroyClients();
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`fargate: ${errorMessage(err).split('\n')[0]}`);
    }
    provider.poller = setInterval(() => void provider.poll(), provider.config.pollIntervalMs);
    return provider;
  }

  private async checkCluster(signal: AbortSignal): Promise<void> {
    let out;
    try {
      out = await this.ecs.send(new DescribeClustersCommand({ clusters: [this.config.cluster] }), { abortSignal: signal });
    } catch (err) {
      if (isAuthError(err) || awsErrorName(err) === 'CredentialsProviderError')
        throw new ConfigError(
          `fargate: AWS credentials rejected (ECS DescribeClusters in ${this.config.region}: ${awsErrorName(err)}: ${errorMessage(err).split('\n')[0]})`,
        );
      throw toProviderError(err, 'ECS DescribeClusters');
    }
    const cluster = out.clusters?.[0];
    if (!cluster || cluster.status !== 'ACTIVE')
      throw new ConfigError(
        `fargate: cluster: ECS cluster ${this.config.cluster} not found or not ACTIVE in ${this.config.region} (${out.failures?.[0]?.reason ?? cluster?.status ?? 'missing'})`,
      );
  }

  /** Tasks this node started before a restart of the virtual kubelet: found by their node tag. */
  private async adopt(): Promise<void> {
    const arns: string[] = [];
    for (const desiredStatus of ['RUNNING', 'STOPPED'] as const) {
      let nextToken: string | undefined;
      do {
        const out = await this.ecs.send(
          new ListTasksCommand({ cluster: this.config.cluster, desiredStatus, launchType: 'FARGATE', ...(nextToken && { nextToken }) }),
        );
        arns.push(...(out.taskArns ?? []));
        nextToken = out.nextToken;
      } while (nextToken);
    }
    const tasks = await this.describe(arns);
    // Newest first, so the latest run of each pod wins.
    tasks.sort((a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0));
    for (const task of tasks) {
      const tag = (k: string) => task.tags?.find((t) => t.key === k)?.value;
      if (tag(TAG.node) !== this.context.nodeName) continue;
      const namespace = tag(TAG.namespace) ?? '';
      const name = tag(TAG.name) ?? '';
      const uid = tag(TAG.uid) ?? '';
      const k = key(namespace, name);
      if (this.pods.has(k)) continue;
      const pod: Pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { namespace, name, uid },
        spec: {
          nodeName: this.context.nodeName,
          restartPolicy: tag(TAG.restartPolicy) ?? 'Always',
          containers: (task.containers ?? []).map((c) => ({ name: c.name ?? '', image: c.image ?? '' })),
        },
      };
      const rec = this.record(pod, task, task.taskDefinitionArn ? [task.taskDefinitionArn] : []);
      rec.createdAt = task.createdAt?.getTime() ?? Date.now();
      // What the task went through so far was reported by the run that started it.
      for (const { key: seen } of taskEvents(task, pod)) rec.reportedEvents.add(seen);
      this.pods.set(k, rec);
    }
  }

  private record(pod: Pod, task: Task | undefined, definitionArns: string[]): PodRecord {
    const meta = pod.metadata ?? {};
    const { status: _status, ...spec } = pod;
    return {
      key: key(meta.namespace ?? '', meta.name ?? ''),
      uid: meta.uid ?? '',
      pod: spec,
      task,
      previous: [],
      createdAt: Date.now(),
      nodeIP: this.context.nodeIP,
      definitionArns,
      reported: '',
      reportedEvents: new Set(),
    };
  }

  private render(rec: PodRecord): Pod {
    return { ...rec.pod, status: renderStatus(rec) };
  }

  private async describe(arns: string[], signal?: AbortSignal): Promise<Task[]> {
    const tasks: Task[] = [];
    for (let i = 0; i < arns.length; i += 100) {
      const out = await this.ecs.send(new DescribeTasksCommand({ cluster: this.config.cluster, tasks: arns.slice(i, i + 100), include: ['TAGS'] }), {
        ...(signal && { abortSignal: signal }),
      });
      tasks.push(...(out.tasks ?? []));
    }
    return tasks;
  }

  // --- lifecycle -------------------------------------------------------------------------------

  async createPod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    throwIfAborted(options.signal, 'fargate createPod');
    const meta = resolved.pod.metadata ?? {};
    const k = key(meta.namespace ?? '', meta.name ?? '');
    const uid = meta.uid ?? '';
    const existing = this.pods.get(k);
    if (existing?.uid === uid) return;
    if (existing) throw new VkError('VK_CONFLICT', `fargate: pod ${k} still runs as uid ${existing.uid}; delete it before creating uid ${uid}`);
    const inFlight = this.creating.get(uid);
    if (inFlight) return inFlight;
    const work = this.create(resolved, k, uid, options.signal).finally(() => this.creating.delete(uid));
    this.creating.set(uid, work);
    return work;
  }

  private async create(resolved: ResolvedPod, k: string, uid: string, signal: AbortSignal): Promise<void> {
    // Rejections happen here, before any AWS call.
    const input = taskDefinitionFor(resolved, this.config, this.context.nodeName);
    let definitionArn: string;
    try {
      const out = await this.ecs.send(new RegisterTaskDefinitionCommand(input), { abortSignal: signal });
      definitionArn = out.taskDefinition?.taskDefinitionArn ?? '';
    } catch (err) {
      throw toProviderError(err, `ECS RegisterTaskDefinition for pod ${k}`, true);
    }
    let task: Task;
    try {
      throwIfAborted(signal, `fargate createPod ${k}`);
      task = await this.runTask(resolved.pod, definitionArn, uid, signal, k);
    } catch (err) {
      await this.deregister([definitionArn]);
      throw err;
    }
    if (signal.aborted) {
      await this.stopTask(task, 'virtual-kubelet: createPod aborted').catch(() => undefined);
      await this.deregister([definitionArn]);
      throwIfAborted(signal, `fargate createPod ${k}`);
    }
    const rec = this.record(resolved.pod, task, [definitionArn]);
    this.pods.set(k, rec);
    rec.reported = JSON.stringify(renderStatus(rec));
    this.notifier.markDirty(rec);
  }

  private async runTask(pod: Pod, definitionArn: string, clientToken: string, signal: AbortSignal | undefined, k: string): Promise<Task> {
    let out;
    try {
      out = await this.ecs.send(new RunTaskCommand(runTaskFor(pod, definitionArn, this.config, this.context.nodeName, clientToken)), {
        ...(signal && { abortSignal: signal }),
      });
    } catch (err) {
      throw toProviderError(err, `ECS RunTask for pod ${k}`);
    }
    const task = out.tasks?.[0];
    if (!task) {
      const reason = out.failures?.[0]?.reason ?? 'no task and no failure reason';
      const text = `ECS RunTask for pod ${k}: ${reason}${out.failures?.[0]?.detail ? ` (${out.failures[0].detail})` : ''}`;
      // Capacity and quota failures pass; anything else is reported as it is.
      if (/limit|capacity|RESOURCE:/i.test(reason)) throw new TryLaterError(text);
      throw new VkError('VK_PROVIDER', text);
    }
    return task;
  }

  private async stopTask(task: Task, reason: string): Promise<void> {
    try {
      await this.ecs.send(new StopTaskCommand({ cluster: this.config.cluster, task: task.taskArn, reason }));
    } catch (err) {
      // A task that is already gone is stopped.
      if (awsErrorName(err) === 'InvalidParameterException' && /not found/i.test(errorMessage(err))) return;
      throw toProviderError(err, `ECS StopTask ${taskId(task)}`);
    }
  }

  private async deregister(arns: string[]): Promise<void> {
    for (const arn of arns) {
      try {
        await this.ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: arn }));
      } catch (err) {
        this.context.log.warn({ err: errorMessage(err), taskDefinition: arn }, 'fargate: could not deregister a task definition');
      }
    }
  }

  async updatePod(resolved: ResolvedPod, options: CallOptions): Promise<void> {
    throwIfAborted(options.signal, 'fargate updatePod');
    const meta = resolved.pod.metadata ?? {};
    const k = key(meta.namespace ?? '', meta.name ?? '');
    const rec = this.pods.get(k);
    if (!rec || rec.uid !== meta.uid) throw new NotFoundError(`fargate: pod ${k} (uid ${meta.uid}) not found`);
    const images = (p: Pod) => JSON.stringify([...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])].map((c) => c.image));
    const changed = images(resolved.pod) !== images(rec.pod);
    const { status: _status, ...spec } = resolved.pod;
    if (!changed) {
      rec.pod = spec;
      return;
    }
    // A task cannot change its images: a new revision of the family and a new task replace it.
    const input = taskDefinitionFor(resolved, this.config, this.context.nodeName);
    let arn: string;
    try {
      arn = (await this.ecs.send(new RegisterTaskDefinitionCommand(input), { abortSignal: options.signal })).taskDefinition?.taskDefinitionArn ?? '';
    } catch (err) {
      throw toProviderError(err, `ECS RegisterTaskDefinition for pod ${k}`, true);
    }
    rec.definitionArns.push(arn);
    const old = rec.task;
    const task = await this.runTask(resolved.pod, arn, `${rec.uid}-${rec.definitionArns.length}`, options.signal, k);
    if (old) {
      await this.stopTask(old, 'virtual-kubelet: replaced by an image change').catch(() => undefined);
      rec.previous.push(old);
    }
    rec.pod = spec;
    rec.task = task;
    rec.restartAt = undefined;
    this.notifier.markDirty(rec);
  }

  async deletePod(pod: Pod, options: DeleteOptions): Promise<void> {
    const meta = pod.metadata ?? {};
    const k = key(meta.namespace ?? '', meta.name ?? '');
    const rec = this.pods.get(k);
    if (!rec || rec.uid !== meta.uid) throw new NotFoundError(`fargate: pod ${k} (uid ${meta.uid}) not found`);
    throwIfAborted(options.signal, `fargate deletePod ${k}`);
    if (rec.task && rec.task.lastStatus !== 'STOPPED' && rec.task.desiredStatus !== 'STOPPED')
      await this.stopTask(rec.task, options.reason === 'deleted' ? 'virtual-kubelet: pod deleted' : 'virtual-kubelet: pod finished');
    this.pods.delete(k);
    // The log streams stay in CloudWatch Logs (their retention is the log group's).
    await this.deregister(rec.definitionArns);
  }

  async getPod(namespace: string, name: string, _options?: CallOptions): Promise<Pod | undefined> {
    const rec = this.pods.get(key(namespace, name));
    return rec && this.render(rec);
  }

  async getPodStatus(namespace: string, name: string, _options?: CallOptions): Promise<PodStatus | undefined> {
    const rec = this.pods.get(key(namespace, name));
    return rec && renderStatus(rec);
  }

  async listPods(_options?: CallOptions): Promise<Pod[]> {
    return [...this.pods.values()].map((rec) => this.render(rec));
  }

  // --- the describe loop -----------------------------------------------------------------------

  /** One round: describe every live task, restart what its policy restarts, notify what changed. */
  async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const live = [...this.pods.values()].filter(
        (rec) => rec.task && !(rec.task.lastStatus === 'STOPPED' && rec.restartAt === undefined && !wantsRestart(rec.task, rec.pod)),
      );
      const described = new Map((await this.describe(live.map((rec) => rec.task!.taskArn!))).map((t) => [t.taskArn, t]));
      for (const rec of live) {
        const task = described.get(rec.task!.taskArn);
        if (task && this.pods.get(rec.key) === rec) {
          rec.task = task;
          this.reportTaskEvents(rec, task);
        }
      }
      for (const rec of this.pods.values()) await this.restartIfDue(rec);
      for (const rec of this.pods.values()) {
        const now = JSON.stringify(renderStatus({ ...rec, restartAt: undefined }));
        if (now !== rec.reported) {
          rec.reported = now;
          this.notifier.markDirty(rec);
        }
      }
    } catch (err) {
      this.context.log.warn({ err: errorMessage(err) }, 'fargate: describing tasks failed; retrying on the next round');
    } finally {
      this.polling = false;
    }
  }

  private reportTaskEvents(rec: PodRecord, task: Task): void {
    for (const { key: k, event } of taskEvents(task, rec.pod)) {
      if (rec.reportedEvents.has(k)) continue;
      rec.reportedEvents.add(k);
      this.report(rec, event);
    }
  }

  private report(rec: PodRecord, event: Omit<PodEvent, 'namespace' | 'name' | 'uid'>): void {
    const meta = rec.pod.metadata;
    this.podEvents.report({ namespace: meta?.namespace ?? '', name: meta?.name ?? '', uid: rec.uid, ...event });
  }

  private async restartIfDue(rec: PodRecord): Promise<void> {
    const task = rec.task;
    if (task?.lastStatus === 'STOPPED' && wantsRestart(task, rec.pod)) {
      const { initialMs, maxMs } = this.config.restartBackoff;
      // The first restart is immediate, later ones back off (the kubelet's CrashLoopBackOff).
      const delay = rec.previous.length === 0 ? 0 : Math.min(maxMs, initialMs * 2 ** (rec.previous.length - 1));
      rec.previous.push(task);
      rec.task = undefined;
      rec.restartAt = Date.now() + delay;
      if (delay > 0)
        this.report(rec, {
          type: 'Warning',
          reason: 'BackOff',
          message: `Back-off ${Math.round(delay / 1000)}s restarting the task of pod ${rec.key} (restart ${rec.previous.length})`,
        });
    }
    if (rec.task || rec.restartAt === undefined || Date.now() < rec.restartAt) return;
    const arn = rec.definitionArns.at(-1)!;
    try {
      rec.task = await this.runTask(rec.pod, arn, `${rec.uid}-r${rec.previous.length}`, undefined, rec.key);
      rec.restartAt = undefined;
    } catch (err) {
      this.context.log.warn({ pod: rec.key, err: errorMessage(err) }, 'fargate: restarting the task failed; retrying');
      rec.restartAt = Date.now() + this.config.restartBackoff.initialMs;
    }
  }

  // --- capabilities ----------------------------------------------------------------------------

  notifyPods(listener: PodListener): void {
    this.notifier.addListener(listener);
  }

  notifyPodEvents(listener: PodEventListener): void {
    this.podEvents.addListener(listener);
  }

  nodeConfig(): NodeConfig {
    const capacity = { ...FARGATE_DEFAULT_CAPACITY, ...this.config.capacity };
    return {
      capacity,
      labels: { 'topology.kubernetes.io/region': this.config.region, ...this.config.labels },
      operatingSystem: 'linux',
      architecture: 'amd64',
    };
  }

  async ping(signal: AbortSignal): Promise<void> {
    await this.checkCluster(signal);
  }

  async getContainerLogs(namespace: string, podName: string, container: string, options: LogOptions): Promise<Readable> {
    const k = key(namespace, podName);
    const rec = this.pods.get(k);
    if (!rec) throw new NotFoundError(`pod ${k} not found`);
    const spec = [...(rec.pod.spec?.initContainers ?? []), ...(rec.pod.spec?.containers ?? [])].find((c) => c.name === container);
    if (!spec) throw new NotFoundError(`container ${container} is not valid for pod ${podName}`);
    if (this.config.logs === false) throw new VkError('VK_UNSUPPORTED', 'fargate: logs are off (provider config logs: false)');
    const task = options.previous ? rec.previous.at(-1) : (rec.task ?? rec.previous.at(-1));
    if (!task) throw options.previous ? ContainerStateError.noPrevious(podName, container) : ContainerStateError.waiting(podName, container);
    const state = task.containers?.find((c) => c.name === container);
    if (!state || (state.lastStatus === 'PENDING' && task.lastStatus !== 'STOPPED')) throw ContainerStateError.waiting(podName, container);
    const { group, streamPrefix } = this.config.logs;
    const source = {
      group,
      stream: `${streamPrefix}/${container}/${taskId(task)}`,
      finished: () => {
        const current = this.pods.get(k);
        return !current?.task || current.task.taskArn !== task.taskArn || current.task.lastStatus === 'STOPPED';
      },
    };
    return readContainerLog(this.logsClient, source, options, this.config.logPollIntervalMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    this.destroyClients();
  }

  private destroyClients(): void {
    this.ecs.destroy();
    this.logsClient.destroy();
  }
}
