/**
 * Receptive field per channel from Δ (app/analysis/receptive-field.ts) against values worked out by
 * hand from its definition: constant Δ = c with slowest decay a reaches floor(ln(1/ε)/(a·c)) + 1
 * tokens; a spike of Δ at token k cuts the reach at k (the state was reset there); the slowest
 * state of a channel decides; global ⇔ reach = T; the sort order; bad shapes are refused.
 */
import { describe, expect, it } from 'vitest';
import { reachByGroup, receptiveField } from '../../app/analysis/receptive-field';

const T = 10;
// Three channels, two states each: A [3, 2].
const A = Float32Array.from([-1, -2, -0.01, -3, -1, -1]);
const delta = new Float32Array(T * 3);
for (let t = 0; t < T; t++) {
  delta[t * 3 + 0] = 0.5; // constant
  delta[t * 3 + 1] = 0.5; // constant, but its slowest state decays 100× slower
  delta[t * 3 + 2] = t === 6 ? 5 : 0; // one spike: a reset at token 6
}

describe('receptiveField', () => {
  it('counts the tokens back whose write keeps at least ε, from the slowest state', () => {
    const rf = receptiveField(delta, T, 3, A, 2, 0.1);
    // Channel 0: a = 1, k·0.5 ≤ ln 10 = 2.3026 ⇔ k ≤ 4 → tokens T−1 … T−5: 5.
    expect(rf.decayRate[0]).toBe(1);
    expect(rf.reach[0]).toBe(5);
    expect(rf.global[0]).toBe(0);
    expect(rf.deltaSum[0]).toBeCloseTo(4.5, 12);
    expect(rf.logRetention[0]).toBeCloseTo(-4.5, 12);
    // Channel 1: a = 0.01, 9·0.5·0.01 = 0.045 ≤ 2.3: every token, global.
    expect(rf.decayRate[1]).toBeCloseTo(0.01, 9);
    expect(rf.reach[1]).toBe(T);
    expect(rf.global[1]).toBe(1);
    expect(rf.logRetention[1]).toBeCloseTo(-0.045, 7); // A and Δ are float32
    // Channel 2: Δ_6 = 5 decays everything before token 6 by e^−5 < 0.1: tokens 9, 8, 7, 6.
    expect(rf.reach[2]).toBe(4);
    expect(rf.globalCount).toBe(1);
    expect([...rf.order]).toEqual([1, 0, 2]);
    // A looser threshold (ε = 0.01, ln 100 = 4.6): channel 0 reaches k ≤ 9.2 → all 10 tokens.
    expect(receptiveField(delta, T, 3, A, 2, 0.01).reach[0]).toBe(10);
    // A stricter one (ε = 0.5, ln 2 = 0.693): k ≤ 1.39 → 2 tokens.
    expect(receptiveField(delta, T, 3, A, 2, 0.5).reach[0]).toBe(2);
  });

  it('one head per Δ column (Mamba-2: aStates 1), and the group means', () => {
    const rf = receptiveField(Float32Array.from([1, 0.2, 1, 0.2, 1, 0.2]), 3, 2, Float32Array.from([-1, -1]), 1, 0.1);
    // Head 0: Σ_{s>j} Δ = 0, 1, 2 ≤ 2.30 → 3 (global); head 1: 0, 0.2, 0.4 → 3.
    expect([...rf.reach]).toEqual([3, 3]);
    expect(rf.logRetention[0]).toBeCloseTo(-2, 12);
    expect(rf.logRetention[1]).toBeCloseTo(-0.4, 6);
    expect([...rf.order]).toEqual([1, 0]); // equal reach: less decay first
    expect(reachByGroup(rf, [0])).toEqual({ inside: 3, outside: 3 });
    expect(reachByGroup(rf, [5]).inside).toBeNaN();
  });

  it('refuses shapes that do not match and thresholds outside (0, 1)', () => {
    expect(() => receptiveField(new Float32Array(5), 2, 3, new Float32Array(3), 1)).toThrow(/Δ has 5 values, not 2 × 3/);
    expect(() => receptiveField(new Float32Array(6), 2, 3, new Float32Array(4), 1)).toThrow(/A has 4 values/);
    expect(() => receptiveField(new Float32Array(6), 2, 3, new Float32Array(3), 1, 1)).toThrow(/threshold/);
    expect(() => receptiveField(new Float32Array(0), 0, 3, new Float32Array(3), 1)).toThrow(/0 tokens/);
  });
});

describe('receptive-field panel data', () => {
  it('summarises a layer, lists units in rank order for CSV, and has no field without the layer’s Δ', async () => {
    const { fieldColumns, fieldSummary, layerField } = await import('../../renderer/src/panels/receptive-field-view');
    const rf = receptiveField(delta, T, 3, A, 2, 0.1);
    // Reaches 5, 10, 4: median 5; focus {1} → 10 against (5 + 4) / 2.
    expect(fieldSummary(rf, 7, [1])).toEqual({ layer: 7, global: 1, local: 2, medianReach: 5, focusReach: 10, otherReach: 4.5 });
    const cols = Object.fromEntries(fieldColumns(rf, 'channel', [1]).map((c) => [c.name, Array.from(c.values)]));
    expect(cols.channel).toEqual([1, 0, 2]);
    expect(cols.reach_tokens).toEqual([10, 5, 4]);
    expect(cols.kind).toEqual(['global', 'local', 'local']);
    expect(cols.focus).toEqual([1, 0, 0]);
    expect(cols.retention_over_window?.[1]).toBeCloseTo(Math.exp(-4.5), 12);
    const view = { ids: new Array(T).fill(0), delta: [delta, new Float32Array(0)], A: [A, A], aStates: 2, deltaWidth: 3, layers: [0, 1] } as unknown as Parameters<typeof layerField>[0];
    expect(layerField(view, 0, 0.1)?.reach[0]).toBe(5);
    expect(layerField(view, 1, 0.1)).toBeNull(); // a long trace's window of layer 1 not fetched
  });
});
