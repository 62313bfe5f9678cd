// GET /v1/pods/watch on the server side: one listener on the provider, fanned out to every open
// watch as NDJSON lines, a HEARTBEAT to all of them on a timer, and a watcher that falls too far
// behind disconnected (it lists every pod again when it reconnects, so nothing is lost). The
// provider's pod Events go, as EVENT lines, only to the watches that asked for them (?events=true);
// an Event missed while disconnected stays missed, as a kubelet's Event is best effort.
import type { ServerResponse } from 'node:http';
import { errorMessage } from '../errors.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { Provider } from '../providers/provider.ts';
import { VERSION_HEADER, encodePodEvent, type ProtocolVersion, type WatchEvent } from '../protocol/wire.ts';

export interface WatchHubOptions {
  heartbeatIntervalMs: number;
  /** A watcher with more than this buffered is disconnected. */
  maxBufferBytes: number;
  log: Logger;
}

function line(event: WatchEvent): string {
  return `${JSON.stringify(event)}\n`;
}

export class WatchHub {
  private readonly watchers = new Set<ServerResponse>();
  /** The watchers that asked for EVENT lines. */
  private readonly eventWatchers = new Set<ServerResponse>();
  private readonly options: WatchHubOptions;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(provider: Provider, options: WatchHubOptions) {
    this.options = options;
    provider.notifyPods?.((pod: Pod) => {
      if (this.watchers.size === 0) return;
      let text: string;
      try {
        text = line({ type: 'POD', pod });
      } catch (err) {
        options.log.warn({ err: errorMessage(err) }, 'cannot serialize a pod for the status stream');
        return;
      }
      this.broadcast(text);
    });
    provider.notifyPodEvents?.((event) => {
      if (this.eventWatchers.size === 0) return;
      this.broadcast(line({ type: 'EVENT', event: encodePodEvent(event) }), this.eventWatchers);
    });
    this.heartbeat = setInterval(() => this.broadcast(line({ type: 'HEARTBEAT' })), options.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** Starts a watch on `res`: headers, then READY once it is subscribed. `events`: it also gets EVENT lines. */
  add(res: ServerResponse, version: ProtocolVersion, events = false): void {
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-cache', [VERSION_HEADER]: String(version) });
    res.socket?.setNoDelay(true);
    this.watchers.add(res);
    if (events) this.eventWatchers.add(res);
    res.once('close', () => this.drop(res));
    res.write(line({ type: 'READY' }));
  }

  private drop(res: ServerResponse): void {
    this.watchers.delete(res);
    this.eventWatchers.delete(res);
  }

  private broadcast(text: string, to: Set<ServerResponse> = this.watchers): void {
    for (const res of to) {
      if (res.writableLength > this.options.maxBufferBytes) {
        this.options.log.warn({ buffered: res.writableLength }, 'a watcher fell too far behind; disconnecting it (it resyncs when it reconnects)');
        this.drop(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  /** Stops the heartbeat and drops every watch. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const res of this.watchers) res.destroy();
    this.watchers.clear();
    this.eventWatchers.clear();
  }
}
