/**
 * app/analysis/distributions.ts, the one home of softmax, top-k, KL and total variation: against
 * values worked out by hand, and against their definitions on random logits.
 */
import { describe, expect, it } from 'vitest';
import { klDivergence, softmax, topIndices, TOP_NEXT, topTokens, totalVariation } from '../../app/analysis/distributions';

const randn = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());

describe('softmax', () => {
  it('equals hand-computed distributions', () => {
    // e^0 : e^{ln 2} : e^{ln 5} = 1 : 2 : 5, over 8.
    const p = softmax([0, Math.log(2), Math.log(5)]);
    expect(p).toBeInstanceOf(Float64Array);
    [1 / 8, 2 / 8, 5 / 8].forEach((v, i) => expect(p[i]).toBeCloseTo(v, 15));
    expect([...softmax([3, 3, 3, 3])]).toEqual([0.25, 0.25, 0.25, 0.25]);
    // Max-shifted: 1000 and 1001 do not overflow; 1 / (1 + e) and e / (1 + e).
    const big = softmax([1000, 1001]);
    expect(big[0]).toBeCloseTo(1 / (1 + Math.E), 15);
    expect(big[1]).toBeCloseTo(Math.E / (1 + Math.E), 15);
    expect([...softmax([-Infinity, 0])]).toEqual([0, 1]);
  });

  it('softmax, KL and total variation equal their definitions on random logits', () => {
    const V = 9;
    const logits = () => Float64Array.from({ length: V }, () => randn() * 2);
    const l = logits();
    const p = softmax(l);
    const z = l.reduce((s, v) => s + Math.exp(v), 0);
    for (let i = 0; i < V; i++) expect(p[i]).toBeCloseTo(Math.exp(l[i]!) / z, 14);
    expect(softmax([1000, 1000])).toEqual(Float64Array.from([0.5, 0.5]));
    const q = softmax(logits());
    let kl = 0;
    let tv = 0;
    for (let i = 0; i < V; i++) {
      kl += p[i]! * Math.log(p[i]! / q[i]!);
      tv += Math.abs(p[i]! - q[i]!);
    }
    expect(klDivergence(p, q)).toBeCloseTo(kl, 12);
    expect(klDivergence(p, p)).toBe(0);
    expect(klDivergence(p, q)).toBeGreaterThan(0);
    expect(totalVariation(p, q)).toBeCloseTo(tv / 2, 12);
    expect(klDivergence([0, 1], [0.5, 0.5])).toBeCloseTo(Math.log(2), 14);
    expect(klDivergence([1, 0], [0, 1])).toBe(Infinity);
  });
});

describe('top k', () => {
  it('orders the largest first, ties to the lower index', () => {
    expect(topIndices([0.1, 0.5, 0.5, 0.2, 0.9], 3)).toEqual([4, 1, 2]);
    expect(topIndices([0.1, 0.5, 0.5, 0.2, 0.9], 2)).toEqual([4, 1]);
    expect(topIndices([7, 7, 7], 2)).toEqual([0, 1]);
    expect(topIndices([3, 1, 2], 5)).toEqual([0, 2, 1]);
    expect(topIndices([3, 1, 2], 0)).toEqual([]);
    expect(topIndices([-1, -Infinity, -0.5], 3)).toEqual([2, 0, 1]);
  });

  it('writes the top k of softmax(logits) into [T, k] rows', () => {
    // softmax([0, ln 3, ln 3, 0]) = [1/8, 3/8, 3/8, 1/8]: the tie goes to id 1, then 2.
    const ids = new Int32Array(6).fill(-7);
    const probs = new Float32Array(6).fill(NaN);
    topTokens([0, Math.log(3), Math.log(3), 0], 2, ids, probs, 2);
    expect([...ids]).toEqual([-7, -7, 1, 2, -7, -7]);
    expect(probs[2]).toBeCloseTo(0.375, 7);
    expect(probs[3]).toBeCloseTo(0.375, 7);
    expect(Number.isNaN(probs[0]!) && Number.isNaN(probs[4]!)).toBe(true);
    expect(TOP_NEXT).toBe(5);
  });
});

describe('distances', () => {
  it('equal hand-computed KL and total variation', () => {
    // KL([½, ½] ‖ [¼, ¾]) = ½·ln 2 + ½·ln(2/3) = ½·ln(4/3); TV = ½·(¼ + ¼) = ¼.
    expect(klDivergence([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.5 * Math.log(4 / 3), 15);
    expect(totalVariation([0.5, 0.5], [0.25, 0.75])).toBe(0.25);
    expect(klDivergence([1, 0], [0.5, 0.5])).toBeCloseTo(Math.log(2), 15);
    expect(totalVariation([1, 0, 0], [0, 0, 1])).toBe(1);
    expect(totalVariation([0.2, 0.8], [0.2, 0.8])).toBe(0);
  });

  it('refuses distributions of different sizes', () => {
    expect(() => klDivergence([1], [0.5, 0.5])).toThrow('klDivergence: 1 vs 2 probabilities');
    expect(() => totalVariation([1], [0.5, 0.5])).toThrow('totalVariation: 1 vs 2 probabilities');
  });
});
