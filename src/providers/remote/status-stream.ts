// GET /v1/pods/watch, kept open: newline-delimited JSON events pushed by the server, so the
// core need not poll. The server sends READY once it has subscribed, then a POD line per
// change and a HEARTBEAT at least every heartbeatIntervalMs. The stream reconnects with
// jittered backoff whenever it breaks (or goes silent for three heartbeats); after every READY
// the client lists the pods and hands each to the listener, so nothing that changed while
// it was disconnected is missed. Malformed lines are logged and skipped. With `onEvent` set the
// client asks for EVENT lines too (?events=true) and hands each pod Event on; Events are best
// effort, so one sent while the stream was down is not recovered.
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../../errors.ts';
import type { Pod } from '../../kube/types.ts';
import type { Logger } from '../../log.ts';
import type { PodEvent } from '../provider.ts';
import { WATCH_EVENTS_PARAM, decodePodEvent, paths, podSchema, wirePodEventSchema, type WirePodEvent } from '../../protocol/wire.ts';
import { callFailure, type RemoteTransport } from './transport.ts';

/** The longest line accepted; a longer one drops the connection (the resync covers its content). */
const MAX_LINE_BYTES = 64 << 20;
const RECONNECT_BASE_MS = 250;
const RECONNECT_CAP_MS = 10_000;

export interface StatusStreamOptions {
  heartbeatIntervalMs: number;
  onPod: (pod: Pod) => void;
  /** Set when the server declares notifyPodEvents: the stream asks for EVENT lines and passes them here. */
  onEvent?: (event: PodEvent) => void;
  /** After each READY: hand every pod to the listeners. */
  onReady: (reconnect: boolean) => Promise<void>;
}

export class StatusStream {
  private readonly transport: RemoteTransport;
  private readonly log: Logger;
  private readonly options: StatusStreamOptions;
  private stopped = false;
  private running: Promise<void> | undefined;
  private current: AbortController | undefined;
  private readonly stop$ = new AbortController();
  private wake: AbortController | undefined;
  /** The last attempt failed without reaching the server. */
  private unreachable = false;
  /** True between a READY and the stream breaking. */
  connected = false;
  /** Completed connections (READY received). */
  connections = 0;
  malformedLines = 0;

  constructor(transport: RemoteTransport, log: Logger, options: StatusStreamOptions) {
    this.transport = transport;
    this.log = log;
    this.options = options;
  }

  start(): void {
    this.running ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stop$.abort();
    this.current?.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    let failing = false;
    while (!this.stopped) {
      const abort = new AbortController();
      this.current = abort;
      try {
        const query = this.options.onEvent ? { [WATCH_EVENTS_PARAM]: 'true' } : {};
        const res = await this.transport.open('GET', paths.watch(), { query, signal: abort.signal });
        await this.consume(res, abort, () => {
          attempt = 0;
          this.unreachable = false;
          if (failing) this.log.info('remote provider status stream reconnected');
          failing = false;
        });
        if (!this.stopped) this.log.debug('remote provider status stream ended; reconnecting');
      } catch (err) {
        if (this.stopped) break;
        this.unreachable = callFailure(err)?.status === 0;
        // One warning per outage, not one per attempt.
        if (!failing) this.log.warn({ err: errorMessage(err) }, 'remote provider status stream is down; reconnecting with backoff');
        failing = true;
      } finally {
        this.connected = false;
        abort.abort();
      }
      if (this.stopped) break;
      const ceiling = Math.min(RECONNECT_CAP_MS, RECONNECT_BASE_MS * 2 ** attempt++);
      this.wake = new AbortController();
      try {
        await sleep(ceiling / 2 + Math.random() * (ceiling / 2), undefined, { signal: AbortSignal.any([this.stop$.signal, this.wake.signal]) });
      } catch {
        if (this.stopped) break;
      }
    }
  }

  /**
   * Cuts a backoff wait short when the stream broke because the server was unreachable and the
   * caller knows it is back (its ping just answered). A server that answers but refuses the
   * watch keeps the normal backoff.
   */
  kick(): void {
    if (this.unreachable) this.wake?.abort();
  }

  private async consume(res: IncomingMessage, abort: AbortController, onReady: () => void): Promise<void> {
    const idleMs = this.options.heartbeatIntervalMs * 3 + 2_000;
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        this.log.warn({ silentMs: idleMs }, 'remote provider status stream went silent; reconnecting');
        res.destroy();
      }, idleMs);
    };
    touch();
    abort.signal.addEventListener('abort', () => res.destroy(), { once: true });
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        touch();
        let start = 0;
        let newline: number;
        while ((newline = chunk.indexOf(0x0a, start)) >= 0) {
          pending.push(chunk.subarray(start, newline));
          const line = Buffer.concat(pending).toString('utf8');
          pending = [];
          pendingBytes = 0;
          start = newline + 1;
          await this.handleLine(line, onReady);
          if (this.stopped) return;
        }
        if (start < chunk.length) {
          pending.push(chunk.subarray(start));
          pendingBytes += chunk.length - start;
          if (pendingBytes > MAX_LINE_BYTES) {
            this.log.warn({ bytes: pendingBytes }, `remote provider status stream sent a line longer than ${MAX_LINE_BYTES} bytes; reconnecting`);
            return;
          }
        }
      }
    } catch {
      // The connection broke: the caller reconnects.
    } finally {
      clearTimeout(idle);
      res.destroy();
    }
  }

  private async handleLine(line: string, onReady: () => void): Promise<void> {
    if (line.trim() === '') return;
    let event: { type?: unknown; pod?: unknown; event?: unknown };
    try {
      event = JSON.parse(line) as typeof event;
    } catch (err) {
      this.malformed(line, `not JSON: ${errorMessage(err)}`);
      return;
    }
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      this.malformed(line, 'expected an object with a string "type"');
      return;
    }
    switch (event.type) {
      case 'READY':
        this.connected = true;
        onReady();
        try {
          await this.options.onReady(this.connections++ > 0);
        } catch (err) {
          this.log.warn({ err: errorMessage(err) }, 'remote provider resync after the status stream connected failed');
        }
        return;
      case 'HEARTBEAT':
        return;
      case 'POD': {
        const pod = podSchema.safeParse(event.pod);
        if (!pod.success) {
          this.malformed(line, 'a POD event needs "pod" with metadata.namespace and metadata.name');
          return;
        }
        this.options.onPod(pod.data as Pod);
        return;
      }
      case 'EVENT': {
        if (!this.options.onEvent) return;
        const podEvent = wirePodEventSchema.safeParse(event.event);
        if (!podEvent.success) {
          this.malformed(line, 'an EVENT needs "event" with namespace, name, uid, type Normal|Warning, reason and message');
          return;
        }
        this.options.onEvent(decodePodEvent(podEvent.data as WirePodEvent));
        return;
      }
      default:
        // Newer servers may send more: ignore what we do not know.
        this.log.debug({ type: event.type }, 'ignoring unknown status stream event');
    }
  }

  private malformed(line: string, why: string): void {
    this.malformedLines++;
    this.log.warn({ line: line.slice(0, 200) }, `remote provider status stream: skipping a malformed line (${why})`);
  }
}
