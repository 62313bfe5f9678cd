// A local contract server for Amazon ECS and CloudWatch Logs: HTTP on 127.0.0.1 speaking
// awsJson1_1 (POST /, X-Amz-Target "<targetPrefix>.<Operation>"), signature V4 checked against
// the test credentials, every request validated against the official service model
// (test/contract/specs/aws/, botocore 1.29.27), every answer validated against the model's output
// shape too. A request the model rejects is answered with a ValidationException naming the shape
// path and recorded in `violations`, which the tests assert empty. Faults can be injected per
// operation (throttling, 5xx, access denied); Fargate's task quota is `maxRunningTasks`.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EcsSim, type EcsTimings } from './ecs.ts';
import { AwsError } from './errors.ts';
import { LogsSim } from './logs.ts';
import { loadModel, validateShape, type ServiceModel } from './model.ts';

export const TEST_CREDENTIALS = { accessKeyId: 'AKIDFARGATECONTRACT1', secretAccessKey: 'fargate-contract-test-secret' };

/**
 * Members the live API added after the stored model (botocore 1.29.27, December 2022) and that the
 * current SDK sends on its own: RunTask's idempotency token (added in 2023, filled by the SDK when
 * the caller gives none). Accepted and honoured; anything else unknown is a violation.
 */
const NEWER_MEMBERS: Record<string, string[]> = { RunTask: ['clientToken'] };

export interface AwsContractServerOptions {
  region?: string;
  clusters?: string[];
  timings?: Partial<EcsTimings>;
  maxRunningTasks?: number;
  /** Log groups that exist from the start. */
  logGroups?: string[];
}

export interface RecordedRequest {
  service: 'ecs' | 'logs';
  operation: string;
  body: Record<string, unknown>;
  status: number;
  errorType?: string;
}

export interface Fault {
  /** Only this operation (default: any). */
  operation?: string;
  type: string;
  status: number;
  message?: string;
  /** How many requests it answers (default 1). */
  times?: number;
}

/** Faults by name, as the services send them. */
export const FAULTS = {
  throttling: { type: 'ThrottlingException', status: 400, message: 'Rate exceeded' },
  serverError: { type: 'ServerException', status: 500, message: 'Service encountered an internal error' },
  unavailable: { type: 'ServiceUnavailableException', status: 503, message: 'Service unavailable' },
  accessDenied: {
    type: 'AccessDeniedException',
    status: 400,
    message: 'User: arn:aws:iam::123456789012:user/vk is not authorized to perform: ecs:RunTask on resource: *',
  },
} satisfies Record<string, Fault>;

interface Service {
  name: 'ecs' | 'logs';
  model: ServiceModel;
  handle(operation: string, body: Record<string, unknown>): unknown;
}

export class AwsContractServer {
  readonly ecs: EcsSim;
  readonly logs: LogsSim;
  readonly requests: RecordedRequest[] = [];
  readonly violations: string[] = [];
  readonly region: string;
  private readonly faults: (Fault & { left: number })[] = [];
  private readonly services: Map<string, Service>;
  private readonly server: http.Server;
  url = '';

  private constructor(options: AwsContractServerOptions) {
    this.region = options.region ?? 'us-east-1';
    const account = '123456789012';
    this.logs = new LogsSim(this.region, account);
    for (const group of options.logGroups ?? []) this.logs.createGroup(group);
    this.ecs = new EcsSim(
      {
        region: this.region,
        account,
        clusters: options.clusters ?? ['vk-fargate'],
        timings: { provisionMs: 100, pendingMs: 200, stopMs: 100, ...options.timings },
        maxRunningTasks: options.maxRunningTasks ?? 1000,
      },
      this.logs,
    );
    const ecsModel = loadModel('ecs/2014-11-13');
    const logsModel = loadModel('logs/2014-03-28');
    this.services = new Map([
      [ecsModel.metadata.targetPrefix, { name: 'ecs', model: ecsModel, handle: (op, body) => this.ecs.handle(op, body) }],
      [logsModel.metadata.targetPrefix, { name: 'logs', model: logsModel, handle: (op, body) => this.logs.handle(op, body) }],
    ]);
    this.server = http.createServer((req, res) => void this.serve(req, res));
  }

  static async start(options: AwsContractServerOptions = {}): Promise<AwsContractServer> {
    const server = new AwsContractServer(options);
    await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
    server.url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    return server;
  }

  inject(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** Requests for an operation (all services when none is given). */
  calls(operation?: string): RecordedRequest[] {
    return operation ? this.requests.filter((r) => r.operation === operation) : this.requests;
  }

  async close(): Promise<void> {
    this.ecs.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const target = String(req.headers['x-amz-target'] ?? '');
    const [prefix = '', operation = ''] = target.split('.');
    const service = this.services.get(prefix);
    let body: Record<string, unknown> = {};
    const record: RecordedRequest = { service: service?.name ?? 'ecs', operation, body, status: 200 };
    const reply = (status: number, payload: unknown, errorType?: string) => {
      record.status = status;
      if (errorType) record.errorType = errorType;
      const text = JSON.stringify(payload);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': randomUUID(),
        ...(errorType && { 'x-amzn-errortype': errorType }),
      });
      res.end(text);
    };
    const fail = (err: AwsError) => reply(err.status, { __type: err.type, message: err.message }, err.type);
    this.requests.push(record);
    try {
      if (req.method !== 'POST' || (req.url ?? '/') !== '/') throw this.violation(`${req.method} ${req.url}: awsJson1_1 requests are POST /`);
      if (!service || !service.model.operations[operation]) throw new AwsError('UnknownOperationException', `unknown operation ${target}`);
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1')
        throw this.violation(`${operation}: content-type ${String(req.headers['content-type'])}, awsJson1_1 requires application/x-amz-json-1.1`);
      this.authenticate(req, raw, service.name);
      try {
        body = raw.length === 0 ? {} : (JSON.parse(raw.toString('utf8')) as Record<string, unknown>);
      } catch {
        throw new AwsError('SerializationException', 'the request body is not JSON');
      }
      record.body = body;
      const op = service.model.operations[operation]!;
      const newer = NEWER_MEMBERS[operation] ?? [];
      const modelled = Object.fromEntries(Object.entries(body).filter(([key]) => !newer.includes(key)));
      const problems = op.input ? validateShape(service.model, op.input.shape, modelled) : [];
      if (problems.length > 0) throw this.violation(problems.join('; '));
      const fault = this.faults.find((f) => f.left > 0 && (f.operation === undefined || f.operation === operation));
      if (fault) {
        fault.left--;
        throw new AwsError(fault.type, fault.message ?? fault.type, fault.status);
      }
      const output = service.handle(operation, body) ?? {};
      if (op.output) {
        const wrong = validateShape(service.model, op.output.shape, output);
        if (wrong.length > 0) this.violations.push(`contract server answer breaks the model: ${wrong.join('; ')}`);
      }
      reply(200, output);
    } catch (err) {
      if (err instanceof AwsError) fail(err);
      else fail(new AwsError('ServerException', `contract server bug: ${(err as Error).stack ?? String(err)}`, 500));
    }
  }

  private violation(message: string): AwsError {
    this.violations.push(message);
    return new AwsError('ValidationException', message);
  }

  /** Signature V4 (the SDK's default signer) with the test credentials, recomputed here. */
  private authenticate(req: http.IncomingMessage, body: Buffer, service: 'ecs' | 'logs'): void {
    const header = String(req.headers.authorization ?? '');
    const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(header);
    if (!m) throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    const [, keyId, date, region, scopeService, signedHeaders, signature] = m as unknown as string[];
    if (keyId !== TEST_CREDENTIALS.accessKeyId) throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    if (region !== this.region) throw new AwsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${region}'.`);
    if (scopeService !== service) throw new AwsError('InvalidSignatureException', `Credential should be scoped to correct service: '${service}'.`);
    const amzDate = String(req.headers['x-amz-date'] ?? '');
    const canonicalHeaders = signedHeaders!
      .split(';')
      .map(
        (name) =>
          `${name}:${String(req.headers[name] ?? '')
            .trim()
            .replace(/\s+/g, ' ')}\n`,
      )
      .join('');
    const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
    const canonical = ['POST', '/', '', canonicalHeaders, signedHeaders, sha256(body)].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
    const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();
    const key = hmac(hmac(hmac(hmac(`AWS4${TEST_CREDENTIALS.secretAccessKey}`, date!), region!), service), 'aws4_request');
    if (createHmac('sha256', key).update(toSign).digest('hex') !== signature)
      throw new AwsError(
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      );
  }
}
