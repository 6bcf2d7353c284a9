/**
 * Prints, after Vitest's own report, every skipped test with its reason and one closing line
 * "tests: N passed, N failed, N skipped" — so a skip is never mistaken for a pass. A file that
 * fails outside its tests (a beforeAll that throws) counts as a failure, and its tests' skips say so.
 */
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skips: string[] = [];
    for (const module of testModules) {
      let failedTests = 0;
      // A file can fail outside its tests (it failed to load, or a beforeAll hook threw); its tests
      // then report 'skipped' with no note. That file counts as one failure, and its skips say why.
      const fileError = module.state() === 'failed' ? (module.errors()[0]?.message ?? 'the file failed') : null;
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state === 'passed') passed++;
        else if (result.state === 'failed') {
          failed++;
          failedTests++;
        } else if (result.state === 'skipped') {
          skipped++;
          const why = result.note ?? (fileError ? `not run: the file failed (${fileError.split('\n')[0]})` : '');
          skips.push(`  skipped: ${test.project.name} › ${test.fullName}${why ? ` — ${why}` : ''}`);
        }
      }
      if (fileError !== null && failedTests === 0) {
        failed++;
        skips.push(`  failed: ${module.project.name} › ${relative(process.cwd(), module.moduleId)} — ${fileError.split('\n')[0]}`);
      }
    }
    failed += unhandledErrors.length;
    const out = process.stdout;
    if (skips.length) out.write(`\nSkipped tests and why (and files that failed outside their tests):\n${skips.join('\n')}\n`);
    out.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
