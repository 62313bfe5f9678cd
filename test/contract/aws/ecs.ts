// Amazon ECS (2014-11-13) inside the contract server: clusters, task definitions and Fargate
// tasks with the service's lifecycle (PROVISIONING → PENDING → RUNNING → DEACTIVATING → STOPPING →
// STOPPED), an ENI attachment with a private IPv4 address, containers that run a simulated
// program (workload.ts) honouring dependsOn, exit codes, stop codes and reasons, and the awslogs
// driver writing to LogsSim. The rules the model's documentation states but its shapes cannot
// (Fargate task sizes, awsvpc port mappings, family and startedBy characters) are checked here.
import { randomUUID } from 'node:crypto';
import { AwsError } from './errors.ts';
import type { LogsSim } from './logs.ts';
import { parseProgram, ProcessSim } from './workload.ts';

type Body = Record<string, unknown>;
type Json = Record<string, unknown>;

export interface EcsTimings {
  /** PROVISIONING → PENDING (ENI attached). */
  provisionMs: number;
  /** PENDING → RUNNING (images pulled). */
  pendingMs: number;
  /** STOPPING → STOPPED. */
  stopMs: number;
}

export interface EcsOptions {
  region: string;
  account: string;
  clusters: string[];
  timings: EcsTimings;
  /** Fargate's concurrent task quota: RunTask beyond it answers with a failure, as the service does. */
  maxRunningTasks: number;
}

/** Fargate task sizes: RegisterTaskDefinitionRequest.cpu's documentation in the ECS model. */
export function validFargateSize(cpu: number, memory: number): boolean {
  const steps = (from: number, to: number, step: number) => memory >= from && memory <= to && (memory - from) % step === 0;
  switch (cpu) {
    case 256:
      return [512, 1024, 2048].includes(memory);
    case 512:
      return steps(1024, 4096, 1024);
    case 1024:
      return steps(2048, 8192, 1024);
    case 2048:
      return steps(4096, 16384, 1024);
    case 4096:
      return steps(8192, 30720, 1024);
    case 8192:
      return steps(16384, 61440, 4096);
    case 16384:
      return steps(32768, 122880, 8192);
    default:
      return false;
  }
}

interface TaskDefinition {
  arn: string;
  family: string;
  revision: number;
  status: 'ACTIVE' | 'INACTIVE';
  request: Body;
  registeredAt: number;
}

interface ContainerRun {
  json: Json;
  definition: Json;
  sim?: ProcessSim;
}

interface TaskSim {
  json: Json;
  containers: ContainerRun[];
  definition: TaskDefinition;
  timers: NodeJS.Timeout[];
  stopping: boolean;
  clientToken: string | undefined;
}

const NAME = /^[A-Za-z0-9_-]+$/;

export class EcsSim {
  readonly tasks = new Map<string, TaskSim>();
  readonly definitions = new Map<string, TaskDefinition[]>();
  private readonly options: EcsOptions;
  private readonly logs: LogsSim;
  private ipCounter = 0;

  constructor(options: EcsOptions, logs: LogsSim) {
    this.options = options;
    this.logs = logs;
  }

  close(): void {
    for (const task of this.tasks.values()) {
      for (const timer of task.timers) clearTimeout(timer);
      for (const c of task.containers) c.sim?.stop();
    }
  }

  handle(operation: string, body: Body): unknown {
    switch (operation) {
      case 'DescribeClusters':
        return this.describeClusters(body);
      case 'RegisterTaskDefinition':
        return this.register(body);
      case 'DeregisterTaskDefinition':
        return this.deregister(body);
      case 'RunTask':
        return this.runTask(body);
      case 'DescribeTasks':
        return this.describeTasks(body);
      case 'ListTasks':
        return this.listTasks(body);
      case 'StopTask':
        return this.stopTask(body);
      default:
        throw new AwsError('UnknownOperationException', `the contract server does not implement ECS ${operation}`);
    }
  }

  private arn(kind: string, rest: string): string {
    return `arn:aws:ecs:${this.options.region}:${this.options.account}:${kind}/${rest}`;
  }

  private clusterName(body: Body): string {
    const given = (body.cluster as string | undefined) ?? 'default';
    const name = given.startsWith('arn:') ? given.slice(given.lastIndexOf('/') + 1) : given;
    if (!this.options.clusters.includes(name)) throw new AwsError('ClusterNotFoundException', 'Cluster not found.');
    return name;
  }

  private describeClusters(body: Body): unknown {
    const names = (body.clusters as string[] | undefined) ?? ['default'];
    const clusters: Json[] = [];
    const failures: Json[] = [];
    for (const given of names) {
      const name = given.startsWith('arn:') ? given.slice(given.lastIndexOf('/') + 1) : given;
      if (!this.options.clusters.includes(name)) {
        failures.push({ arn: this.arn('cluster', name), reason: 'MISSING' });
        continue;
      }
      const running = [...this.tasks.values()].filter((t) => t.json.clusterArn === this.arn('cluster', name) && t.json.lastStatus === 'RUNNING').length;
      clusters.push({
        clusterArn: this.arn('cluster', name),
        clusterName: name,
        status: 'ACTIVE',
        runningTasksCount: running,
        pendingTasksCount: 0,
        activeServicesCount: 0,
        registeredContainerInstancesCount: 0,
      });
    }
    return { clusters, failures };
  }

  private register(body: Body): unknown {
    const family = body.family as string;
    if (family.length > 255 || !NAME.test(family))
      throw new AwsError('ClientException', 'Family contains invalid characters: up to 255 letters, numbers, hyphens and underscores are allowed.');
    const containers = body.containerDefinitions as Json[];
    if (containers.length === 0) throw new AwsError('ClientException', 'Container list cannot be empty.');
    const fargate = ((body.requiresCompatibilities as string[] | undefined) ?? []).includes('FARGATE');
    const names = new Set<string>();
    for (const c of containers) {
      const name = c.name as string | undefined;
      if (!name || !NAME.test(name) || name.length > 255) throw new AwsError('ClientException', `Container name ${JSON.stringify(name)} is invalid.`);
      if (names.has(name)) throw new AwsError('ClientException', `Duplicate container name ${name}.`);
      names.add(name);
      if (!c.image) throw new AwsError('ClientException', `Container.image should not be null or empty (container ${name}).`);
      if (fargate) {
        for (const p of (c.portMappings as Json[] | undefined) ?? []) {
          if (p.hostPort !== undefined && p.hostPort !== p.containerPort)
            throw new AwsError('ClientException', 'When networkMode=awsvpc, the host ports and container ports in port mappings must match.');
        }
        if (c.privileged === true) throw new AwsError('ClientException', 'privileged is not supported on Fargate.');
        const timeout = c.stopTimeout as number | undefined;
        if (timeout !== undefined && (timeout < 0 || timeout > 120))
          throw new AwsError('ClientException', 'stopTimeout must be between 0 and 120 seconds on Fargate.');
      }
      const log = c.logConfiguration as Json | undefined;
      if (log?.logDriver === 'awslogs') {
        const options = (log.options as Record<string, string> | undefined) ?? {};
        if (!options['awslogs-group'] || !options['awslogs-region'])
          throw new AwsError('ClientException', 'Log driver awslogs option awslogs-group and awslogs-region are required.');
        if (fargate && !options['awslogs-stream-prefix']) throw new AwsError('ClientException', 'Log driver awslogs requires options: awslogs-stream-prefix.');
        if (fargate && !body.executionRoleArn)
          throw new AwsError('ClientException', 'Fargate requires task definition to have execution role ARN to support log driver awslogs.');
      }
      if (((c.secrets as unknown[] | undefined) ?? []).length > 0 && !body.executionRoleArn)
        throw new AwsError('ClientException', 'Fargate requires task definition to have execution role ARN to support ECR images or secrets.');
      for (const dep of (c.dependsOn as Json[] | undefined) ?? [])
        if (!containers.some((o) => o.name === dep.containerName))
          throw new AwsError('ClientException', `Container ${name} depends on unknown container ${String(dep.containerName)}.`);
    }
    if (fargate) {
      if (body.networkMode !== 'awsvpc') throw new AwsError('ClientException', 'Fargate only supports network mode ‘awsvpc’.');
      const cpu = Number(body.cpu);
      const memory = Number(body.memory);
      if (body.cpu === undefined || body.memory === undefined)
        throw new AwsError('ClientException', 'Fargate requires that "cpu" be defined at the task level.');
      if (!validFargateSize(cpu, memory))
        throw new AwsError('ClientException', `No Fargate configuration exists for given values: ${String(body.cpu)} CPU, ${String(body.memory)} memory.`);
      const sum = containers.reduce((total, c) => total + ((c.memory as number | undefined) ?? (c.memoryReservation as number | undefined) ?? 0), 0);
      if (sum > memory) throw new AwsError('ClientException', 'The sum of all container memory must be less than or equal to the task memory.');
      const cpuSum = containers.reduce((total, c) => total + ((c.cpu as number | undefined) ?? 0), 0);
      if (cpuSum > cpu) throw new AwsError('ClientException', 'The sum of all container cpu must be less than or equal to the task cpu.');
      for (const v of (body.volumes as Json[] | undefined) ?? [])
        if (v.host !== undefined || v.dockerVolumeConfiguration !== undefined)
          throw new AwsError('ClientException', 'Fargate supports only bind mounts and EFS volumes.');
    }
    const revisions = this.definitions.get(family) ?? [];
    const revision = revisions.length + 1;
    const definition: TaskDefinition = {
      arn: this.arn('task-definition', `${family}:${revision}`),
      family,
      revision,
      status: 'ACTIVE',
      request: body,
      registeredAt: Date.now(),
    };
    revisions.push(definition);
    this.definitions.set(family, revisions);
    return { taskDefinition: this.definitionJson(definition), ...(body.tags !== undefined && { tags: body.tags }) };
  }

  private definitionJson(d: TaskDefinition): Json {
    const { tags: _tags, ...request } = d.request;
    return {
      ...request,
      taskDefinitionArn: d.arn,
      revision: d.revision,
      status: d.status,
      compatibilities: ['EC2', 'FARGATE'],
      registeredAt: d.registeredAt / 1000,
      ...(d.status === 'INACTIVE' && { deregisteredAt: Date.now() / 1000 }),
    };
  }

  private findDefinition(reference: string): TaskDefinition | undefined {
    const text = reference.startsWith('arn:') ? reference.slice(reference.lastIndexOf('/') + 1) : reference;
    const [family, revision] = text.split(':');
    const revisions = this.definitions.get(family ?? '') ?? [];
    if (revision === undefined) return revisions.filter((d) => d.status === 'ACTIVE').at(-1);
    return revisions.find((d) => d.revision === Number(revision));
  }

  private deregister(body: Body): unknown {
    const definition = this.findDefinition(body.taskDefinition as string);
    if (!definition || !(body.taskDefinition as string).includes(':')) throw new AwsError('ClientException', 'The specified task definition does not exist.');
    definition.status = 'INACTIVE';
    return { taskDefinition: this.definitionJson(definition) };
  }

  private runTask(body: Body): unknown {
    const cluster = this.clusterName(body);
    const definition = this.findDefinition(body.taskDefinition as string);
    if (!definition) throw new AwsError('ClientException', 'TaskDefinition not found.');
    if (definition.status !== 'ACTIVE') throw new AwsError('ClientException', 'TaskDefinition is inactive');
    if (body.launchType === 'FARGATE') {
      const vpc = (body.networkConfiguration as Json | undefined)?.awsvpcConfiguration as Json | undefined;
      if (!vpc) throw new AwsError('InvalidParameterException', 'Network Configuration must be provided when networkMode awsvpc is specified.');
      for (const subnet of vpc.subnets as string[])
        if (!/^subnet-[0-9a-f]{8,17}$/.test(subnet))
          throw new AwsError('InvalidParameterException', `Error retrieving subnet information for [${subnet}]: The subnet ID '${subnet}' does not exist`);
      for (const group of (vpc.securityGroups as string[] | undefined) ?? [])
        if (!/^sg-[0-9a-f]{8,17}$/.test(group)) throw new AwsError('InvalidParameterException', `Error retrieving security group information for [${group}]`);
      if (!((definition.request.requiresCompatibilities as string[] | undefined) ?? []).includes('FARGATE'))
        throw new AwsError('InvalidParameterException', 'Task definition does not support launch_type FARGATE.');
    }
    const startedBy = body.startedBy as string | undefined;
    if (startedBy !== undefined && (startedBy.length > 36 || !NAME.test(startedBy)))
      throw new AwsError('InvalidParameterException', 'startedBy: up to 36 letters, numbers, hyphens and underscores are allowed.');
    const token = body.clientToken as string | undefined;
    if (token !== undefined) {
      if (token.length > 64) throw new AwsError('InvalidParameterException', 'clientToken: up to 64 characters.');
      const earlier = [...this.tasks.values()].filter((t) => t.clientToken === token);
      if (earlier.length > 0) return { tasks: earlier.map((t) => this.publicJson(t)), failures: [] };
    }
    const count = (body.count as number | undefined) ?? 1;
    if (count < 1 || count > 10) throw new AwsError('InvalidParameterException', 'count must be between 1 and 10.');
    const tasks: Json[] = [];
    const failures: Json[] = [];
    for (let i = 0; i < count; i++) {
      const running = [...this.tasks.values()].filter((t) => t.json.lastStatus !== 'STOPPED').length;
      if (running >= this.options.maxRunningTasks) {
        failures.push({ reason: "You've reached the limit on the number of tasks you can run concurrently" });
        continue;
      }
      tasks.push(this.startTask(cluster, definition, body, token));
    }
    return { tasks, failures };
  }

  private publicJson(task: TaskSim): Json {
    const { tags: _tags, ...rest } = task.json;
    return structuredClone(rest);
  }

  private startTask(cluster: string, definition: TaskDefinition, body: Body, clientToken: string | undefined): Json {
    const id = randomUUID().replaceAll('-', '');
    const taskArn = this.arn('task', `${cluster}/${id}`);
    const vpc = ((body.networkConfiguration as Json | undefined)?.awsvpcConfiguration as Json | undefined) ?? {};
    const request = definition.request;
    const now = Date.now() / 1000;
    const json: Json = {
      taskArn,
      clusterArn: this.arn('cluster', cluster),
      taskDefinitionArn: definition.arn,
      group: `family:${definition.family}`,
      launchType: body.launchType ?? 'FARGATE',
      platformVersion: body.platformVersion === 'LATEST' || body.platformVersion === undefined ? '1.4.0' : body.platformVersion,
      platformFamily: 'Linux',
      cpu: String(request.cpu),
      memory: String(request.memory),
      desiredStatus: 'RUNNING',
      lastStatus: 'PROVISIONING',
      createdAt: now,
      version: 1,
      availabilityZone: `${this.options.region}a`,
      ephemeralStorage: { sizeInGiB: 20 },
      attachments: [
        {
          id: randomUUID(),
          type: 'ElasticNetworkInterface',
          status: 'PRECREATED',
          details: [{ name: 'subnetId', value: (vpc.subnets as string[] | undefined)?.[0] ?? '' }],
        },
      ],
      overrides: { containerOverrides: (request.containerDefinitions as Json[]).map((c) => ({ name: c.name })), inferenceAcceleratorOverrides: [] },
      containers: [],
      tags: body.tags ?? [],
      ...(body.startedBy !== undefined && { startedBy: body.startedBy }),
      enableExecuteCommand: body.enableExecuteCommand === true,
    };
    const containers: ContainerRun[] = (request.containerDefinitions as Json[]).map((definitionJson) => ({
      definition: definitionJson,
      json: {
        containerArn: this.arn('container', `${cluster}/${id}/${randomUUID()}`),
        taskArn,
        name: definitionJson.name,
        image: definitionJson.image,
        lastStatus: 'PENDING',
        networkInterfaces: [],
        cpu: String(definitionJson.cpu ?? 0),
        ...(definitionJson.memory !== undefined && { memory: String(definitionJson.memory) }),
        ...(definitionJson.memoryReservation !== undefined && { memoryReservation: String(definitionJson.memoryReservation) }),
      },
    }));
    json.containers = containers.map((c) => c.json);
    const task: TaskSim = { json, containers, definition, timers: [], stopping: false, clientToken };
    this.tasks.set(taskArn, task);
    const { provisionMs, pendingMs } = this.options.timings;
    task.timers.push(setTimeout(() => this.attach(task), provisionMs));
    task.timers.push(setTimeout(() => this.pullAndStart(task), provisionMs + pendingMs));
    return this.publicJson(task);
  }

  private touch(task: TaskSim): void {
    task.json.version = (task.json.version as number) + 1;
  }

  private attach(task: TaskSim): void {
    if (task.stopping) return;
    this.ipCounter++;
    const ip = `10.0.${(this.ipCounter >> 8) & 255}.${this.ipCounter & 255}`;
    const attachment = (task.json.attachments as Json[])[0]!;
    attachment.status = 'ATTACHED';
    attachment.details = [
      ...(attachment.details as Json[]),
      { name: 'networkInterfaceId', value: `eni-${randomUUID().replaceAll('-', '').slice(0, 17)}` },
      { name: 'macAddress', value: '0a:1b:2c:3d:4e:5f' },
      { name: 'privateDnsName', value: `ip-${ip.replaceAll('.', '-')}.ec2.internal` },
      { name: 'privateIPv4Address', value: ip },
    ];
    task.json.lastStatus = 'PENDING';
    task.json.connectivity = 'CONNECTED';
    task.json.connectivityAt = Date.now() / 1000;
    task.json.pullStartedAt = Date.now() / 1000;
    for (const c of task.containers) c.json.networkInterfaces = [{ attachmentId: attachment.id, privateIpv4Address: ip }];
    this.touch(task);
  }

  private pullAndStart(task: TaskSim): void {
    if (task.stopping) return;
    task.json.pullStoppedAt = Date.now() / 1000;
    for (const c of task.containers) {
      const log = c.definition.logConfiguration as Json | undefined;
      const options = (log?.options as Record<string, string> | undefined) ?? {};
      if (log?.logDriver === 'awslogs' && !this.logs.groups.has(options['awslogs-group']!)) {
        if (options['awslogs-create-group'] === 'true') this.logs.createGroup(options['awslogs-group']!);
        else
          return this.finishStop(
            task,
            'TaskFailedToStart',
            `ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not exist.`,
          );
      }
      if (/does-not-exist/.test(c.definition.image as string)) {
        c.json.reason = `CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref ${String(c.definition.image)}: not found`;
        return this.finishStop(task, 'TaskFailedToStart', c.json.reason as string);
      }
      c.json.imageDigest = `sha256:${Buffer.from(String(c.definition.image)).toString('hex').padEnd(64, '0').slice(0, 64)}`;
    }
    task.json.lastStatus = 'RUNNING';
    task.json.startedAt = Date.now() / 1000;
    this.touch(task);
    this.startReady(task);
  }

  /** Starts every PENDING container whose dependsOn conditions hold; stops the task when one can never hold. */
  private startReady(task: TaskSim): void {
    if (task.stopping) return;
    for (const c of task.containers) {
      if (c.json.lastStatus !== 'PENDING') continue;
      let ready = true;
      for (const dep of (c.definition.dependsOn as Json[] | undefined) ?? []) {
        const other = task.containers.find((o) => o.json.name === dep.containerName)!;
        const state = other.json.lastStatus;
        const exit = other.json.exitCode;
        const met =
          dep.condition === 'START'
            ? state !== 'PENDING'
            : dep.condition === 'COMPLETE'
              ? state === 'STOPPED'
              : dep.condition === 'SUCCESS'
                ? state === 'STOPPED' && exit === 0
                : state === 'RUNNING';
        const impossible = dep.condition === 'SUCCESS' && state === 'STOPPED' && exit !== 0;
        if (impossible) {
          c.json.lastStatus = 'STOPPED';
          c.json.reason = `CannotStartContainerError: dependency ${String(dep.containerName)} did not meet condition SUCCESS (exit code ${String(exit)})`;
          return this.stop(task, 'TaskFailedToStart', `Essential container in task exited`);
        }
        if (!met) ready = false;
      }
      if (ready) this.startContainer(task, c);
    }
  }

  private startContainer(task: TaskSim, c: ContainerRun): void {
    const argv = [...((c.definition.entryPoint as string[] | undefined) ?? []), ...((c.definition.command as string[] | undefined) ?? [])];
    const env = Object.fromEntries(((c.definition.environment as Json[] | undefined) ?? []).map((e) => [e.name as string, e.value as string]));
    for (const s of (c.definition.secrets as Json[] | undefined) ?? []) env[s.name as string] = `(secret from ${String(s.valueFrom)})`;
    const log = c.definition.logConfiguration as Json | undefined;
    const options = (log?.options as Record<string, string> | undefined) ?? {};
    const taskId = (task.json.taskArn as string).slice((task.json.taskArn as string).lastIndexOf('/') + 1);
    const stream = `${options['awslogs-stream-prefix']}/${String(c.json.name)}/${taskId}`;
    c.json.lastStatus = 'RUNNING';
    c.json.runtimeId = `${taskId}-${randomUUID().slice(0, 8)}`;
    this.touch(task);
    c.sim = new ProcessSim(
      parseProgram(argv),
      env,
      (line) => {
        if (log?.logDriver === 'awslogs') this.logs.append(options['awslogs-group']!, stream, line);
      },
      (code) => this.containerExited(task, c, code),
    );
    c.sim.start();
  }

  private containerExited(task: TaskSim, c: ContainerRun, code: number): void {
    c.json.lastStatus = 'STOPPED';
    c.json.exitCode = code;
    this.touch(task);
    if (task.stopping) return this.maybeStopped(task);
    if (c.definition.essential !== false) return this.stop(task, 'EssentialContainerExited', 'Essential container in task exited');
    this.startReady(task);
  }

  /** Begins stopping: DEACTIVATING (ENI going), containers get SIGTERM, STOPPED after stopMs. */
  stop(task: TaskSim, stopCode: string, reason: string): void {
    if (task.stopping) return;
    task.stopping = true;
    task.json.desiredStatus = 'STOPPED';
    task.json.stopCode = stopCode;
    task.json.stoppedReason = reason;
    task.json.stoppingAt = Date.now() / 1000;
    task.json.lastStatus = task.json.lastStatus === 'RUNNING' ? 'DEACTIVATING' : task.json.lastStatus;
    this.touch(task);
    for (const c of task.containers) {
      if (c.json.lastStatus === 'RUNNING') c.sim?.stop();
      else if (c.json.lastStatus === 'PENDING') c.json.lastStatus = 'STOPPED';
    }
    this.maybeStopped(task);
  }

  private maybeStopped(task: TaskSim): void {
    if (task.containers.some((c) => c.json.lastStatus === 'RUNNING')) return;
    if (task.json.lastStatus === 'STOPPING' || task.json.lastStatus === 'STOPPED') return;
    task.json.lastStatus = 'STOPPING';
    task.json.executionStoppedAt = Date.now() / 1000;
    this.touch(task);
    task.timers.push(setTimeout(() => this.markStopped(task), this.options.timings.stopMs));
  }

  private finishStop(task: TaskSim, stopCode: string, reason: string): void {
    this.stop(task, stopCode, reason);
  }

  private markStopped(task: TaskSim): void {
    task.json.lastStatus = 'STOPPED';
    task.json.stoppedAt = Date.now() / 1000;
    for (const a of task.json.attachments as Json[]) a.status = 'DELETED';
    this.touch(task);
  }

  private findTask(reference: string): TaskSim | undefined {
    if (reference.startsWith('arn:')) return this.tasks.get(reference);
    return [...this.tasks.values()].find((t) => (t.json.taskArn as string).endsWith(`/${reference}`));
  }

  private describeTasks(body: Body): unknown {
    const cluster = this.clusterName(body);
    const withTags = ((body.include as string[] | undefined) ?? []).includes('TAGS');
    const tasks: Json[] = [];
    const failures: Json[] = [];
    for (const reference of body.tasks as string[]) {
      const task = this.findTask(reference);
      if (!task || task.json.clusterArn !== this.arn('cluster', cluster)) {
        failures.push({ arn: reference, reason: 'MISSING' });
        continue;
      }
      const { tags, ...rest } = task.json;
      tasks.push(structuredClone(withTags ? { ...rest, tags } : rest));
    }
    if ((body.tasks as string[]).length > 100) throw new AwsError('InvalidParameterException', 'Tasks cannot be longer than 100.');
    return { tasks, failures };
  }

  private listTasks(body: Body): unknown {
    const cluster = this.clusterName(body);
    const desired = (body.desiredStatus as string | undefined) ?? 'RUNNING';
    const all = [...this.tasks.values()].filter(
      (t) =>
        t.json.clusterArn === this.arn('cluster', cluster) &&
        t.json.desiredStatus === desired &&
        (body.startedBy === undefined || t.json.startedBy === body.startedBy) &&
        (body.family === undefined || t.definition.family === body.family),
    );
    const max = (body.maxResults as number | undefined) ?? 100;
    const from = body.nextToken === undefined ? 0 : Number(Buffer.from(body.nextToken as string, 'base64').toString());
    const page = all.slice(from, from + max);
    const next = from + max < all.length ? Buffer.from(String(from + max)).toString('base64') : undefined;
    return { taskArns: page.map((t) => t.json.taskArn), ...(next !== undefined && { nextToken: next }) };
  }

  private stopTask(body: Body): unknown {
    this.clusterName(body);
    const task = this.findTask(body.task as string);
    if (!task) throw new AwsError('InvalidParameterException', 'The referenced task was not found.');
    this.stop(task, 'UserInitiated', (body.reason as string | undefined) ?? 'Task stopped by user');
    return { task: this.publicJson(task) };
  }
}
