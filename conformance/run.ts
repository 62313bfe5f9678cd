// Entry point of `npm run conformance -- ...`; see cli.ts for the options.
import { ConfigError, errorMessage } from '../src/errors.ts';
import { runConformanceCli } from './cli.ts';

try {
  process.exitCode = await runConformanceCli(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`conformance: ${errorMessage(err)}\n`);
  process.exitCode = err instanceof ConfigError ? 2 : 1;
}
