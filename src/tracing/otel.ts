// The OpenTelemetry side of src/tracing/tracer.ts: spans exported as OTLP/HTTP JSON. Loaded
// only by startTracing (dynamic import), so a process without --tracing-endpoint never loads
// an @opentelemetry module. Nothing is registered globally: the SDK clients that look for a
// global OpenTelemetry (Azure, AWS) keep their own behaviour.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  createContextKey,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Context,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { errorMessage } from '../errors.ts';
import type { Span, SpanAttributes, SpanOptions, Tracer } from './tracer.ts';

export interface OtelTracerOptions {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  url: string;
  /** Fraction of new traces sampled; a remote parent's decision is followed. */
  samplingRate: number;
  serviceName: string;
  serviceVersion: string;
}

const INHERITED = createContextKey('virtual-kubelet-ts inherited span attributes');
const KINDS = { internal: SpanKind.INTERNAL, server: SpanKind.SERVER, client: SpanKind.CLIENT } as const;

export function createOtelTracer(options: OtelTracerOptions): Tracer {
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName, 'service.version': options.serviceVersion }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.samplingRate) }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.url }) })],
  });
  const otel = provider.getTracer('virtual-kubelet-ts', options.serviceVersion);
  const contexts = new AsyncLocalStorageContextManager().enable();
  const propagator = new W3CTraceContextPropagator();

  const parentContext = (remoteParent: string | undefined): Context =>
    remoteParent === undefined ? contexts.active() : propagator.extract(ROOT_CONTEXT, { traceparent: remoteParent }, defaultTextMapGetter);

  return {
    enabled: true,
    async inSpan<T>(name: string, attributes: SpanAttributes, fn: (span: Span) => Promise<T>, spanOptions: SpanOptions = {}): Promise<T> {
      const parent = parentContext(spanOptions.remoteParent);
      const inherited = parent.getValue(INHERITED) as Attributes | undefined;
      const own = { ...inherited, ...definedOnly(spanOptions.inherited), ...definedOnly(attributes) };
      const otelSpan = otel.startSpan(name, { kind: KINDS[spanOptions.kind ?? 'internal'], attributes: own }, parent);
      let ctx = trace.setSpan(parent, otelSpan);
      if (spanOptions.inherited) ctx = ctx.setValue(INHERITED, { ...inherited, ...definedOnly(spanOptions.inherited) });
      let ended = false;
      const span: Span = {
        setAttribute: (key, value) => otelSpan.setAttribute(key, value),
        end: (err) => {
          if (ended) return;
          ended = true;
          if (err !== undefined) {
            otelSpan.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
            if (err instanceof Error) otelSpan.recordException(err);
          }
          otelSpan.end();
        },
      };
      try {
        const result = await contexts.with(ctx, () => fn(span));
        span.end();
        return result;
      } catch (err) {
        span.end(err);
        throw err;
      }
    },
    traceparent() {
      const carrier: Record<string, string> = {};
      propagator.inject(contexts.active(), carrier, defaultTextMapSetter);
      return carrier.traceparent;
    },
    flush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      contexts.disable();
    },
  };
}

function definedOnly(attributes: SpanAttributes | undefined): Attributes {
  const out: Attributes = {};
  for (const [key, value] of Object.entries(attributes ?? {})) if (value !== undefined) out[key] = value;
  return out;
}
