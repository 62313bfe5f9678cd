// What the e2e tests expect of a provider conformance report (conformance/suite.ts).
import assert from 'node:assert/strict';
import { formatReport, type ConformanceReport } from '../../conformance/suite.ts';

/** The cases every provider passes. */
export const CORE_CASES = ['ping', 'create-delete', 'list-get-status', 'status-transitions', 'notify-stream', 'error-paths'];
/** The cases a cloud backend with logs (and no exec, attach or port-forward) passes. */
export const BACKEND_CASES = [...CORE_CASES, 'update', 'restart-policy', 'deletion-while-creating', 'logs'];

export function assertNoFailures(report: ConformanceReport): void {
  assert.equal(report.failed, 0, `conformance failures:\n${formatReport(report)}`);
}

/** Each named case ended with `status`. */
export function assertCases(report: ConformanceReport, status: 'passed' | 'skipped', names: readonly string[]): void {
  const byName = new Map(report.results.map((r) => [r.name, r.status]));
  for (const name of names) assert.equal(byName.get(name), status, `${name}\n${formatReport(report)}`);
}
