/**
 * The logit-lens panel's data (renderer/src/panels/logit-lens-view.ts) from a hand-made result of
 * 2 layers × 2 positions, top 2: the cell readout indexes [layer, position, k], labels replace the
 * engine's texts, the CSV has one row per (layer, position), the figure's matrix is [positions, layers].
 */
import { describe, expect, it } from 'vitest';
import type { LogitLensResult } from '../../app/engine/protocol';
import { lensCell, lensColumns, lensFigure, lensMatrix } from '../../renderer/src/panels/logit-lens-view';

const result: LogitLensResult = {
  layers: [0, 1],
  from: 5,
  to: 7,
  k: 2,
  // cells (layer, position): (0,5) (0,6) (1,5) (1,6), each [top1, top2]
  topIds: Int32Array.from([3, 4, 4, 3, 1, 2, 2, 1]),
  topProbs: Float32Array.from([0.5, 0.25, 0.5, 0.125, 0.75, 0.125, 0.625, 0.25]),
  targetIds: Int32Array.from([1, 2]),
  target: 'final',
  targetRank: Int32Array.from([3, 5, 0, 0]),
  targetProb: Float32Array.from([0.0625, 0.03125, 0.75, 0.625]),
  texts: { 1: 'a', 2: 'b', 3: 'c', 4: 'd' },
};

describe('logit lens view', () => {
  it('reads a cell: top k, the target with its rank and probability, labels first', () => {
    expect(lensCell(result, 0, 1)).toEqual({
      layer: 0,
      position: 6,
      top: [
        { id: 4, text: 'd', prob: 0.5 },
        { id: 3, text: 'c', prob: 0.125 },
      ],
      target: { id: 2, text: 'b', rank: 5, prob: 0.03125 },
    });
    expect(lensCell(result, 1, 0, ['·', 'A', 'B', 'C', 'D']).top[0]).toEqual({ id: 1, text: 'A', prob: 0.75 });
  });

  it('writes one CSV row per (layer, position), layers outer, and the figure matrix [positions, layers]', () => {
    const cols = Object.fromEntries(lensColumns(result).map((c) => [c.name, Array.from(c.values)]));
    expect(cols.layer).toEqual([0, 0, 1, 1]);
    expect(cols.position).toEqual([5, 6, 5, 6]);
    expect(cols.target_rank).toEqual([3, 5, 0, 0]);
    expect(cols.top2_text).toEqual(['d', 'c', 'b', 'a']);
    expect([...lensMatrix(result)]).toEqual([0.0625, 0.75, 0.03125, 0.625]);
  });

  it('names a hybrid’s layers by kind in the figure (SSM blocks as a pure Mamba’s)', () => {
    expect(lensFigure(result, ['x', 'y', 'z', 'w', 'v', 'u', 't']).spec.yNames).toEqual(['layer 0', 'layer 1']);
    const blocks = [
      { kind: 'ssm' as const, layer: 0 },
      { kind: 'attention' as const, layer: 1 },
    ];
    expect(lensFigure(result, ['x', 'y', 'z', 'w', 'v', 'u', 't'], blocks).spec.yNames).toEqual(['layer 0', 'layer 1 · attention']);
  });
});
