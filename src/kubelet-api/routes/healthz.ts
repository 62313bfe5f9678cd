// GET /healthz, /healthz/{check}: "ok" when every check passes, in the format of Kubernetes'
// healthz package ([+]name ok / [-]name failed, with ?verbose).
import { NotFoundError } from '../../errors.ts';
import { sendText, type RouteContext } from '../http.ts';

/** A named check: undefined when healthy, else the reason. */
export type HealthCheck = () => string | undefined;

export function healthz(checks: Record<string, HealthCheck>) {
  return (ctx: RouteContext): void => {
    const only = ctx.params.check;
    if (only !== undefined) {
      const check = checks[only];
      if (!check) throw new NotFoundError('404 page not found');
      const reason = check();
      if (reason === undefined) sendText(ctx.res, 200, 'ok');
      else sendText(ctx.res, 500, `internal server error: ${reason}\n`);
      return;
    }
    const results = Object.entries(checks).map(([name, check]) => ({ name, reason: check() }));
    const failed = results.some((r) => r.reason !== undefined);
    const verbose = ctx.url.searchParams.has('verbose');
    if (!failed && !verbose) {
      sendText(ctx.res, 200, 'ok');
      return;
    }
    const lines = results.map((r) => (r.reason === undefined ? `[+]${r.name} ok` : `[-]${r.name} failed: ${verbose ? r.reason : 'reason withheld'}`));
    lines.push(failed ? 'healthz check failed' : 'healthz check passed');
    sendText(ctx.res, failed ? 500 : 200, `${lines.join('\n')}\n`);
  };
}
