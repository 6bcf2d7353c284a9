/**
 * app/analysis/compare.ts: ‖Δ_t‖ of two traces along the alignment of their ids (align.ts), per
 * layer both traced, B − A and the per-layer summaries, against numbers worked out by hand; and a
 * trace too short for its ids. (The alignment itself: analysis-align.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { compareScores } from '../../app/analysis/compare';

const f32 = (values: number[]) => Float32Array.from(values);

describe('compareScores', () => {
  it('equals a hand-computed comparison', () => {
    // A: 4 tokens, layers 0 and 3; B: 3 tokens, layers 3, 0 and 5; token 1 replaced (11 → 99), A's 13 deleted.
    const a = { ids: [10, 11, 12, 13], layers: [0, 3], deltaNorm: [f32([1, 2, 3, 4]), f32([0.5, 0.5, 0.5, 0.5])] };
    const b = { ids: [10, 99, 12], layers: [3, 0, 5], deltaNorm: [f32([0.5, 1.5, 0]), f32([1, 4, 2]), f32([9, 9, 9])] };
    const cmp = compareScores(a, b);
    expect(cmp.layers).toEqual([0, 3]);
    expect(cmp.tokens).toBe(4);
    expect(cmp.edited).toEqual([1, 3]);
    // Layer 0: A [1, 2, 3, 4], B [1, 4, 2, —]: B − A [0, 2, −1, —]; over the 3 paired columns means 2 and 7/3; mean diff 1/3; max |diff| 2 at 1.
    expect([...cmp.a[0]!]).toEqual([1, 2, 3, 4]);
    expect([...cmp.b[0]!]).toEqual([1, 4, 2, NaN]);
    expect([...cmp.diff[0]!]).toEqual([0, 2, -1, NaN]);
    expect(cmp.summaries[0]!.layer).toBe(0);
    expect(cmp.summaries[0]!.meanA).toBeCloseTo(2, 15);
    expect(cmp.summaries[0]!.meanB).toBeCloseTo(7 / 3, 15);
    expect(cmp.summaries[0]!.meanDiff).toBeCloseTo(1 / 3, 15);
    expect(cmp.summaries[0]).toMatchObject({ maxAbsDiff: 2, maxAt: 1 });
    // Layer 3: A [0.5, 0.5, 0.5], B [0.5, 1.5, 0]: B − A [0, 1, −0.5]; max |diff| 1 at 1.
    expect([...cmp.diff[1]!]).toEqual([0, 1, -0.5, NaN]);
    expect(cmp.summaries[1]).toMatchObject({ layer: 3, meanA: 0.5, meanB: 2 / 3, maxAbsDiff: 1, maxAt: 1 });
    expect(cmp.summaries[1]!.meanDiff).toBeCloseTo(1 / 6, 15);
  });

  it('takes the first position of the largest |B − A|, and reports no difference as 0 at 0', () => {
    const same = { ids: [1, 2], layers: [0], deltaNorm: [f32([3, 3])] };
    expect(compareScores(same, same).summaries[0]).toMatchObject({ meanDiff: 0, maxAbsDiff: 0, maxAt: 0 });
    expect(compareScores(same, same).edited).toEqual([]);
    const b = { ids: [1, 2], layers: [0], deltaNorm: [f32([4, 2])] };
    expect(compareScores(same, b).summaries[0]).toMatchObject({ maxAbsDiff: 1, maxAt: 0 });
  });

  it('compares no layers when the traces share none, and refuses a trace with fewer scores than ids', () => {
    const a = { ids: [1, 2], layers: [0], deltaNorm: [f32([1, 1])] };
    expect(compareScores(a, { ids: [1, 2], layers: [1], deltaNorm: [f32([1, 1])] })).toMatchObject({ layers: [], tokens: 2, summaries: [] });
    expect(() => compareScores(a, { ids: [1, 2], layers: [0], deltaNorm: [f32([1])] })).toThrow('compareScores: layer 0 has fewer scores than tokens (A 2 of 2, B 1 of 2)');
  });
});
