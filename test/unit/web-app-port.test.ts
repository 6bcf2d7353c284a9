/**
 * The e2e preview server's port (test/support/ports.ts, used by web-app.ts): never one Chromium refuses to load
 * from (net::ERR_UNSAFE_PORT). A random 5061 once failed a whole e2e file in CI.
 */
import { describe, expect, it } from 'vitest';
import { previewPort } from '../support/ports';

describe('previewPort', () => {
  it('skips the SIP ports 5060 and 5061 that Chromium refuses, and stays in 4400–5399', () => {
    // 0.66 → 5060, 0.661 → 5061, then 0.1 → 4500.
    const draws = [0.66, 0.661, 0.1];
    expect(previewPort(() => draws.shift() as number)).toBe(4500);
    for (let i = 0; i < 1000; i++) {
      // Every draw of the range first; a refused one is followed by a draw that is not.
      const sequence = [i / 1000, 0.5];
      const port = previewPort(() => sequence.shift() as number);
      expect(port).toBeGreaterThanOrEqual(4400);
      expect(port).toBeLessThanOrEqual(5399);
      expect([5060, 5061]).not.toContain(port);
    }
  });
});
