// `npm run test:fuzz`: the fuzz suite (test/unit/fuzz-*.test.ts) as a longer campaign — 20× the
// cases per property that CI runs (FUZZ_RUNS, 1000 by default there; set FUZZ_RUNS or FUZZ_SEED
// to choose), in one Vitest run. Arguments are file filters (default: every fuzz file).
import { startVitest } from 'vitest/node';

process.env.FUZZ_RUNS ||= '20000';
const filters = process.argv.slice(2);
const vitest = await startVitest('test', filters.length ? filters : ['test/unit/fuzz-'], { run: true, project: ['unit'] });
process.exitCode = vitest.state.getCountOfFailedTests() > 0 || vitest.state.getUnhandledErrors().length > 0 ? 1 : 0;
await vitest.close();
