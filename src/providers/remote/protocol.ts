// The remote provider protocol, v1: what travels between the virtual kubelet (client, the
// `remote` provider) and a provider server (the TypeScript SDK, or any HTTP server in any
// language). Shared by both sides so they cannot drift. docs/remote-provider.md describes
// it for implementers; docs/remote-provider.openapi.yaml is the machine-readable form.
//
//   unary calls      HTTP/1.1 + JSON, under /v1, with the VK-Provider-Protocol: 1 header
//   status changes   GET /v1/pods/watch: newline-delimited JSON (READY, POD, HEARTBEAT)
//   logs             GET /v1/pods/{ns}/{pod}/containers/{c}/logs: chunked text/plain
//   exec/attach      WebSocket, subprotocol v5.channel.k8s.io (v4 accepted): the Kubernetes
//   port-forward     channel framing of src/kubelet-api/streaming/channel-websocket.ts
import { z } from 'zod';
import type { NodeConfig, PodStats, ResolvedPod, ResolvedVolume } from '../provider.ts';
import type { Pod, PodStatus } from '../../kube/types.ts';

export const PROTOCOL_VERSION = 1;
/** Path prefix of every call. */
export const PROTOCOL_PREFIX = `/v${PROTOCOL_VERSION}`;
/** Sent on every request and echoed on every response; another value is refused with 400. */
export const VERSION_HEADER = 'vk-provider-protocol';
/** The WebSocket subprotocols of exec/attach/port-forward sessions, preferred first. */
export const STREAM_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
/** Server default for the largest request body it reads. */
export const DEFAULT_MAX_REQUEST_BYTES = 16 << 20;
/** Server default for how often the watch stream carries a HEARTBEAT line. */
export const DEFAULT_HEARTBEAT_MS = 10_000;

/** The optional Provider methods a server can declare ('close' is local to each side and never declared). */
export const REMOTE_CAPABILITIES = ['notifyPods', 'nodeConfig', 'ping', 'getContainerLogs', 'runInContainer', 'attachToContainer', 'portForward', 'getStats'] as const;
export type RemoteCapability = (typeof REMOTE_CAPABILITIES)[number];

/**
 * Protocol extensions beyond the Provider interface. `resolvedPod`: GET
 * /v1/pods/{ns}/{pod}/resolved returns the pod exactly as createPod/updatePod received it
 * (env and volumes), so the conformance suite can check delivery end to end.
 */
export const REMOTE_EXTENSIONS = ['resolvedPod'] as const;
export type RemoteExtension = (typeof REMOTE_EXTENSIONS)[number];

/** GET /v1/capabilities. */
export interface CapabilitiesResponse {
  /** "v1". */
  protocol: string;
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

/** Error body of every non-2xx answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export type ErrorCode =
  | 'BadRequest' // 400: malformed JSON, a missing or invalid field, a bad query parameter
  | 'UnsupportedVersion' // 400: /v2/... or a VK-Provider-Protocol header other than 1
  | 'Unauthorized' // 401: missing or wrong bearer token
  | 'NotFound' // 404: the pod or container is unknown to the provider
  | 'UnknownPath' // 404: no such endpoint
  | 'MethodNotAllowed' // 405
  | 'PayloadTooLarge' // 413
  | 'UnsupportedMediaType' // 415: a body that is not application/json
  | 'ProviderError' // 500: the provider refused or failed the operation (its message is passed on)
  | 'Internal' // 500: a bug in the server
  | 'Unsupported' // 501: the capability is not implemented
  | 'Unhealthy'; // 503: GET /v1/ping when the backend is unhealthy

export const ERROR_STATUS: Record<ErrorCode, number> = {
  BadRequest: 400,
  UnsupportedVersion: 400,
  Unauthorized: 401,
  NotFound: 404,
  UnknownPath: 404,
  MethodNotAllowed: 405,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  ProviderError: 500,
  Internal: 500,
  Unsupported: 501,
  Unhealthy: 503,
};

/** One line of GET /v1/pods/watch. Clients ignore types they do not know. */
export type WatchEvent = { type: 'READY' } | { type: 'HEARTBEAT' } | { type: 'POD'; pod: Pod };

// --- Paths.

const seg = encodeURIComponent;
export const paths = {
  capabilities: () => `${PROTOCOL_PREFIX}/capabilities`,
  ping: () => `${PROTOCOL_PREFIX}/ping`,
  node: () => `${PROTOCOL_PREFIX}/node`,
  stats: () => `${PROTOCOL_PREFIX}/stats`,
  pods: () => `${PROTOCOL_PREFIX}/pods`,
  watch: () => `${PROTOCOL_PREFIX}/pods/watch`,
  pod: (ns: string, name: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}`,
  podStatus: (ns: string, name: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/status`,
  resolved: (ns: string, name: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/resolved`,
  logs: (ns: string, name: string, c: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/logs`,
  exec: (ns: string, name: string, c: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/exec`,
  attach: (ns: string, name: string, c: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/containers/${seg(c)}/attach`,
  portForward: (ns: string, name: string) => `${PROTOCOL_PREFIX}/pods/${seg(ns)}/${seg(name)}/portforward`,
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
      volumes.push({ name: v.name, type: 'files', source: v.source, files: v.files.map((f) => ({ path: f.path, content: Buffer.from(f.content.buffer, f.content.byteOffset, f.content.byteLength).toString('base64'), mode: f.mode })) });
    } else {
      volumes.push({ name: v.name, type: 'emptyDir', medium: v.medium, ...(v.sizeLimit !== undefined && { sizeLimit: v.sizeLimit }) });
    }
  }
  const pullSecrets = resolved.pullSecrets?.map((secret) => ({ name: secret.metadata?.name ?? '', ...(secret.type && { type: secret.type }), data: secret.data ?? {} }));
  return { pod: resolved.pod, volumes, ...(pullSecrets && { pullSecrets }) };
}

export function decodeResolvedPod(wire: WireResolvedPod): ResolvedPod {
  const volumes = new Map<string, ResolvedVolume>();
  for (const v of wire.volumes) {
    if (v.type === 'files') {
      // Plain Uint8Arrays, as the core hands them over.
      volumes.set(v.name, { name: v.name, type: 'files', source: v.source, files: v.files.map((f) => ({ path: f.path, content: new Uint8Array(Buffer.from(f.content, 'base64')), mode: f.mode })) });
    } else {
      volumes.set(v.name, { name: v.name, type: 'emptyDir', medium: v.medium, ...(v.sizeLimit !== undefined && { sizeLimit: v.sizeLimit }) });
    }
  }
  const namespace = wire.pod.metadata?.namespace;
  const pullSecrets = wire.pullSecrets?.map((s) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: s.name, namespace }, ...(s.type && { type: s.type }), data: s.data }));
  return { pod: wire.pod, volumes, ...(pullSecrets && { pullSecrets }) };
}

// --- Validation of what arrives from the wire (both sides): a Pod must at least name itself.

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

/** A pod to create or update: its UID is required, the provider keys incarnations on it. */
const podWithUidSchema = podSchema.extend({ metadata: metadataSchema.extend({ uid: z.string().min(1) }) });

const wireVolumeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    name: z.string().min(1),
    type: z.literal('files'),
    source: z.enum(['configMap', 'secret', 'downwardAPI', 'projected']),
    files: z.array(z.strictObject({ path: z.string().min(1), content: z.string().regex(BASE64, 'expected base64'), mode: z.number().int().min(0).max(0o7777) })),
  }),
  z.strictObject({ name: z.string().min(1), type: z.literal('emptyDir'), medium: z.string(), sizeLimit: z.string().optional() }),
]);

const wirePullSecretSchema = z.strictObject({ name: z.string().min(1), type: z.string().optional(), data: z.record(z.string(), z.string().regex(BASE64, 'expected base64')) });

export const wireResolvedPodSchema = z.strictObject({ pod: podWithUidSchema, volumes: z.array(wireVolumeSchema).default([]), pullSecrets: z.array(wirePullSecretSchema).optional() });

/** Body of DELETE /v1/pods/{ns}/{pod}: the pod as the API server has it (uid, grace period). */
export const deleteBodySchema = z.strictObject({ pod: podSchema });

export const podListSchema = z.strictObject({ items: z.array(podSchema) });
export const statsSchema = z.strictObject({ pods: z.array(z.looseObject({ namespace: z.string(), name: z.string(), uid: z.string(), containers: z.array(z.looseObject({ name: z.string() })) })) });

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
  name: z.string().min(1),
  capabilities: z.array(z.string()),
  extensions: z.array(z.string()).optional(),
  maxRequestBytes: z.number().int().positive().optional(),
  heartbeatIntervalMs: z.number().int().positive().optional(),
  server: z.string().optional(),
});

export const errorBodySchema = z.looseObject({ error: z.looseObject({ code: z.string(), message: z.string() }) });

export const watchEventSchema = z.discriminatedUnion('type', [z.looseObject({ type: z.literal('READY') }), z.looseObject({ type: z.literal('HEARTBEAT') }), z.looseObject({ type: z.literal('POD'), pod: podSchema })]);

/** Types re-exported so implementers of either side import one module. */
export type { NodeConfig, Pod, PodStats, PodStatus };

/** One line for the first issue of a zod error: "pod.metadata.uid: expected a string (and 2 more)". */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  let path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
  let text = issue.message;
  if (issue.code === 'invalid_type') text = /received undefined$/.test(issue.message) ? `required (${issue.expected})` : `expected ${issue.expected}`;
  if (issue.code === 'unrecognized_keys') {
    path = [path, issue.keys[0] ?? ''].filter(Boolean).join('.');
    text = 'unknown field';
  }
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${path ? `${path}: ` : ''}${text}${more}`;
}
