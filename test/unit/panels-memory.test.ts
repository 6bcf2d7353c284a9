/**
 * The B/C and memory panels' pure functions — row norms, the retention of token j at later
 * tokens and its half-life, checked against direct loops on random data — and the CSV export
 * (numbers parse back equal, strings with commas and quotes survive).
 */
import { describe, expect, it } from 'vitest';
import { parseCsv, toCsv } from '../../renderer/src/panels/csv';
import { halfLife, retention, rowNorms } from '../../renderer/src/panels/memory';

describe('retention', () => {
  it('equals the mean over (d, n) of exp(A·(S_i − S_j)) computed directly, on random data', () => {
    const T = 23;
    const Di = 7;
    const N = 5;
    const delta = Float32Array.from({ length: T * Di }, () => Math.random() * 0.5);
    const A = Float32Array.from({ length: Di * N }, () => -Math.exp(Math.random() * 2 - 1));
    for (const j of [0, 4, T - 1]) {
      const got = retention(delta, A, Di, N, j);
      expect(got).toHaveLength(T);
      for (let i = 0; i < T; i++) {
        if (i < j) {
          expect(got[i]).toBeNaN();
          continue;
        }
        let sum = 0;
        for (let d = 0; d < Di; d++) {
          let Si = 0;
          let Sj = 0;
          for (let t = 0; t <= i; t++) Si += delta[t * Di + d]!;
          for (let t = 0; t <= j; t++) Sj += delta[t * Di + d]!;
          for (let n = 0; n < N; n++) sum += Math.exp(A[d * N + n]! * (Si - Sj));
        }
        expect(got[i]).toBeCloseTo(sum / (Di * N), 10);
      }
      // Retention never grows: Δ ≥ 0 and A < 0.
      for (let i = j + 1; i < T; i++) expect(got[i]!).toBeLessThanOrEqual(got[i - 1]! + 1e-15);
    }
  });

  it('rejects shapes that do not fit and tokens outside the sequence', () => {
    expect(() => retention(new Float32Array(6), new Float32Array(4), 2, 2, 0)).not.toThrow();
    expect(() => retention(new Float32Array(5), new Float32Array(4), 2, 2, 0)).toThrow(RangeError);
    expect(() => retention(new Float32Array(6), new Float32Array(3), 2, 2, 0)).toThrow(RangeError);
    expect(() => retention(new Float32Array(6), new Float32Array(4), 2, 2, 3)).toThrow(/no token 3/);
  });

  it('half-life: the first later token at or below one half, or null beyond the sequence', () => {
    expect(halfLife([NaN, 1, 0.8, 0.5, 0.2], 1)).toEqual({ token: 3, tokens: 2 });
    expect(halfLife([1, 0.9, 0.7], 0)).toBeNull();
    expect(halfLife([1, 0.4], 0, 0.25)).toBeNull();
    // Constant Δ = δ, one channel and state with A = −a: retention e^{−aδ(i−j)}, half-life ⌈ln 2 / (aδ)⌉.
    const delta = new Float32Array(100).fill(0.1);
    const curve = retention(delta, [-0.5], 1, 1, 10);
    expect(halfLife(curve, 10)).toEqual({ token: 10 + Math.ceil(Math.log(2) / 0.05), tokens: Math.ceil(Math.log(2) / 0.05) });
  });

  it('row norms of [T, N] rows', () => {
    const data = Float32Array.from({ length: 12 }, () => Math.random() * 2 - 1);
    const norms = rowNorms(data, 4);
    for (let t = 0; t < 3; t++) expect(norms[t]).toBeCloseTo(Math.hypot(...data.subarray(t * 4, t * 4 + 4)), 12);
    expect(() => rowNorms(data, 5)).toThrow(RangeError);
  });
});

describe('CSV export', () => {
  it('numbers parse back equal (float32 and float64), strings survive quoting', () => {
    const f32 = Float32Array.from({ length: 50 }, () => (Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 12 - 6));
    const f64 = Float64Array.from({ length: 50 }, () => Math.random() * 1e-300 * 10 ** Math.floor(Math.random() * 600));
    f64[3] = NaN;
    f64[4] = -Infinity;
    const texts = Array.from({ length: 50 }, (_, i) => ['a', 'b,c', 'say "hi"', ' pad ', 'line\nbreak', '·', '⏎'][i % 7]!);
    const csv = toCsv([
      { name: 'text', values: texts },
      { name: 'f32', values: f32 },
      { name: 'f64, wide', values: f64 },
    ]);
    const rows = parseCsv(csv);
    expect(rows).toHaveLength(51);
    expect(rows[0]).toEqual(['text', 'f32', 'f64, wide']);
    rows.slice(1).forEach((row, i) => {
      expect(row).toHaveLength(3);
      expect(row[0]).toBe(texts[i]);
      expect(Math.fround(Number(row[1]))).toBe(f32[i]);
      expect(Object.is(Number(row[2]), f64[i])).toBe(true);
    });
  });

  it('rejects columns of different lengths; no columns is an empty header', () => {
    expect(() => toCsv([{ name: 'a', values: [1] }, { name: 'b', values: [] }])).toThrow(RangeError);
    expect(toCsv([])).toBe('\r\n');
  });
});
