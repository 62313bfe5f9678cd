// A reflector and cache for one collection, after client-go's: paged LIST, then WATCH from the
// list's resourceVersion with bookmarks, re-watching from the last seen resourceVersion and
// relisting only on 410 Gone. client-node's informer stops on any non-410 error, asks for no
// bookmarks and has no field selector, so we keep our own. Event handling and relist
// reconciliation are pure functions over the cache Map so they can be tested without a server.
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, VkError, errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { KubeClient } from './client.ts';
import type { KubeObject, ObjectList, Status, WatchEvent } from './types.ts';
import { backoffDelayMs, type BackoffPolicy } from '../util/backoff.ts';

export interface InformerOptions {
  client: KubeClient;
  /** collection path, e.g. '/api/v1/pods' or '/api/v1/namespaces/ns1/configmaps' */
  path: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** default 500 for paged LIST (limit/continue); 0 lists in one request */
  pageSize?: number;
  log: Logger;
  /** watch timeoutSeconds is jittered in [min, 2*min); default min 300 */
  watchTimeoutSeconds?: number;
  /** Edits every object in place before it is cached (client-go's SetTransform), e.g. stripManagedFields. */
  transform?: (obj: KubeObject) => void;
}

/**
 * Drops metadata.managedFields, which no controller here reads: for a pod whose status we write
 * it is a third of the JSON, and at 10,000 cached pods that is tens of MB (client-go's informers
 * offer the same as TransformStripManagedFields).
 */
export function stripManagedFields(obj: KubeObject): void {
  if (!obj.metadata?.managedFields) return;
  // A copy without it, not \`delete\`: that turns the object into a dictionary (~300 bytes more per pod).
  const { managedFields: _dropped, ...metadata } = obj.metadata;
  obj.metadata = metadata;
}

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

const DEFAULT_PAGE_SIZE = 500;
const DEFAULT_WATCH_TIMEOUT_SECONDS = 300;
/** Watch retry: 200 ms doubling to 30 s, ±20 % jitter (client-go's reflector backoff). */
const WATCH_BACKOFF: BackoffPolicy = { baseMs: 200, maxMs: 30_000, jitter: 'proportional' };
/** The apiserver's watch cache sends a bookmark to each watcher about once a minute. */
const BOOKMARK_PERIOD_SECONDS = 60;
/** Per-request socket idle limit for LIST pages. */
const LIST_TIMEOUT_MS = 60_000;
/** A watch that delivered events for this long was healthy: a failure after it retries from the base delay. */
const HEALTHY_WATCH_MS = 10_000;
/** client-go's "very short watch": a clean close this fast with no events means something is wrong. */
const SHORT_WATCH_MS = 1_000;

export type Change<T> = { type: 'add'; obj: T } | { type: 'update'; oldObj: T; obj: T } | { type: 'delete'; obj: T };

export type EventResult<T> =
  | { type: 'changes'; changes: Change<T>[]; resourceVersion: string | undefined }
  | { type: 'bookmark'; resourceVersion: string | undefined }
  /** 410 Gone: the resourceVersion we watch from is compacted away; relist. */
  | { type: 'expired'; message: string }
  /** Any other ERROR event or a malformed event: re-watch from the last good resourceVersion. */
  | { type: 'error'; message: string };

export function objectKey(obj: KubeObject): string {
  const namespace = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return namespace ? `${namespace}/${name}` : name;
}

function isExpiredStatus(status: Pick<Status, 'code' | 'reason'>): boolean {
  return status.code === 410 || status.reason === 'Expired' || status.reason === 'Gone';
}

/** True for a 410 Gone / Expired answer, the only failure that needs a relist. */
export function isExpiredError(err: unknown): boolean {
  return err instanceof KubeApiError && isExpiredStatus({ code: err.status, reason: err.reason });
}

// A new UID under the same key is a different object (deleted and recreated while we were not
// looking); callers see that as delete + add rather than an update that changes identity.
function upsert<T extends KubeObject>(cache: Map<string, T>, key: string, obj: T, changes: Change<T>[]): void {
  const old = cache.get(key);
  cache.set(key, obj);
  if (!old) {
    changes.push({ type: 'add', obj });
  } else if (old.metadata?.uid && obj.metadata?.uid && old.metadata.uid !== obj.metadata.uid) {
    changes.push({ type: 'delete', obj: old }, { type: 'add', obj });
  } else {
    changes.push({ type: 'update', oldObj: old, obj });
  }
}

/**
 * Applies one watch event to `cache` and says what changed. Like client-go's informer, ADDED
 * for a cached key is an update, MODIFIED for an unknown key is an add, and DELETED is
 * reported even for an unknown key (with the event's object).
 */
export function applyEvent<T extends KubeObject>(cache: Map<string, T>, event: WatchEvent<T | Status>): EventResult<T> {
  const object = event.object as (KubeObject & Status) | undefined;
  if (event.type === 'ERROR') {
    const status: Status = object ?? {};
    const message = `${status.code ?? '?'} ${status.reason ?? 'Unknown'}: ${status.message ?? ''}`;
    return isExpiredStatus(status) ? { type: 'expired', message } : { type: 'error', message };
  }
  if (!object || typeof object !== 'object') return { type: 'error', message: `${String(event.type)} event without an object` };
  const resourceVersion = object.metadata?.resourceVersion;
  if (event.type === 'BOOKMARK') return { type: 'bookmark', resourceVersion };
  if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED') {
    return { type: 'error', message: `unknown watch event type ${JSON.stringify(event.type)}` };
  }
  if (!object.metadata?.name) return { type: 'error', message: `${event.type} event for an object without metadata.name` };
  const obj = object as T;
  const key = objectKey(obj);
  const changes: Change<T>[] = [];
  if (event.type === 'DELETED') {
    cache.delete(key);
    changes.push({ type: 'delete', obj });
  } else {
    upsert(cache, key, obj, changes);
  }
  return { type: 'changes', changes, resourceVersion };
}

/**
 * Makes `cache` hold exactly `items` (a fresh LIST) and returns the changes a watcher missed:
 * deletes for keys gone (first, so a recreated name's delete precedes its add), then adds and
 * updates in list order. An object whose resourceVersion did not change keeps its cached copy
 * and emits nothing.
 */
export function reconcile<T extends KubeObject>(cache: Map<string, T>, items: readonly T[]): Change<T>[] {
  const fresh = new Map<string, T>();
  for (const item of items) fresh.set(objectKey(item), item);
  const changes: Change<T>[] = [];
  for (const [key, old] of cache) {
    if (!fresh.has(key)) {
      cache.delete(key);
      changes.push({ type: 'delete', obj: old });
    }
  }
  for (const [key, obj] of fresh) {
    const old = cache.get(key);
    const rv = obj.metadata?.resourceVersion;
    if (old && rv !== undefined && old.metadata?.resourceVersion === rv && old.metadata?.uid === obj.metadata?.uid) continue;
    upsert(cache, key, obj, changes);
  }
  return changes;
}

/** Spreads watch timeouts over [min, 2*min) so many watchers do not reconnect in lockstep (as client-go does). */
export function jitteredTimeoutSeconds(min: number, random: () => number = Math.random): number {
  return Math.max(1, Math.floor(min * (1 + random())));
}

/**
 * How long a watch may stay silent before we call its connection dead. The apiserver ends
 * every watch at its timeoutSeconds, and its watch cache sends a bookmark about once a minute
 * (and ~2 s before the timeout). So silence past min(timeout, 2 bookmark periods) plus 30 s
 * of grace means a dead TCP connection, not a quiet collection. Where no periodic bookmarks
 * come (watch cache disabled), the worst case is a needless re-watch every 150 s, which is
 * cheap; without the cap a dead connection would hide events for up to 2 × 300 s.
 */
export function idleLimitMs(timeoutSeconds: number): number {
  return (Math.min(timeoutSeconds, 2 * BOOKMARK_PERIOD_SECONDS) + 30) * 1000;
}

type WatchOutcome = 'closed' | 'expired';

export class Informer<T extends KubeObject> {
  private readonly client: KubeClient;
  private readonly path: string;
  private readonly fieldSelector: string | undefined;
  private readonly labelSelector: string | undefined;
  private readonly pageSize: number;
  private readonly watchTimeoutSeconds: number;
  private readonly log: Logger;
  private readonly transform: ((obj: KubeObject) => void) | undefined;
  private readonly cache = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly stopController = new AbortController();
  private readonly syncedDeferred = Promise.withResolvers<void>();
  private synced = false;
  private loop: Promise<void> | undefined;
  private resourceVersion: string | undefined;
  /** Events the current (or last) watch delivered, bookmarks included. */
  private watchEvents = 0;

  constructor(options: InformerOptions) {
    this.client = options.client;
    this.path = options.path;
    this.fieldSelector = options.fieldSelector;
    this.labelSelector = options.labelSelector;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.log = options.log.child({ informer: options.path });
    this.transform = options.transform;
    // Nobody may be waiting when stop() rejects it.
    this.syncedDeferred.promise.catch(() => {});
  }

  get lastResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  /** Handlers added after objects are cached first get onAdd for each of them, as in client-go. */
  addHandlers(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    for (const obj of [...this.cache.values()]) this.call(handlers, { type: 'add', obj });
  }

  start(): void {
    if (this.loop || this.stopController.signal.aborted) return;
    this.loop = this.run().catch((err: unknown) => {
      // run() catches everything itself; this is a last line of defence.
      this.log.error({ err }, 'informer loop ended unexpectedly');
    });
  }

  async stop(): Promise<void> {
    this.stopController.abort();
    if (!this.synced) this.syncedDeferred.reject(new DOMException(`informer ${this.path} stopped before it synced`, 'AbortError'));
    await this.loop;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  async waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return;
    if (!signal) return this.syncedDeferred.promise;
    signal.throwIfAborted();
    const aborted = Promise.withResolvers<never>();
    const onAbort = () => aborted.reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.race([this.syncedDeferred.promise, aborted.promise]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  private async run(): Promise<void> {
    const signal = this.stopController.signal;
    let failures = 0;
    let needList = true;
    while (!signal.aborted) {
      let watchStarted: number | undefined;
      try {
        if (needList) {
          await this.listAndReconcile(signal);
          needList = false;
        }
        watchStarted = performance.now();
        const outcome = await this.watch(signal);
        const events = this.watchEvents;
        const lasted = performance.now() - watchStarted;
        if (lasted >= HEALTHY_WATCH_MS && events > 0) failures = 0;
        if (outcome === 'expired') {
          needList = true;
          // A relist that keeps hitting 410 right away must not spin: back off from the second in a row.
          if (failures > 0) await sleep(backoffDelayMs(WATCH_BACKOFF, failures - 1), undefined, { signal });
          failures++;
          continue;
        }
        if (lasted < SHORT_WATCH_MS && events === 0) {
          throw new VkError('VK_KUBE_API', `watch ${this.path}: closed after ${Math.round(lasted)} ms with no events`);
        }
        failures = 0;
        this.log.debug({ resourceVersion: this.resourceVersion, seconds: Math.round(lasted / 1000), events }, 'watch closed; watching again');
      } catch (err) {
        if (signal.aborted) break;
        // A watch that hung from the start (no events) was not healthy, however long it took to fail.
        if (watchStarted !== undefined && performance.now() - watchStarted >= HEALTHY_WATCH_MS && this.watchEvents > 0) failures = 0;
        const delay = backoffDelayMs(WATCH_BACKOFF, failures++);
        this.log.warn(
          { err: errorMessage(err), relist: needList, retryInMs: Math.round(delay), failures },
          needList ? 'list failed; retrying' : 'watch failed; retrying',
        );
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          break;
        }
      }
    }
  }

  private async listAndReconcile(signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.listAll(signal);
    const changes = reconcile(this.cache, items);
    this.resourceVersion = resourceVersion;
    this.log.debug({ resourceVersion, items: items.length, changes: changes.length }, 'listed');
    this.dispatch(changes);
    if (!this.synced) {
      this.synced = true;
      this.syncedDeferred.resolve();
    }
  }

  // Pages share one snapshot, so only the complete set is applied. When a continue token
  // expires mid-way, fall back to one unpaged LIST as client-go's pager does: restarting the
  // paged walk could expire again for as long as the pages are slower than compaction.
  private async listAll(signal: AbortSignal): Promise<{ items: T[]; resourceVersion: string | undefined }> {
    let limit: number | undefined = this.pageSize > 0 ? this.pageSize : undefined;
    let continueToken: string | undefined;
    let items: T[] = [];
    for (;;) {
      let page: ObjectList<T>;
      try {
        page = await this.client.list<ObjectList<T>>(this.path, {
          query: { fieldSelector: this.fieldSelector, labelSelector: this.labelSelector, limit, continue: continueToken },
          signal,
          timeoutMs: LIST_TIMEOUT_MS,
        });
      } catch (err) {
        if (continueToken === undefined || !isExpiredError(err)) throw err;
        this.log.info({ items: items.length }, 'list continue token expired; listing again in one request');
        items = [];
        continueToken = undefined;
        limit = undefined;
        continue;
      }
      for (const item of page.items ?? []) {
        this.transform?.(item);
        items.push(item);
      }
      continueToken = page.metadata?.continue || undefined;
      if (!continueToken) return { items, resourceVersion: page.metadata?.resourceVersion };
    }
  }

  private async watch(stop: AbortSignal): Promise<WatchOutcome> {
    const timeoutSeconds = jitteredTimeoutSeconds(this.watchTimeoutSeconds);
    const idleMs = idleLimitMs(timeoutSeconds);
    const idle = new AbortController();
    const timer = setTimeout(() => idle.abort(), idleMs);
    const query = {
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      fieldSelector: this.fieldSelector,
      labelSelector: this.labelSelector,
    };
    const idleError = () => new VkError('VK_TIMEOUT', `watch ${this.path}: silent for ${idleMs / 1000} s; assuming the connection is dead`);
    this.watchEvents = 0;
    try {
      for await (const event of this.client.watch<T | Status>(this.path, query, AbortSignal.any([stop, idle.signal]))) {
        timer.refresh();
        this.watchEvents++;
        if (this.transform && event.object && (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED'))
          this.transform(event.object as T);
        const result = applyEvent(this.cache, event);
        switch (result.type) {
          case 'changes':
            if (result.resourceVersion) this.resourceVersion = result.resourceVersion;
            this.dispatch(result.changes);
            break;
          case 'bookmark':
            if (result.resourceVersion) this.resourceVersion = result.resourceVersion;
            break;
          case 'expired':
            this.log.info({ resourceVersion: this.resourceVersion, status: result.message }, 'watch expired (410); relisting');
            return 'expired';
          case 'error':
            throw new VkError('VK_KUBE_API', `watch ${this.path}: ${result.message}`);
        }
      }
      // Depending on timing an abort can end the stream instead of failing it.
      if (idle.signal.aborted) throw idleError();
      return 'closed';
    } catch (err) {
      if (stop.aborted) throw err;
      if (idle.signal.aborted) throw idleError();
      if (isExpiredError(err)) {
        this.log.info({ resourceVersion: this.resourceVersion, err: errorMessage(err) }, 'watch expired (410); relisting');
        return 'expired';
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private dispatch(changes: Change<T>[]): void {
    if (changes.length === 0) return;
    // A handler added during dispatch was already replayed the cache; don't hand it these too.
    const handlers = this.handlers.slice();
    for (const change of changes) {
      for (const handler of handlers) this.call(handler, change);
    }
  }

  private call(handler: InformerHandlers<T>, change: Change<T>): void {
    try {
      if (change.type === 'add') handler.onAdd?.(change.obj);
      else if (change.type === 'update') handler.onUpdate?.(change.oldObj, change.obj);
      else handler.onDelete?.(change.obj);
    } catch (err) {
      this.log.error({ err, event: change.type, key: objectKey(change.obj) }, 'informer handler threw');
    }
  }
}
