/**
 * The hybrid blocks' float64 references checked against independent values: erf and gelu at
 * points from tables of the normal distribution, RoPE against its definition as a complex
 * rotation (and the two pair layouts against each other), attention with one key (output = v)
 * and with equal keys (uniform probabilities), and the config checks' messages.
 */
import { describe, expect, it } from 'vitest';
import { checkAttentionConfig, type AttentionConfig } from '../../app/arch/hybrid/config';
import { ropeTable } from '../../app/kernels/attention';
import { causalAttentionRef, ropeRef } from '../../app/kernels/attention.ref';
import { activationRef, erf } from '../../app/kernels/mlp-act.ref';

describe('hybrid references', () => {
  it('erf and gelu at known points (Φ(1) = 0.8413447460685429)', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(2)).toBeCloseTo(0.9953222650189527, 14);
    expect(erf(-3.5)).toBeCloseTo(-0.9999992569016276, 14);
    expect(activationRef('gelu', 1)).toBeCloseTo(0.8413447460685429, 14);
    expect(activationRef('gelu', -1)).toBeCloseTo(-0.15865525393145707, 14);
    expect(activationRef('gelu_tanh', 1)).toBeCloseTo(0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * 1.044715)), 14);
    expect(activationRef('relu2', -2)).toBe(0);
    expect(activationRef('relu2', 3)).toBe(9);
  });

  it('RoPE rotates each pair by p·θ^(−2i/r) as a complex product; interleaved and rotate_half are the same rotation on permuted dims', () => {
    const hd = 10;
    const r = 6;
    const x = Array.from({ length: 2 * hd }, (_, i) => Math.sin(i * 1.7) + 0.1 * i);
    const half = ropeRef(x, { rows: 1, heads: 2, headDim: hd, start: 5, rotaryDim: r, theta: 100, interleaved: false });
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < r / 2; i++) {
        const angle = 5 * 100 ** (-2 * i / r);
        const [a, b] = [x[h * hd + i] as number, x[h * hd + i + r / 2] as number];
        expect(half[h * hd + i]).toBeCloseTo(a * Math.cos(angle) - b * Math.sin(angle), 14);
        expect(half[h * hd + i + r / 2]).toBeCloseTo(b * Math.cos(angle) + a * Math.sin(angle), 14);
      }
      for (let d = r; d < hd; d++) expect(half[h * hd + d]).toBe(x[h * hd + d]);
    }
    // Interleaved on dims permuted so that (2i, 2i+1) holds what rotate_half pairs as (i, i + r/2).
    const perm = (v: ArrayLike<number>) => Array.from({ length: 2 * hd }, (_, j) => { const h = Math.floor(j / hd); const d = j % hd; return v[h * hd + (d < r ? (d % 2 === 0 ? d / 2 : d / 2 - 0.5 + r / 2) : d)] as number; });
    const inter = ropeRef(perm(x), { rows: 1, heads: 2, headDim: hd, start: 5, rotaryDim: r, theta: 100, interleaved: true });
    Array.from(inter).forEach((v, j) => expect(v).toBeCloseTo(perm(half)[j] as number, 14));
    // The GPU's table holds the same angles.
    const table = ropeTable(7, r, 100);
    expect(table[(5 * 3 + 2) * 2]).toBeCloseTo(Math.cos(5 * 100 ** (-4 / 6)), 7);
    expect(table[(5 * 3 + 2) * 2 + 1]).toBeCloseTo(Math.sin(5 * 100 ** (-4 / 6)), 7);
  });

  it('attention: a lone key gives its value; equal keys give uniform probabilities; a masked key is skipped by later queries only', () => {
    const shape = { queries: 3, keys: 3, nHeads: 2, nKvHeads: 1, headDim: 2, scale: 1 };
    const q = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3];
    const k = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
    const v = [1, 2, 3, 4, 5, 6];
    const { out, probs } = causalAttentionRef(q, k, v, shape);
    expect(Array.from(out.subarray(0, 4))).toEqual([1, 2, 1, 2]); // query 0 sees key 0 only
    expect(probs[(1 * 3 + 2) * 3 + 0]).toBeCloseTo(1 / 3, 15); // head 1, query 2: three equal scores
    expect(probs[0 * 9 + 0 * 3 + 1]).toBe(0); // above the diagonal
    const masked = causalAttentionRef(q, k, v, shape, [0, 1, 0]);
    expect(masked.probs[1 * 3 + 1]).toBeCloseTo(0.5, 15); // query 1 still sees its own (masked) key, beside key 0
    expect(masked.probs[2 * 3 + 1]).toBe(0); // query 2 does not
    expect(masked.probs[2 * 3 + 0]).toBeCloseTo(0.5, 15);
  });

  it('refuses unusable attention configs naming the layer and the field', () => {
    const ok: AttentionConfig = { nHeads: 6, nKvHeads: 2, headDim: 8, rotaryDim: 8, ropeTheta: 1e4, ropeInterleaved: false, scale: 0.35, names: { qkv: 'in_proj.weight', out: 'out_proj.weight' }, dConv: 0, capacity: 16 };
    expect(() => checkAttentionConfig('layer 2 attention', ok)).not.toThrow();
    expect(() => checkAttentionConfig('layer 2 attention', { ...ok, nKvHeads: 4 })).toThrow(/layer 2 attention: nHeads 6 is not a multiple of nKvHeads 4/);
    expect(() => checkAttentionConfig('layer 2 attention', { ...ok, rotaryDim: 7 })).toThrow(/rotaryDim 7 must be even/);
    expect(() => checkAttentionConfig('layer 2 attention', { ...ok, capacity: 0 })).toThrow(/capacity must be an integer ≥ 1/);
  });
});
