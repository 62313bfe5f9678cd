// GET /stats/summary: the kubelet's Summary API (stats/v1alpha1) from the provider's stats.
import { sendJSON, type RouteContext } from '../http.ts';
import type { StatsSource } from '../stats.ts';

export function statsSummary(stats: StatsSource) {
  return async (ctx: RouteContext): Promise<void> => {
    sendJSON(ctx.res, await stats.summary(ctx.signal));
  };
}
