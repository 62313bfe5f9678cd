// A local HTTPS stand-in for Azure Resource Manager's Microsoft.ContainerInstance API, written
// from the published description (containerInstance.json, 2023-05-01) and its examples. Every
// request is matched to an operation and validated (path, api-version, query types, body schema);
// a request the schema rejects is answered 400 and recorded in `violations` with the schema path,
// and tests assert there are none. Responses start from the examples' shapes and are validated
// too. Container groups live through Pending → Running → Terminated as their commands say
// (simulated-process.ts), with restarts per restartPolicy; faults (429, 5xx, 401, quota) can be
// injected per operation.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { createSelfSignedCertificate, generateKeyPair } from '../../../src/kubelet-api/x509.ts';
import { AciSpec, type MatchedOperation } from './schema.ts';
import { linesAt, programOf, type Program } from './simulated-process.ts';

export interface RecordedRequest {
  method: string;
  path: string;
  operationId: string | undefined;
  body: unknown;
  status: number;
}

export interface Fault {
  /** e.g. ContainerGroups_CreateOrUpdate; undefined: any operation. */
  operationId?: string;
  status: number;
  code: string;
  message?: string;
  retryAfterSeconds?: number;
  /** How many matching requests fail (default 1). */
  times?: number;
}

export interface Timings {
  /** From PUT until the group is provisioned and its containers start. */
  provisionMs: number;
  /** Between a container's exit and its restart. */
  restartDelayMs: number;
}

interface ContainerSim {
  name: string;
  program: Program;
}

interface GroupState {
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  body: Record<string, unknown>;
  createdAt: number;
  restartPolicy: string;
  inits: ContainerSim[];
  containers: ContainerSim[];
  provisioningFailure?: string;
}

interface ViewState {
  state: 'Waiting' | 'Running' | 'Terminated';
  startTime?: number;
  finishTime?: number;
  exitCode?: number;
  detailStatus?: string;
  restartCount: number;
  previous?: { startTime: number; finishTime: number; exitCode: number };
  /** When the current run started (for logs). */
  runStart?: number;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The state of a container at `now` whose first run starts at `start` (undefined: not started). */
function containerAt(sim: ContainerSim, start: number | undefined, now: number, policy: string, restartDelayMs: number): ViewState {
  if (start === undefined || now < start) return { state: 'Waiting', detailStatus: 'ContainerCreating', restartCount: 0 };
  let runStart = start;
  let restartCount = 0;
  let previous: ViewState['previous'];
  for (;;) {
    const end = runStart + sim.program.durationMs;
    if (now < end) return { state: 'Running', startTime: runStart, restartCount, ...(previous && { previous }), runStart };
    const exitCode = sim.program.exitCode;
    const restarts = policy === 'Always' || (policy === 'OnFailure' && exitCode !== 0);
    const finished = { startTime: runStart, finishTime: end, exitCode };
    if (!restarts) return { state: 'Terminated', ...finished, restartCount, ...(previous && { previous }), runStart };
    const next = end + restartDelayMs;
    if (now < next)
      return { state: 'Terminated', ...finished, detailStatus: 'CrashLoopBackOff: back-off restarting', restartCount, ...(previous && { previous }), runStart };
    previous = finished;
    restartCount++;
    runStart = next;
  }
}

export class AciContractServer {
  readonly spec = new AciSpec();
  readonly requests: RecordedRequest[] = [];
  /** Schema problems of requests (and of our own responses): a test fails when this is not empty. */
  readonly violations: string[] = [];
  /** Names of container groups created and deleted, in order. */
  readonly created: string[] = [];
  readonly deleted: string[] = [];
  readonly token: string;
  readonly caPem: string;
  timings: Timings;
  private readonly faults: Fault[] = [];
  private readonly groups = new Map<string, GroupState>();
  private readonly provisioningFailures = new Map<string, string>();
  private readonly execSessions = new Map<string, { password: string; command: string }>();
  private readonly server: https.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private origin = '';

  private constructor(token: string, timings: Timings) {
    this.token = token;
    this.timings = timings;
    const keys = generateKeyPair();
    this.caPem = createSelfSignedCertificate(keys, { commonName: 'aci-contract' }, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    this.server = https.createServer({ key: keys.keyPem, cert: this.caPem }, (req, res) => void this.handle(req, res));
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as Socket, head));
  }

  static async start(options: { token?: string; timings?: Partial<Timings> } = {}): Promise<AciContractServer> {
    const server = new AciContractServer(options.token ?? `test-${randomBytes(8).toString('hex')}`, {
      provisionMs: 300,
      restartDelayMs: 500,
      ...options.timings,
    });
    await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
    server.origin = `https://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    return server;
  }

  get url(): string {
    return this.origin;
  }

  /** The next `times` requests to the operation fail with this status and ARM error code. */
  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  /** The next group created under this name fails to provision with the message. */
  failProvisioning(groupName: string, message: string): void {
    this.provisioningFailures.set(groupName, message);
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /** Requests to an operation, e.g. count('ContainerGroups_CreateOrUpdate'). */
  count(operationId: string): number {
    return this.requests.filter((r) => r.operationId === operationId).length;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.origin);
    const method = req.method ?? 'GET';
    const record: RecordedRequest = { method, path: url.pathname, operationId: undefined, body: undefined, status: 0 };
    this.requests.push(record);
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      const payload = body === undefined ? '' : JSON.stringify(body);
      res.writeHead(status, { ...(payload && { 'content-type': 'application/json; charset=utf-8' }), ...headers });
      res.end(payload);
    };
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) => send(status, { error: { code, message } }, headers);

    const op = this.spec.match(method, url.pathname);
    if (!op) {
      this.violations.push(`${method} ${url.pathname}: no operation in containerInstance.json has this method and path`);
      return error(404, 'ContractViolation', `no operation for ${method} ${url.pathname}`);
    }
    record.operationId = op.operationId;
    if (req.headers.authorization !== `Bearer ${this.token}`) return error(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    const problems = this.validateRequest(op, url, text, record);
    if (problems.length) {
      this.violations.push(...problems.map((p) => `${op.operationId}: ${p}`));
      return error(400, 'ContractViolation', problems.join('; '));
    }
    const fault = this.faults.find((f) => f.operationId === undefined || f.operationId === op.operationId);
    if (fault) {
      if (--fault.times! <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      return error(
        fault.status,
        fault.code,
        fault.message ?? `injected ${fault.code}`,
        fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {},
      );
    }
    const answer = this.operate(op, url, record.body);
    if (answer.body !== undefined) {
      const schema = op.responses[String(answer.status)]?.schema;
      if (schema) {
        const bad = this.spec.validate(answer.body, schema, 'response', '$response');
        if (bad.length) this.violations.push(...bad.map((p) => `${op.operationId} response ${answer.status}: ${p}`));
      }
    }
    if (answer.status >= 400) return error(answer.status, answer.code ?? 'Error', answer.message ?? '');
    return send(answer.status, answer.body);
  }

  private validateRequest(op: MatchedOperation, url: URL, text: string, record: RecordedRequest): string[] {
    const problems: string[] = [];
    for (const p of op.parameters) {
      if (p.in === 'query') {
        const value = url.searchParams.get(p.name);
        if (value === null) {
          if (p.required) problems.push(`query ${p.name}: required`);
          continue;
        }
        if (p.name === 'api-version' && value !== this.spec.apiVersion) problems.push(`query api-version: ${value}, the contract is ${this.spec.apiVersion}`);
        const bad = this.spec.checkQuery(p, value);
        if (bad) problems.push(bad);
      } else if (p.in === 'path') {
        if (!op.pathParams[p.name]) problems.push(`path ${p.name}: required`);
      } else if (p.in === 'body') {
        if (!text) {
          if (p.required) problems.push(`body ${p.name}: required`);
          continue;
        }
        try {
          record.body = JSON.parse(text);
        } catch {
          problems.push(`body ${p.name}: not JSON`);
          continue;
        }
        problems.push(...this.spec.validate(record.body, p.schema ?? {}, 'request', `$${p.name}`));
      }
    }
    const declared = new Set(op.parameters.filter((p) => p.in === 'query').map((p) => p.name));
    for (const key of url.searchParams.keys()) if (!declared.has(key)) problems.push(`query ${key}: not a parameter of ${op.operationId}`);
    if (text && !op.parameters.some((p) => p.in === 'body')) problems.push(`${op.operationId} takes no body`);
    return problems;
  }

  private operate(op: MatchedOperation, url: URL, body: unknown): { status: number; body?: unknown; code?: string; message?: string } {
    const name = op.pathParams.containerGroupName ?? '';
    const group = this.groups.get(name);
    const notFound = {
      status: 404,
      code: 'ResourceNotFound',
      message: `The Resource 'Microsoft.ContainerInstance/containerGroups/${name}' under resource group '${op.pathParams.resourceGroupName}' was not found.`,
    };
    switch (op.operationId) {
      case 'ContainerGroups_ListByResourceGroup':
      case 'ContainerGroups_List':
        return { status: 200, body: { value: [...this.groups.values()].map((g) => this.render(g, false)) } };
      case 'ContainerGroups_Get':
        return group ? { status: 200, body: this.render(group, true) } : notFound;
      case 'ContainerGroups_CreateOrUpdate':
        return this.createOrUpdate(op, name, body as Record<string, unknown>);
      case 'ContainerGroups_Delete': {
        if (!group) return { status: 204 };
        const rendered = this.render(group, true);
        this.groups.delete(name);
        this.deleted.push(name);
        return { status: 200, body: rendered };
      }
      case 'Location_ListUsage': {
        const usage = this.spec.example('ContainerGroupUsage.json', '200') as { value: { currentValue: number }[] };
        usage.value[0]!.currentValue = this.groups.size;
        return { status: 200, body: usage };
      }
      case 'Containers_ListLogs': {
        if (!group) return notFound;
        const container = op.pathParams.containerName ?? '';
        const view = this.view(group, container);
        if (!view) return { status: 404, code: 'ContainerNotFound', message: `container ${container} not found` };
        const sim = [...group.inits, ...group.containers].find((c) => c.name === container)!;
        let lines =
          view.sim.runStart === undefined
            ? []
            : linesAt(sim.program, Date.now() - view.sim.runStart).map((l) => ({ at: view.sim.runStart! + l.atMs, text: l.text }));
        const tail = url.searchParams.get('tail');
        if (tail !== null) lines = lines.slice(Math.max(0, lines.length - Number(tail)));
        const stamped = url.searchParams.get('timestamps') === 'true';
        const content = lines.map((l) => `${stamped ? `${new Date(l.at).toISOString()} ` : ''}${l.text}\n`).join('');
        return { status: 200, body: { content } };
      }
      case 'Containers_ExecuteCommand': {
        if (!group) return notFound;
        const view = this.view(group, op.pathParams.containerName ?? '');
        if (!view) return { status: 404, code: 'ContainerNotFound', message: 'container not found' };
        if (view.sim.state !== 'Running') return { status: 409, code: 'ContainerNotRunning', message: 'the container is not running' };
        const id = randomBytes(8).toString('hex');
        const password = randomBytes(12).toString('hex');
        this.execSessions.set(id, { password, command: (body as { command?: string }).command ?? '' });
        return { status: 200, body: { webSocketUri: `${this.origin.replace(/^https/, 'wss')}/exec-sessions/${id}`, password } };
      }
      default:
        return { status: 501, code: 'NotImplementedInContractServer', message: `${op.operationId} is not simulated` };
    }
  }

  private createOrUpdate(op: MatchedOperation, name: string, body: Record<string, unknown>) {
    const props = body.properties as {
      containers: { name: string; properties: { command?: string[] } }[];
      initContainers?: { name: string; properties: { command?: string[] } }[];
      restartPolicy?: string;
      osType: string;
      ipAddress?: { type?: string };
    };
    const existing = this.groups.get(name);
    const failure = this.provisioningFailures.get(name);
    this.provisioningFailures.delete(name);
    const state: GroupState = {
      name,
      subscriptionId: op.pathParams.subscriptionId ?? '',
      resourceGroup: op.pathParams.resourceGroupName ?? '',
      body,
      createdAt: Date.now(),
      restartPolicy: props.restartPolicy ?? 'Always',
      inits: (props.initContainers ?? []).map((c) => ({ name: c.name, program: programOf(c.properties.command) })),
      containers: props.containers.map((c) => ({ name: c.name, program: programOf(c.properties.command) })),
      ...(failure && { provisioningFailure: failure }),
    };
    this.groups.set(name, state);
    if (!existing) this.created.push(name);
    return { status: existing ? 200 : 201, body: this.render(state, true) };
  }

  /** Instance views of every container at this moment. */
  private views(g: GroupState): { inits: ViewState[]; containers: ViewState[]; provisioned: boolean } {
    const now = Date.now();
    const provisioned = !g.provisioningFailure && now >= g.createdAt + this.timings.provisionMs;
    let start: number | undefined = provisioned ? g.createdAt + this.timings.provisionMs : undefined;
    const inits = g.inits.map((c) => {
      const v = containerAt(c, start, now, 'Never', 0);
      start = v.state === 'Terminated' && v.exitCode === 0 ? v.finishTime : undefined;
      return v;
    });
    const containers = g.containers.map((c) => containerAt(c, start, now, g.restartPolicy, this.timings.restartDelayMs));
    return { inits, containers, provisioned };
  }

  private view(g: GroupState, container: string): { sim: ViewState } | undefined {
    const views = this.views(g);
    const i = g.containers.findIndex((c) => c.name === container);
    if (i >= 0) return { sim: views.containers[i]! };
    const j = g.inits.findIndex((c) => c.name === container);
    return j >= 0 ? { sim: views.inits[j]! } : undefined;
  }

  /** The group as ARM shows it: the PUT body with the read-only parts filled in (instance views only on a GET). */
  private render(g: GroupState, instanceView: boolean): Record<string, unknown> {
    const body = structuredClone(g.body);
    const props = body.properties as Record<string, unknown> & {
      containers: { properties: Record<string, unknown> }[];
      initContainers?: { properties: Record<string, unknown> }[];
      ipAddress?: Record<string, unknown>;
    };
    const { inits, containers, provisioned } = this.views(g);
    const failed = g.provisioningFailure !== undefined;
    const stateOf = (v: ViewState) => ({
      state: v.state,
      ...(v.startTime !== undefined && { startTime: iso(v.startTime) }),
      ...(v.finishTime !== undefined && { finishTime: iso(v.finishTime) }),
      ...(v.exitCode !== undefined && { exitCode: v.exitCode }),
      detailStatus: v.detailStatus ?? (v.state === 'Terminated' ? (v.exitCode === 0 ? 'Completed' : 'Error') : ''),
    });
    // Events as ACI's examples show them: one entry per kind, with a count and first/last times.
    const viewOf = (v: ViewState, image: unknown) => ({
      restartCount: v.restartCount,
      currentState: stateOf(v),
      ...(v.previous && { previousState: stateOf({ state: 'Terminated', ...v.previous, restartCount: 0 }) }),
      events: [
        {
          count: 1,
          firstTimestamp: iso(g.createdAt),
          lastTimestamp: iso(g.createdAt),
          name: 'Pulling',
          message: `pulling image "${String(image)}"`,
          type: 'Normal',
        },
        ...(v.startTime !== undefined
          ? [
              {
                count: 1,
                firstTimestamp: iso(g.createdAt + this.timings.provisionMs),
                lastTimestamp: iso(g.createdAt + this.timings.provisionMs),
                name: 'Pulled',
                message: `Successfully pulled image "${String(image)}"`,
                type: 'Normal',
              },
              {
                count: v.restartCount + 1,
                firstTimestamp: iso(g.createdAt),
                lastTimestamp: iso(v.startTime),
                name: 'Started',
                message: 'Started container',
                type: 'Normal',
              },
            ]
          : []),
      ],
    });
    body.id = `/subscriptions/${g.subscriptionId}/resourceGroups/${g.resourceGroup}/providers/Microsoft.ContainerInstance/containerGroups/${g.name}`;
    body.name = g.name;
    body.type = 'Microsoft.ContainerInstance/containerGroups';
    props.provisioningState = failed ? 'Failed' : provisioned ? 'Succeeded' : 'Creating';
    if (props.ipAddress) props.ipAddress.ip = `10.${(g.createdAt >> 16) & 255}.${(g.createdAt >> 8) & 255}.${g.createdAt & 255 || 1}`;
    if (instanceView) {
      props.containers.forEach((c, i) => (c.properties.instanceView = viewOf(containers[i]!, c.properties.image)));
      props.initContainers?.forEach((c, i) => (c.properties.instanceView = viewOf(inits[i]!, c.properties.image)));
      const running = containers.some((v) => v.state === 'Running' || v.detailStatus?.startsWith('CrashLoopBackOff'));
      const allOk = containers.every((v) => v.state === 'Terminated' && v.exitCode === 0);
      props.instanceView = {
        state: failed
          ? 'Failed'
          : !provisioned
            ? 'Pending'
            : running
              ? 'Running'
              : containers.every((v) => v.state === 'Terminated')
                ? allOk
                  ? 'Succeeded'
                  : 'Failed'
                : 'Pending',
        events: failed
          ? [
              {
                count: 1,
                firstTimestamp: iso(g.createdAt),
                lastTimestamp: iso(g.createdAt),
                name: 'ProvisioningFailed',
                message: g.provisioningFailure,
                type: 'Warning',
              },
            ]
          : [],
      };
    }
    // Secrets are never shown back (ARM blanks secure values and registry passwords).
    for (const c of [...props.containers, ...(props.initContainers ?? [])]) {
      for (const e of (c.properties.environmentVariables as { secureValue?: string }[] | undefined) ?? []) delete e.secureValue;
    }
    for (const v of (props.volumes as { secret?: Record<string, string> }[] | undefined) ?? []) if (v.secret) v.secret = {};
    for (const r of (props.imageRegistryCredentials as { password?: string }[] | undefined) ?? []) delete r.password;
    const diagnostics = props.diagnostics as { logAnalytics?: { workspaceKey?: string } } | undefined;
    if (diagnostics?.logAnalytics) diagnostics.logAnalytics.workspaceKey = '';
    return body;
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const id = /^\/exec-sessions\/([0-9a-f]+)$/.exec(req.url ?? '')?.[1];
    const session = id ? this.execSessions.get(id) : undefined;
    if (!session) {
      socket.destroy();
      return;
    }
    this.execSessions.delete(id!);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.runExec(ws, session));
  }

  /** The exec terminal: the password first, then `echo …` prints and closes, `cat` echoes input until the client closes. */
  private runExec(ws: WebSocket, session: { password: string; command: string }): void {
    let authenticated = false;
    ws.on('message', (data: Buffer) => {
      if (!authenticated) {
        authenticated = data.toString() === session.password;
        if (!authenticated) return ws.close(4001, 'bad password');
        const echo = /^echo (.*)$/.exec(session.command);
        if (echo) {
          ws.send(`${echo[1]!.replace(/^'(.*)'$/, '$1')}\r\n`);
          ws.close(1000);
        } else if (session.command !== 'cat') ws.close(1000);
        return;
      }
      ws.send(data);
    });
  }
}
