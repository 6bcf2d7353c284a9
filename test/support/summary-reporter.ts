/**
 * Prints, after Vitest's own report, every skipped test with its reason and one closing line
 * "tests: N passed, N failed, N skipped" — so a skip is never mistaken for a pass.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const skips: string[] = [];
    for (const module of testModules) {
      if (module.state() === 'failed' && module.children.size === 0) failed++; // a file that failed to load
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state === 'passed') passed++;
        else if (result.state === 'failed') failed++;
        else if (result.state === 'skipped') {
          skipped++;
          skips.push(`  skipped: ${test.project.name} › ${test.fullName}${result.note ? ` — ${result.note}` : ''}`);
        }
      }
    }
    failed += unhandledErrors.length;
    const out = process.stdout;
    if (skips.length) out.write(`\nSkipped tests and why:\n${skips.join('\n')}\n`);
    out.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
