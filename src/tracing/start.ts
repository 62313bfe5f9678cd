// Turns tracing on for this process (--tracing-endpoint): loads OpenTelemetry only now, so a
// process that never calls this never loads it.
import { ConfigError } from '../errors.ts';
import { VK_VERSION } from '../version.ts';
import { NOOP_TRACER, setTracer, tracer, type Tracer } from './tracer.ts';

export interface TracingSettings {
  /** OTLP/HTTP endpoint: a base URL (…/v1/traces is appended) or the full traces URL. */
  endpoint: string;
  /** 0..1: the fraction of new traces (pod syncs, kubelet API requests) sampled. */
  samplingRate: number;
  serviceName?: string;
}

/** The traces URL for an endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT (base) or …_TRACES_ENDPOINT (full) would give it. */
export function tracesUrl(endpoint: string, field = '--tracing-endpoint'): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`${field}: expected an http(s) URL such as http://127.0.0.1:4318, got ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`${field}: expected an http(s) URL (OTLP over HTTP), got ${JSON.stringify(endpoint)}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/traces';
  return url.toString();
}

export function checkSamplingRate(rate: number, field = '--tracing-sampling-rate'): number {
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new ConfigError(`${field}: expected a number from 0 to 1, got ${rate}`);
  return rate;
}

/** Starts exporting spans; the returned tracer is also the process's tracer() from now on. */
export async function startTracing(settings: TracingSettings): Promise<Tracer> {
  const url = tracesUrl(settings.endpoint);
  const samplingRate = checkSamplingRate(settings.samplingRate);
  if (tracer().enabled) throw new ConfigError('tracing is already on in this process');
  const { createOtelTracer } = await import('./otel.ts');
  const started = createOtelTracer({ url, samplingRate, serviceName: settings.serviceName ?? 'virtual-kubelet-ts', serviceVersion: VK_VERSION });
  setTracer(started);
  return started;
}

/** Stops exporting (after a last flush) and puts the no-op tracer back. */
export async function stopTracing(): Promise<void> {
  const running = tracer();
  if (!running.enabled) return;
  setTracer(NOOP_TRACER);
  await running.shutdown();
}
