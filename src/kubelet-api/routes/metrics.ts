// GET /metrics: the process's own Prometheus registry. GET /metrics/resource: the kubelet's
// resource metrics (what metrics-server scrapes), from the provider's stats.
import type { Registry } from 'prom-client';
import { NotFoundError } from '../../errors.ts';
import { sendText, type RouteContext } from '../http.ts';
import { RESOURCE_METRICS_CONTENT_TYPE, resourceMetricsText, type StatsSource } from '../stats.ts';

/** `registry` is asked on each scrape: a node's registry is built on its first (most nodes of a big process are never scraped). */
export function processMetrics(registry: (() => Registry) | undefined) {
  return async (ctx: RouteContext): Promise<void> => {
    if (!registry) throw new NotFoundError('404 page not found');
    const current = registry();
    sendText(ctx.res, 200, await current.metrics(), current.contentType);
  };
}

export function resourceMetrics(stats: StatsSource) {
  return async (ctx: RouteContext): Promise<void> => {
    let text: string;
    try {
      text = resourceMetricsText(await stats.summary(ctx.signal));
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message }, 'resource metrics: provider stats failed');
      text = resourceMetricsText(undefined);
    }
    sendText(ctx.res, 200, text, RESOURCE_METRICS_CONTENT_TYPE);
  };
}
