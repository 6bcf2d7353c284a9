/**
 * The patching panel's data (renderer/src/panels/patching-view.ts) from a hand-made result of 2
 * layers × tokens [3, 5): the colour range is symmetric and at least ±1, the figure matrix is
 * [tokens, layers], the CSV names absolute tokens and their texts.
 */
import { describe, expect, it } from 'vitest';
import type { PatchingResult } from '../../app/engine/protocol';
import { patchColumns, patchMatrix, patchRange } from '../../renderer/src/panels/patching-view';
import { parseRange } from '../../renderer/src/panels/token-range';

const result: PatchingResult = {
  site: 'state',
  layers: [0, 1],
  tokens: 6,
  from: 3,
  to: 5,
  answer: 2,
  foil: 4,
  answerText: 'b',
  foilText: 'd',
  cleanDiff: 3,
  corruptDiff: -1,
  // [layer 0: t3, t4; layer 1: t3, t4]
  patchedDiff: Float64Array.from([-1, 0, 3, 4.6]),
  restored: Float64Array.from([0, 0.25, 1, 1.4]),
};

describe('patching view', () => {
  it('colours symmetrically, at least ±1', () => {
    expect(patchRange(result)).toEqual({ min: -1.4, max: 1.4 });
    expect(patchRange({ ...result, restored: Float64Array.from([0, 0.5, NaN, -0.2]) })).toEqual({ min: -1, max: 1 });
  });

  it('lays the cells out as [tokens, layers] for the figure and one CSV row per (layer, token)', () => {
    expect([...patchMatrix(result)]).toEqual([0, 1, 0.25, 1.4].map(Math.fround));
    const cols = Object.fromEntries(patchColumns(result, ['a', 'b', 'c', 'd', 'e', 'f']).map((c) => [c.name, Array.from(c.values)]));
    expect(cols.layer).toEqual([0, 0, 1, 1]);
    expect(cols.token).toEqual([3, 4, 3, 4]);
    expect(cols.text).toEqual(['d', 'e', 'd', 'e']);
    expect(cols.restored_fraction).toEqual([0, 0.25, 1, 1.4]);
    expect(cols.patched_logit_diff).toEqual([-1, 0, 3, 4.6]);
  });

  it('reads a typed token range of a prompt, and says what is wrong with one that is not', () => {
    expect(parseRange('0', '4', 49, 'Tokens')).toEqual({ from: 0, to: 4 });
    expect(parseRange('48', '49', 49, 'Tokens')).toEqual({ from: 48, to: 49 });
    for (const [from, to] of [['4', '4'], ['0', '50'], ['-1', '3'], ['1.5', '3'], ['', '3'], ['a', '3']]) {
      expect(parseRange(from!, to!, 49, 'Tokens')).toEqual({ error: `Tokens “${from}” … “${to}” are not a range of the prompt: whole numbers with 0 ≤ from < to ≤ 49.` });
    }
  });
});
