/**
 * The attribution panel's data (renderer/src/panels/attribution-view.ts): ranks with ties at their
 * mean rank, Spearman's ρ against values worked by hand (a monotone pair gives ±1, a textbook
 * example with ties), NaN where it is undefined, the CSV columns, the token strip's bar per token
 * and the figure with hidden attention's bars.
 */
import { describe, expect, it } from 'vitest';
import type { AttributionResult } from '../../app/engine/protocol';
import { attributionColumns, attributionFigure, ranks, spearman, stripAttribution } from '../../renderer/src/panels/attribution-view';
import { parseTarget } from '../../renderer/src/panels/target-input';
import { barCursor } from '../../renderer/src/panels/bar-axes';

describe('attribution view', () => {
  it('ranks with ties averaged, and Spearman’s ρ', () => {
    expect(ranks([10, 30, 20, 20])).toEqual([1, 4, 2.5, 2.5]);
    expect(spearman([1, 2, 3, 4], [10, 100, 1000, 10000])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // Ranks a = 1 2 3 4 5, b = 2 1 4 3 5: d² = 1+1+1+1+0 = 4, ρ = 1 − 6·4/(5·24) = 0.8.
    expect(spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50])).toBeCloseTo(0.8, 12);
    // With ties: a ranks 1 2 3 4, b ranks 1.5 1.5 3 4 → Pearson of the ranks = 4.5 / sqrt(5 · 4.5).
    expect(spearman([1, 2, 3, 4], [7, 7, 8, 9])).toBeCloseTo(4.5 / Math.sqrt(5 * 4.5), 12);
    expect(spearman([1], [2])).toBeNaN();
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(spearman([1, 2, -Infinity], [1, 2, 3])).toBeNaN();
    expect(() => spearman([1, 2], [1])).toThrow(/2 and 1 values/);
  });

  it('writes a row per filtered token (absolute index and text), with the hidden attention column when there is one', () => {
    const result: AttributionResult = { target: 3, targetText: 'c', layers: [0, 1], baselineProb: 0.5, from: 1, to: 3, logProbChange: [-1, 0.5], probAfter: [0.2, 0.8], kl: [0.3, 0.1] };
    const cols = attributionColumns(result, ['w', 'x', 'y'], Float32Array.from([0.25, 0.75]));
    expect(cols.map((c) => c.name)).toEqual(['token', 'text', 'log_prob_change_nats', 'target_prob_after', 'kl_nats', 'hidden_attention_last_row']);
    expect(Array.from(cols[0]!.values)).toEqual([1, 2]); // tokens 1 and 2 were filtered
    expect(Array.from(cols[1]!.values)).toEqual(['x', 'y']);
    expect(Array.from(cols[5]!.values)).toEqual([0.25, 0.75]);
    expect(attributionColumns(result, ['w', 'x', 'y'])).toHaveLength(5);
  });

  it('places the attribution on the strip’s tokens (no bar outside the filtered ones) and adds hidden attention’s bars to the figure', () => {
    const result: AttributionResult = { target: 3, targetText: 'c', layers: [1], baselineProb: 0.5, from: 1, to: 3, logProbChange: [-1, 0.5], probAfter: [0.2, 0.8], kl: [0.3, 0.1] };
    expect(Array.from(stripAttribution(result, 4))).toEqual([NaN, -1, 0.5, NaN]);
    expect(Array.from(stripAttribution(result, 2))).toEqual([NaN, -1]);
    expect(attributionFigure(result, 'c').plots).toHaveLength(1);
    const figure = attributionFigure(result, 'c', { values: [0.25, 0.75], layer: 1 });
    expect(figure.plots.map((p) => [p.kind, p.series[0]!.values])).toEqual([
      ['bars', [-1, 0.5]],
      ['bars', [0.25, 0.75]],
    ]);
    expect(figure.plots[1]!.series[0]!.name).toMatch(/layer 1/);
  });

  it('reads a target as empty (the default), a label or an id, and says what else is wrong', () => {
    expect(parseTarget('  ')).toEqual({ id: null });
    expect(parseTarget('B', ['·', 'A', 'B'])).toEqual({ id: 2 });
    expect(parseTarget('17', ['·', 'A'])).toEqual({ id: 17 });
    expect(parseTarget('x1')).toEqual({ error: 'Target “x1” is neither a token id nor a label of this model.' });
    expect('error' in parseTarget('-3')).toBe(true);
  });

  it('moves a bar chart’s cursor by keys, inside the bars', () => {
    expect(barCursor(null, 'ArrowRight', 5)).toBe(0);
    expect(barCursor(null, 'ArrowLeft', 5)).toBe(0);
    expect(barCursor(3, 'ArrowRight', 5)).toBe(4);
    expect(barCursor(4, 'ArrowRight', 5)).toBe(4);
    expect(barCursor(2, 'PageUp', 5)).toBe(0);
    expect(barCursor(0, 'PageDown', 50)).toBe(10);
    expect(barCursor(1, 'End', 5)).toBe(4);
    expect(barCursor(3, 'Home', 5)).toBe(0);
    expect(barCursor(3, 'Escape', 5)).toBeNull();
    expect(barCursor(3, 'a', 5)).toBeUndefined();
    expect(barCursor(null, 'Home', 0)).toBeUndefined();
  });
});
