/**
 * prefillSplitNote (app/bench/bench.ts): a bench run whose first prefill of a session and the same
 * prefill again differ by more than PREFILL_SPLIT_SPREAD is flagged, so that no decision rests on
 * it — the fourteenth session's channel-scan run (call 119.6 ms, again 89.9) would have been.
 */
import { describe, expect, it } from 'vitest';
import { PREFILL_SPLIT_SPREAD, prefillSplitNote } from '../../app/bench/bench';

const split = (call: number, again: number) => ({ call_ms: call, plan_encode_submit_ms: 10, again_ms: again });

describe('prefillSplitNote', () => {
  it('flags the fourteenth session channel-scan run: 119.6 against 89.9 ms is 33 % apart', () => {
    const note = prefillSplitNote(2048, split(119.58, 89.92), 2);
    expect(note).toMatch(/^prefill 2048: the first call of a session \(119\.6 ms, median of 2\) and the same call again \(89\.9 ms\) differ by 33 %/);
  });

  it('leaves runs that agree alone: that session lanes-scan run (103.2 against 109.0 ms, 6 %), and this one at 4 repeats (78.5, 78.6)', () => {
    expect(prefillSplitNote(2048, split(103.16, 109.04), 2)).toBeNull();
    expect(prefillSplitNote(2048, split(78.5, 78.6), 4)).toBeNull();
  });

  it('the bound is the spread over the faster of the two, either way round', () => {
    expect(PREFILL_SPLIT_SPREAD).toBe(0.15);
    expect(prefillSplitNote(512, split(115, 100), 3)).toBeNull();
    expect(prefillSplitNote(512, split(100, 115.5), 3)).toMatch(/differ by 16 %/);
    expect(prefillSplitNote(512, split(115.5, 100), 3)).toMatch(/differ by 16 %/);
  });

  it('no note from times that are not positive', () => {
    expect(prefillSplitNote(8, split(0, 5), 1)).toBeNull();
    expect(prefillSplitNote(8, split(Number.NaN, 5), 1)).toBeNull();
  });
});
