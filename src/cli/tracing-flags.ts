// --tracing-endpoint and --tracing-sampling-rate, shared by `vk up`, `vk run` and `vk provider-server`.
import { InvalidArgumentError, Option } from 'commander';
import { tracesUrl } from '../tracing/start.ts';

function endpoint(value: string): string {
  try {
    tracesUrl(value);
  } catch {
    throw new InvalidArgumentError('expected an http(s) URL such as http://127.0.0.1:4318.');
  }
  return value;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError('expected a number from 0 to 1.');
  return n;
}

export function tracingEndpointOption(): Option {
  return new Option(
    '--tracing-endpoint <url>',
    'export OpenTelemetry spans (OTLP over HTTP, JSON) to this URL, e.g. http://127.0.0.1:4318 (default: no tracing)',
  ).argParser(endpoint);
}

export function tracingSamplingRateOption(): Option {
  return new Option('--tracing-sampling-rate <0..1>', 'with --tracing-endpoint: the fraction of new traces kept (default 1)').argParser(fraction);
}
