/**
 * checkpointInterval (app/analysis/checkpoints.ts, issue 18): the tokens between state
 * checkpoints are a multiple of the model's prefill chunk, at least `min`, and ceil(T / every)
 * checkpoints fit the budget; the smallest such multiple is chosen. Checked by hand on a few cases
 * and against the three conditions by brute force over random shapes (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkpointInterval } from '../../app/analysis/checkpoints';

describe('checkpointInterval', () => {
  it('hand-worked cases', () => {
    // 50 states fit; 100,000 / 50 = 2,000 tokens apart at least; next multiple of 256: 2,048.
    expect(checkpointInterval({ analysisTokens: 256, stateBytes: 1000 }, 100_000, 50_000)).toBe(2048);
    // The budget allows every 100 tokens, but min 1,024 wins (a multiple of 256 already).
    expect(checkpointInterval({ analysisTokens: 256, stateBytes: 1000 }, 100_000, 1_000_000)).toBe(1024);
    // min 1,000 rounds up to the chunk: 1,024.
    expect(checkpointInterval({ analysisTokens: 256, stateBytes: 1000 }, 10, 1e9, 1000)).toBe(1024);
    // Chunk 16, min 1: 203 tokens, 6 states fit: ceil(203 / 6) = 34 → 48 (5 checkpoints).
    expect(checkpointInterval({ analysisTokens: 16, stateBytes: 10 }, 203, 65, 1)).toBe(48);
    // No tokens yet: the least interval.
    expect(checkpointInterval({ analysisTokens: 16, stateBytes: 10 }, 0, 10, 1)).toBe(16);
  });

  it('is the least multiple of maxTokens that is ≥ min and fits the budget', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4096 }),
        fc.integer({ min: 1, max: 1e7 }),
        fc.integer({ min: 0, max: 2e6 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1, max: 5000 }),
        (M, stateBytes, tokens, states, min) => {
          const budget = states * stateBytes + Math.floor(stateBytes / 2);
          const every = checkpointInterval({ analysisTokens: M, stateBytes }, tokens, budget, min);
          const fits = (e: number) => Math.ceil(tokens / e) * stateBytes <= budget;
          expect(every % M).toBe(0);
          expect(every).toBeGreaterThanOrEqual(min);
          expect(fits(every)).toBe(true);
          // One chunk less would break a condition.
          const less = every - M;
          expect(less < min || less <= 0 || !fits(less)).toBe(true);
        },
      ),
    );
  });

  it('refuses a budget below one state and bad counts', () => {
    expect(() => checkpointInterval({ analysisTokens: 16, stateBytes: 1000 }, 100, 999)).toThrow(new RangeError('checkpointInterval: a budget of 999 B holds no checkpoint of this model\'s state (1000 B)'));
    expect(() => checkpointInterval({ analysisTokens: 16, stateBytes: 1000 }, -1, 1e6)).toThrow(RangeError);
    expect(() => checkpointInterval({ analysisTokens: 16, stateBytes: 1000 }, 1.5, 1e6)).toThrow(RangeError);
    expect(() => checkpointInterval({ analysisTokens: 16, stateBytes: 1000 }, 10, 1e6, 0)).toThrow(RangeError);
    expect(() => checkpointInterval({ analysisTokens: 16, stateBytes: 1000 }, 10, Number.NaN)).toThrow(RangeError);
  });
});
