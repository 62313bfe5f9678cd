// CloudWatch Logs (2014-03-28) inside the contract server: log groups, streams and events, with
// the operations the Fargate provider and the awslogs driver use. Tokens are "f/<index>" and
// "b/<index>" as the service's look; at the end of a stream the token passed in comes back.
import { AwsError } from './errors.ts';

interface LogEvent {
  timestamp: number;
  message: string;
  ingestionTime: number;
}

interface LogStream {
  name: string;
  createdAt: number;
  events: LogEvent[];
}

interface LogGroup {
  name: string;
  createdAt: number;
  streams: Map<string, LogStream>;
}

type Body = Record<string, unknown>;

export class LogsSim {
  readonly groups = new Map<string, LogGroup>();
  private readonly region: string;
  private readonly account: string;

  constructor(region: string, account: string) {
    this.region = region;
    this.account = account;
  }

  createGroup(name: string): void {
    if (!this.groups.has(name)) this.groups.set(name, { name, createdAt: Date.now(), streams: new Map() });
  }

  /** What the awslogs driver does for a container's line: append to its stream, creating it. */
  append(groupName: string, streamName: string, message: string): void {
    const group = this.groups.get(groupName);
    if (!group) return;
    let stream = group.streams.get(streamName);
    if (!stream) {
      stream = { name: streamName, createdAt: Date.now(), events: [] };
      group.streams.set(streamName, stream);
    }
    const now = Date.now();
    stream.events.push({ timestamp: now, message, ingestionTime: now });
  }

  handle(operation: string, body: Body): unknown {
    switch (operation) {
      case 'CreateLogGroup': {
        const name = body.logGroupName as string;
        if (this.groups.has(name)) throw new AwsError('ResourceAlreadyExistsException', 'The specified log group already exists');
        this.createGroup(name);
        return {};
      }
      case 'DescribeLogStreams': {
        const group = this.group(body.logGroupName as string);
        const prefix = (body.logStreamNamePrefix as string | undefined) ?? '';
        return {
          logStreams: [...group.streams.values()]
            .filter((s) => s.name.startsWith(prefix))
            .map((s) => ({
              logStreamName: s.name,
              creationTime: s.createdAt,
              arn: `arn:aws:logs:${this.region}:${this.account}:log-group:${group.name}:log-stream:${s.name}`,
              ...(s.events.length > 0 && { firstEventTimestamp: s.events[0]!.timestamp, lastEventTimestamp: s.events.at(-1)!.timestamp }),
              storedBytes: 0,
            })),
        };
      }
      case 'GetLogEvents':
        return this.getLogEvents(body);
      default:
        throw new AwsError('UnknownOperationException', `the contract server does not implement Logs ${operation}`);
    }
  }

  private group(name: string): LogGroup {
    const group = this.groups.get(name);
    if (!group) throw new AwsError('ResourceNotFoundException', 'The specified log group does not exist.');
    return group;
  }

  private getLogEvents(body: Body): unknown {
    if (body.logGroupIdentifier !== undefined && body.logGroupName !== undefined)
      throw new AwsError('InvalidParameterException', 'logGroupName and logGroupIdentifier are mutually exclusive');
    const stream = this.group(body.logGroupName as string).streams.get(body.logStreamName as string);
    if (!stream) throw new AwsError('ResourceNotFoundException', 'The specified log stream does not exist.');
    const startTime = body.startTime as number | undefined;
    const endTime = body.endTime as number | undefined;
    const limit = (body.limit as number | undefined) ?? 10_000;
    const token = body.nextToken as string | undefined;
    const fromHead = body.startFromHead === true;
    const inRange = (e: LogEvent) => (startTime === undefined || e.timestamp >= startTime) && (endTime === undefined || e.timestamp < endTime);
    const indexed = stream.events.map((e, i) => ({ e, i })).filter(({ e }) => inRange(e));
    let page: { e: LogEvent; i: number }[];
    if (token !== undefined) {
      const m = /^([fb])\/(\d+)$/.exec(token);
      if (!m) throw new AwsError('InvalidParameterException', 'The specified nextToken is invalid.');
      const at = Number(m[2]);
      if (m[1] === 'f') {
        if (!fromHead) throw new AwsError('InvalidParameterException', 'startFromHead must be true with a nextForwardToken');
        page = indexed.filter(({ i }) => i >= at).slice(0, limit);
      } else page = indexed.filter(({ i }) => i < at).slice(-limit);
    } else page = fromHead ? indexed.slice(0, limit) : indexed.slice(-limit);
    const forward = page.length > 0 ? `f/${page.at(-1)!.i + 1}` : (token ?? `f/${indexed.length > 0 ? indexed[0]!.i : stream.events.length}`);
    const backward = page.length > 0 ? `b/${page[0]!.i}` : (token ?? 'b/0');
    return { events: page.map(({ e }) => ({ ...e })), nextForwardToken: forward, nextBackwardToken: backward };
  }
}
