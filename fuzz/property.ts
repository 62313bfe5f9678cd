// One fast-check property run, summarised for the results file: how many cases, and for a
// failure the seed, the path to replay it and the shrunk input.
import fc from 'fast-check';

/** The seed every run uses unless told otherwise, so a run repeats. */
export const DEFAULT_SEED = 20261206;

export interface PropertyResult {
  name: string;
  runs: number;
  seed: number;
  failed: boolean;
  /** On failure: the error, the shrunk counterexample (truncated), and fast-check's replay path. */
  error?: string;
  counterexample?: string;
  path?: string;
}

export async function checkProperty<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (input: T) => Promise<void>,
  options: { numRuns: number; seed: number },
): Promise<PropertyResult> {
  const details = await fc.check(fc.asyncProperty(arb, predicate), { numRuns: options.numRuns, seed: options.seed, endOnFailure: false });
  const result: PropertyResult = { name, runs: details.numRuns, seed: options.seed, failed: details.failed };
  if (details.failed) {
    const error = details.errorInstance;
    result.error = error instanceof Error ? error.message : String(error);
    result.counterexample = fc.stringify(details.counterexample).slice(0, 2000);
    result.path = details.counterexamplePath ?? '';
  }
  return result;
}
