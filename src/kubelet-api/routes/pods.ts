// GET /pods (and /runningpods/): the pods the provider runs, as a v1 PodList.
import { sendJSON, type RouteContext } from '../http.ts';

export async function pods(ctx: RouteContext): Promise<void> {
  const items = await ctx.provider.listPods({ signal: ctx.signal });
  sendJSON(ctx.res, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items });
}
