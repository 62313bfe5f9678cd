// The endpoints of the protocol, each a call on the provider. Every provider call gets the
// request's signal, aborted when the client goes away or the server closes; DELETE passes on the
// reason the client sent (version 2) or `deleted` (version 1, which has none).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { InvalidRequestError, NotFoundError, UnsupportedError, errorMessage } from '../errors.ts';
import type { Pod } from '../kube/types.ts';
import { WireStatusError } from '../protocol/errors.ts';
import { parseLogOptions } from '../kube/params.ts';
import {
  TRACEPARENT_HEADER,
  VERSION_HEADER,
  WATCH_EVENTS_PARAM,
  decodeResolvedPod,
  deleteBodySchema,
  deleteBodyV1Schema,
  encodeResolvedPod,
  wireResolvedPodSchema,
  type CapabilitiesResponse,
  type ProtocolVersion,
  type RemoteCapability,
  type WireResolvedPod,
} from '../protocol/wire.ts';
import type { DeleteReason, Provider, ResolvedPod } from '../providers/provider.ts';
import { readJson, sendJson } from './body.ts';
import type { Route } from './routes.ts';
import type { WatchHub } from './watch-hub.ts';

/** The protocol extension `resolvedPod`: a provider that can show a pod exactly as it received it. */
export type ResolvedPodSource = { resolvedPod?: (namespace: string, name: string) => ResolvedPod | undefined | Promise<ResolvedPod | undefined> };

/** The caller's W3C traceparent header, if it sent one. */
export function traceparentOf(req: IncomingMessage): string | undefined {
  const value = req.headers[TRACEPARENT_HEADER];
  return typeof value === 'string' ? value : undefined;
}

/** How long GET /v1/ping waits for the provider's ping. */
const PING_TIMEOUT_MS = 30_000;

export interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  route: Route;
  method: string;
  version: ProtocolVersion;
  /** Aborted when the client goes away or the server closes. */
  signal: AbortSignal;
}

export interface HandlerContext {
  provider: Provider & ResolvedPodSource;
  /** What GET /v1/capabilities answers, less the per-version fields. */
  declared: Omit<CapabilitiesResponse, 'protocol'>;
  watches: WatchHub;
  maxRequestBytes: number;
}

/** Refuses a capability the provider does not implement (501 Unsupported). */
export function requireCapability(provider: Provider, capabilities: readonly RemoteCapability[], capability: RemoteCapability): void {
  if (!capabilities.includes(capability)) throw new UnsupportedError(`provider ${provider.name} does not implement ${capability}`);
}

function unknownPod(provider: Provider, route: Route): NotFoundError {
  return new NotFoundError(`pod ${route.namespace}/${route.name} is not known to provider ${provider.name}`);
}

function checkSamePod(route: Route, pod: Pod): void {
  if (pod.metadata?.namespace !== route.namespace || pod.metadata?.name !== route.name) {
    throw new InvalidRequestError(
      `invalid request body: pod ${pod.metadata?.namespace}/${pod.metadata?.name} does not match the path's pod ${route.namespace}/${route.name}`,
    );
  }
}

/** Serves one HTTP request (not an upgrade) to its end; throws what the caller answers as an error. */
export async function handle(ctx: HandlerContext, x: Exchange): Promise<void> {
  const { provider, declared } = ctx;
  const { req, res, route, method, version } = x;
  const call = { signal: x.signal, traceparent: traceparentOf(req) };
  const require = (capability: RemoteCapability) => requireCapability(provider, declared.capabilities as RemoteCapability[], capability);
  const reply = (status: number, body: unknown) => sendJson(res, version, status, body);
  switch (route.kind) {
    case 'capabilities':
      return reply(200, { protocol: `v${version}`, ...declared });
    case 'ping': {
      try {
        await provider.ping?.(AbortSignal.any([x.signal, AbortSignal.timeout(PING_TIMEOUT_MS)]));
      } catch (err) {
        throw new WireStatusError('VK_PROVIDER_UNAVAILABLE', 'Unhealthy', errorMessage(err));
      }
      return reply(200, { ok: true });
    }
    case 'node':
      require('nodeConfig');
      return reply(200, provider.nodeConfig!());
    case 'stats':
      require('getStats');
      return reply(200, { pods: await provider.getStats!() });
    case 'pods': {
      if (method === 'GET') return reply(200, { items: await provider.listPods(call) });
      const body = (await readJson(req, wireResolvedPodSchema, ctx.maxRequestBytes)) as WireResolvedPod;
      await provider.createPod(decodeResolvedPod(body), call);
      return reply(201, {});
    }
    case 'watch': {
      // The stream carries pod changes, pod Events, or both.
      const events = declared.capabilities.includes('notifyPodEvents');
      if (!events) require('notifyPods');
      ctx.watches.add(res, version, events && x.url.searchParams.get(WATCH_EVENTS_PARAM) === 'true');
      return;
    }
    case 'pod': {
      if (method === 'GET') {
        const pod = await provider.getPod(route.namespace, route.name, call);
        if (!pod) throw unknownPod(provider, route);
        return reply(200, pod);
      }
      if (method === 'PUT') {
        const body = (await readJson(req, wireResolvedPodSchema, ctx.maxRequestBytes)) as WireResolvedPod;
        checkSamePod(route, body.pod);
        await provider.updatePod(decodeResolvedPod(body), call);
        return reply(200, {});
      }
      let pod: Pod;
      let reason: DeleteReason = 'deleted';
      if (version === 1) {
        pod = (await readJson(req, deleteBodyV1Schema, ctx.maxRequestBytes)).pod as Pod;
      } else {
        const body = await readJson(req, deleteBodySchema, ctx.maxRequestBytes);
        pod = body.pod as Pod;
        reason = body.reason;
      }
      checkSamePod(route, pod);
      await provider.deletePod(pod, { ...call, reason });
      return reply(200, {});
    }
    case 'status': {
      const status = await provider.getPodStatus(route.namespace, route.name, call);
      if (!status) throw unknownPod(provider, route);
      return reply(200, status);
    }
    case 'resolved': {
      if (!provider.resolvedPod) throw new UnsupportedError(`provider ${provider.name} does not implement the resolvedPod extension`);
      const resolved = await provider.resolvedPod(route.namespace, route.name);
      if (!resolved) throw unknownPod(provider, route);
      return reply(200, encodeResolvedPod(resolved));
    }
    case 'logs': {
      require('getContainerLogs');
      const options = parseLogOptions(x.url.searchParams);
      const stream = await provider.getContainerLogs!(route.namespace, route.name, route.container, { ...options, signal: x.signal });
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', [VERSION_HEADER]: String(version) });
      if (options.follow) res.flushHeaders();
      try {
        await pipeline(stream, res);
      } catch {
        res.destroy(); // the client went away, or the provider's stream failed midway
      }
      return;
    }
    case 'exec':
    case 'attach':
    case 'portforward':
      throw new InvalidRequestError(`${x.url.pathname} is a WebSocket endpoint: send an Upgrade: websocket request with subprotocol v5.channel.k8s.io`);
  }
}
