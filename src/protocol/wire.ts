// The remote provider protocol: what travels between the virtual kubelet (client, the
// `remote` provider) and a provider server (the TypeScript SDK, or any HTTP server in any
// language). Shared by both sides so they cannot drift. docs/remote-provider.md describes
// it for implementers; docs/remote-provider.openapi.yaml is the machine-readable form.
//
//   unary calls      HTTP/1.1 + JSON under /v1, with the VK-Provider-Protocol: <version> header
//   status changes   GET /v1/pods/watch: newline-delimited JSON (READY, POD, HEARTBEAT, and
//                    EVENT for clients that ask with ?events=true, see WATCH_EVENTS_PARAM)
//   logs             GET /v1/pods/{ns}/{pod}/containers/{c}/logs: chunked text/plain
//   exec/attach      WebSocket, subprotocol v5.channel.k8s.io (v4 accepted): the Kubernetes
//   port-forward     channel framing of ./channel-websocket.ts
//
// Versions. The path prefix /v1 names the endpoints and has not changed; the protocol version
// travels in the VK-Provider-Protocol header and picks the dialect of the bodies:
//   1  DELETE carries {pod}; errors are {error: {code: <v1 name>, message}} (V1_ERROR_STATUS).
//   2  DELETE carries {pod, reason: deleted|finished}; errors carry the VkError code and
//      reason/retryAfterMs, with the status httpStatus() gives (./errors.ts).
// A request without the header is version 1. Servers answer in the version asked for and echo
// it; GET /v1/capabilities lists the versions a server speaks (`versions`, absent: [1]).
import { z } from 'zod';
import {
  CAPABILITIES,
  type Capability,
  type DeleteReason,
  type NodeConfig,
  type PodEvent,
  type PodStats,
  type ResolvedPod,
  type ResolvedVolume,
} from '../providers/provider.ts';
import type { Pod, PodStatus } from '../kube/types.ts';

/** The protocol versions this build speaks, oldest first. */
export const PROTOCOL_VERSIONS = [1, 2] as const;
export type ProtocolVersion = (typeof PROTOCOL_VERSIONS)[number];
/** The newest version: what the client asks for and the SDK server prefers. */
export const PROTOCOL_VERSION = 2 satisfies ProtocolVersion;
/** Path prefix of every call, in every protocol version. */
export const PATH_PREFIX = '/v1';
/** Sent on every request and echoed on every response; an unknown value is refused with 400. */
export const VERSION_HEADER = 'vk-provider-protocol';
/**
 * W3C Trace Context: the core's span for the call (a provider call, or the kubelet API request
 * a stream serves), sent when the core traces. A provider that traces makes its spans children of it.
 */
export const TRACEPARENT_HEADER = 'traceparent';
/** The WebSocket subprotocols of exec/attach/port-forward sessions, preferred first. */
export const STREAM_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
/** Server default for the largest request body it reads. */
export const DEFAULT_MAX_REQUEST_BYTES = 16 << 20;
/** Server default for how often the watch stream carries a HEARTBEAT line. */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/** The version a header value names: absent is 1; undefined for a value this build does not speak. */
export function parseVersionHeader(value: string | string[] | undefined): ProtocolVersion | undefined {
  if (value === undefined) return 1;
  const text = String(value).trim();
  return PROTOCOL_VERSIONS.find((v) => String(v) === text);
}

/** The optional Provider methods a server can declare ('close' is local to each side and never declared). */
export type RemoteCapability = Exclude<Capability, 'close'>;
export const REMOTE_CAPABILITIES: readonly RemoteCapability[] = CAPABILITIES.filter((c): c is RemoteCapability => c !== 'close');

export function isRemoteCapability(name: string): name is RemoteCapability {
  return (REMOTE_CAPABILITIES as readonly string[]).includes(name);
}

/**
 * Protocol extensions beyond the Provider interface. `resolvedPod`: GET
 * /v1/pods/{ns}/{pod}/resolved returns the pod exactly as createPod/updatePod received it
 * (env and volumes), so the conformance suite can check delivery end to end.
 */
export type RemoteExtension = 'resolvedPod';

/** The delete reasons of protocol 2, the same as DeleteReason (a reason added there fails to compile here until listed). */
export const DELETE_REASONS = ['deleted', 'finished'] as const satisfies readonly DeleteReason[];
const allReasonsListed: Exclude<DeleteReason, (typeof DELETE_REASONS)[number]> extends never ? true : never = true;
void allReasonsListed;

/** GET /v1/capabilities. */
export interface CapabilitiesResponse {
  /** The version this answer is in: "v1" for a version-1 request, "v2" for a version-2 one. */
  protocol: string;
  /** The protocol versions the server speaks; absent means [1] (servers older than version 2). */
  versions?: number[];
  /** The provider's name (the node taint virtual-kubelet.io/provider=<name>). */
  name: string;
  capabilities: string[];
  extensions?: string[];
  /** Requests larger than this get 413. */
  maxRequestBytes?: number;
  /** The watch stream sends a HEARTBEAT at least this often; the client reconnects after 3 missed. */
  heartbeatIntervalMs?: number;
  /** Free text, e.g. "vk-provider-sdk-ts/0.1.0". */
  server?: string;
}

/**
 * Pod Events (capability notifyPodEvents) travel on the watch stream as EVENT lines, sent only to
 * a client that asked with `GET /v1/pods/watch?events=true`: older clients, which do not ask,
 * never see them, and older servers ignore the parameter. Independent of the protocol version.
 */
export const WATCH_EVENTS_PARAM = 'events';

/** A PodEvent on the wire: the same fields, the time as RFC 3339. */
export interface WirePodEvent {
  namespace: string;
  name: string;
  uid: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  container?: string;
  count?: number;
  firstTimestamp?: string;
}

/** One line of GET /v1/pods/watch. Clients ignore types they do not know. */
export type WatchEvent = { type: 'READY' } | { type: 'HEARTBEAT' } | { type: 'POD'; pod: Pod } | { type: 'EVENT'; event: WirePodEvent };

export function encodePodEvent(event: PodEvent): WirePodEvent {
  const { firstTimestamp, ...rest } = event;
  return { ...rest, ...(firstTimestamp && { firstTimestamp: firstTimestamp.toISOString() }) };
}

export function decodePodEvent(wire: WirePodEvent): PodEvent {
  const { firstTimestamp, ...rest } = wire;
  return { ...rest, ...(firstTimestamp && { firstTimestamp: new Date(firstTimestamp) }) };
}

// --- Paths.

const seg = encodeURIComponent;
export const paths = {
  capabilities: () => `${PATH_PREFIX}/capabilities`,
  ping: () => `${PATH_PREFIX}/ping`,
  node: () => `${PATH_PREFIX}/node`,
  stats: () => `${PATH_PREFIX}/stats`,
  pods: () => `${PATH_PREFIX}/pods`,
  watch: () => `${PATH_PREFIX}/pods/watch`,
  pod: (ns: string, name: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}`,
  podStatus: (ns: string, name: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/status`,
  resolved: (ns: string, name: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/resolved`,
  logs: (ns: string, name: string, c: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/logs`,
  exec: (ns: string, name: string, c: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/exec`,
  attach: (ns: string, name: string, c: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/attach`,
  portForward: (ns: string, name: string) => `${PATH_PREFIX}/pods/${seg(ns)}/${seg(name)}/portforward`,
};

// --- Resolved pods on the wire: volume file contents as base64.

export interface WireVolumeFile {
  path: string;
  /** base64 */
  content: string;
  mode: number;
}

export type WireVolume =
  | { name: string; type: 'files'; source: 'configMap' | 'secret' | 'downwardAPI' | 'projected'; files: WireVolumeFile[] }
  | { name: string; type: 'emptyDir'; medium: string; sizeLimit?: string };

/** Body of POST /v1/pods and PUT /v1/pods/{ns}/{pod}. */
export interface WireResolvedPod {
  pod: Pod;
  volumes: WireVolume[];
  /** The pod's imagePullSecrets that exist, in spec order: name, type and base64 data as in the API. */
  pullSecrets?: WirePullSecret[];
}

export interface WirePullSecret {
  name: string;
  type?: string;
  data: Record<string, string>;
}

export function encodeResolvedPod(resolved: ResolvedPod): WireResolvedPod {
  const volumes: WireVolume[] = [];
  for (const v of resolved.volumes.values()) {
    if (v.type === 'files') {
      volumes.push({
        name: v.name,
        type: 'files',
        source: v.source,
        files: v.files.map((f) => ({
          path: f.path,
          content: Buffer.from(f.content.buffer, f.content.byteOffset, f.content.byteLength).toString('base64'),
          mode: f.mode,
        })),
      });
    } else {
      volumes.push({ name: v.name, type: 'emptyDir', medium: v.medium, ...(v.sizeLimit !== undefined && { sizeLimit: v.sizeLimit }) });
    }
  }
  const pullSecrets = resolved.pullSecrets?.map((secret) => ({
    name: secret.metadata?.name ?? '',
    ...(secret.type && { type: secret.type }),
    data: secret.data ?? {},
  }));
  return { pod: resolved.pod, volumes, ...(pullSecrets && { pullSecrets }) };
}

export function decodeResolvedPod(wire: WireResolvedPod): ResolvedPod {
  const volumes = new Map<string, ResolvedVolume>();
  for (const v of wire.volumes) {
    if (v.type === 'files') {
      // Plain Uint8Arrays, as the core hands them over.
      volumes.set(v.name, {
        name: v.name,
        type: 'files',
        source: v.source,
        files: v.files.map((f) => ({ path: f.path, content: new Uint8Array(Buffer.from(f.content, 'base64')), mode: f.mode })),
      });
    } else {
      volumes.set(v.name, { name: v.name, type: 'emptyDir', medium: v.medium, ...(v.sizeLimit !== undefined && { sizeLimit: v.sizeLimit }) });
    }
  }
  const namespace = wire.pod.metadata?.namespace;
  const pullSecrets = wire.pullSecrets?.map((s) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: s.name, namespace },
    ...(s.type && { type: s.type }),
    data: s.data,
  }));
  return { pod: wire.pod, volumes, ...(pullSecrets && { pullSecrets }) };
}

// --- Validation of what arrives from the wire, on both sides: request bodies on the server,
// answers on the client. A Pod must at least name itself.

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const metadataSchema = z.looseObject({
  namespace: z.string().min(1),
  name: z.string().min(1),
  uid: z.string().optional(),
});

export const podSchema = z.looseObject({
  metadata: metadataSchema,
  spec: z.looseObject({ containers: z.array(z.looseObject({ name: z.string().min(1) })).optional() }).optional(),
  status: z.looseObject({}).optional(),
});

/** GET /v1/pods/{ns}/{pod}/status. */
export const podStatusSchema = z.looseObject({ phase: z.string().optional() });

/** A pod to create or update: its UID is required, the provider keys incarnations on it. */
const podWithUidSchema = podSchema.extend({ metadata: metadataSchema.extend({ uid: z.string().min(1) }) });

const wireVolumeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    name: z.string().min(1),
    type: z.literal('files'),
    source: z.enum(['configMap', 'secret', 'downwardAPI', 'projected']),
    files: z.array(
      z.strictObject({ path: z.string().min(1), content: z.string().regex(BASE64, 'expected base64'), mode: z.number().int().min(0).max(0o7777) }),
    ),
  }),
  z.strictObject({ name: z.string().min(1), type: z.literal('emptyDir'), medium: z.string(), sizeLimit: z.string().optional() }),
]);

const wirePullSecretSchema = z.strictObject({
  name: z.string().min(1),
  type: z.string().optional(),
  data: z.record(z.string(), z.string().regex(BASE64, 'expected base64')),
});

/** Body of POST /v1/pods and PUT /v1/pods/{ns}/{pod}; also the answer of GET .../resolved. */
export const wireResolvedPodSchema = z.strictObject({
  pod: podWithUidSchema,
  volumes: z.array(wireVolumeSchema).default([]),
  pullSecrets: z.array(wirePullSecretSchema).optional(),
});

/** An EVENT line's `event`: the shape only; the core checks reason, message and UID when it records it. */
export const wirePodEventSchema = z.looseObject({
  namespace: z.string().min(1),
  name: z.string().min(1),
  uid: z.string().min(1),
  type: z.enum(['Normal', 'Warning']),
  reason: z.string().min(1),
  message: z.string(),
  container: z.string().min(1).optional(),
  count: z.number().int().positive().optional(),
  firstTimestamp: z.iso.datetime({ offset: true }).optional(),
});

/** Body of DELETE /v1/pods/{ns}/{pod} in version 1: the pod as the API server has it (uid, grace period). */
export const deleteBodyV1Schema = z.strictObject({ pod: podSchema });
/** Body of DELETE /v1/pods/{ns}/{pod} in version 2: the pod and why it is deleted. */
export const deleteBodySchema = z.strictObject({ pod: podSchema, reason: z.enum(DELETE_REASONS) });
export type DeleteBody = z.output<typeof deleteBodySchema>;

export const podListSchema = z.looseObject({ items: z.array(podSchema) });
export const statsSchema = z.looseObject({
  pods: z.array(
    z.looseObject({
      namespace: z.string(),
      name: z.string(),
      uid: z.string(),
      containers: z.array(
        z.looseObject({
          name: z.string(),
          cpuUsageNanoCores: z.number().optional(),
          cpuUsageCoreNanoSeconds: z.number().optional(),
          memoryWorkingSetBytes: z.number().optional(),
          memoryUsageBytes: z.number().optional(),
        }),
      ),
    }),
  ),
});

const stringMap = z.record(z.string(), z.string());
export const nodeConfigSchema = z.looseObject({
  capacity: stringMap,
  allocatable: stringMap.optional(),
  labels: stringMap.optional(),
  taints: z.array(z.looseObject({ key: z.string(), effect: z.string() })).optional(),
  conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
  addresses: z.array(z.looseObject({ type: z.string(), address: z.string() })).optional(),
  operatingSystem: z.string().optional(),
  architecture: z.string().optional(),
  nodeInfo: z.looseObject({}).optional(),
});

export const capabilitiesSchema = z.looseObject({
  protocol: z.string(),
  versions: z.array(z.number().int()).optional(),
  name: z.string().min(1),
  capabilities: z.array(z.string()),
  extensions: z.array(z.string()).optional(),
  maxRequestBytes: z.number().int().positive().optional(),
  heartbeatIntervalMs: z.number().int().positive().optional(),
  server: z.string().optional(),
});

/** Types re-exported so implementers of either side import one module. */
export type { NodeConfig, Pod, PodStats, PodStatus };
