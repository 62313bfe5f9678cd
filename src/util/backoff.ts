// One exponential backoff for every retry loop (work queue, watches, the remote transport):
// base·2^attempt capped at max, with jitter so many retriers do not move in lockstep.

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
  /**
   * - `none`: exactly base·2^attempt (capped): the work queue, whose delays tests and users read.
   * - `proportional`: ±20 % around it, never above the cap (client-go's watch retry).
   * - `full`: anywhere in [0, base·2^attempt] (AWS's "full jitter"): many clients hitting one server.
   */
  jitter: 'none' | 'proportional' | 'full';
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  switch (policy.jitter) {
    case 'none':
      return ceiling;
    case 'proportional':
      return Math.min(policy.maxMs, ceiling * (0.8 + 0.4 * random()));
    case 'full':
      return ceiling * random();
  }
}
