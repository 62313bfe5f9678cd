// The tracing seam the core calls: a no-op unless `--tracing-endpoint` started OpenTelemetry
// (src/tracing/start.ts loads it then, and only then). Call sites on the pod path check
// `tracer().enabled` first so that a process without tracing allocates nothing for it.

/** Span attribute values (OpenTelemetry's primitive kinds). */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

export interface Span {
  setAttribute(key: string, value: string | number | boolean): void;
  /** Ends the span; an error marks it failed and is recorded on it. */
  end(err?: unknown): void;
}

export interface SpanOptions {
  /** server: a request this process answers; client: a call it makes to another process. */
  kind?: 'internal' | 'server' | 'client';
  /**
   * Attributes children inherit (the pod's namespace/name/UID on a pod sync), so that a
   * provider call's span says which pod it was for without each call site knowing.
   */
  inherited?: SpanAttributes;
  /** A W3C traceparent received from another process: the span's parent instead of the active span. */
  remoteParent?: string;
}

export interface Tracer {
  readonly enabled: boolean;
  /** Runs fn in a new span, the child of the active one (or of options.remoteParent); ends it when fn settles. */
  inSpan<T>(name: string, attributes: SpanAttributes, fn: (span: Span) => Promise<T>, options?: SpanOptions): Promise<T>;
  /** The active span's W3C traceparent, for a call to another process; undefined when none. */
  traceparent(): string | undefined;
  /** Exports what has ended so far. */
  flush(): Promise<void>;
  /** Flushes, then stops exporting. */
  shutdown(): Promise<void>;
}

const NOOP_SPAN: Span = { setAttribute: () => {}, end: () => {} };

export const NOOP_TRACER: Tracer = {
  enabled: false,
  inSpan: (_name, _attributes, fn) => fn(NOOP_SPAN),
  traceparent: () => undefined,
  flush: async () => {},
  shutdown: async () => {},
};

let current: Tracer = NOOP_TRACER;

/** The process's tracer (tracing is configured per process, like OpenTelemetry's global provider). */
export function tracer(): Tracer {
  return current;
}

export function setTracer(next: Tracer): void {
  current = next;
}

/** Attribute names (OpenTelemetry semantic conventions for Kubernetes). */
export const ATTR = {
  namespace: 'k8s.namespace.name',
  pod: 'k8s.pod.name',
  uid: 'k8s.pod.uid',
  node: 'k8s.node.name',
} as const;
