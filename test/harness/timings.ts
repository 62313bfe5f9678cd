// Quick node loops for tests and benchmarks that start virtual nodes in-process; the pod path keeps its defaults.
export const FAST_TIMINGS = {
  podWorkers: 4,
  resyncIntervalMs: 10_000,
  statusPollIntervalMs: 500,
  leaseDurationSeconds: 40,
  leaseRenewIntervalMs: 1_000,
  statusUpdateIntervalMs: 10_000,
  pingIntervalMs: 200,
  pingTimeoutMs: 1_000,
};
