import { describe, expect, it } from 'vitest';
import { absMaxBins, binAtX, longRowColumns, moveBin } from '../../renderer/src/panels/attention-row';
import { parseCsv, toCsv } from '../../renderer/src/panels/csv';

/** A deterministic generator (mulberry32) of values in [-1, 1). */
function rand(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** Brute force: which bin each token falls in (pixel k covers the x range [k/n, (k+1)/n) of the row), then the max |v| per bin. */
function brute(values: ArrayLike<number>, count: number, B: number) {
  const n = Math.min(B, count);
  const bins = Array.from({ length: n }, () => ({ tokens: [] as number[] }));
  // Token t belongs to bin k iff ⌊k·count/n⌋ ≤ t < ⌊(k+1)·count/n⌋, i.e. the bin whose x range holds t's left edge.
  for (let t = 0; t < count; t++) {
    let k = 0;
    while (k + 1 < n && Math.floor(((k + 1) * count) / n) <= t) k++;
    bins[k]!.tokens.push(t);
  }
  return bins.map(({ tokens }) => {
    let max = NaN;
    let at = tokens[0]!;
    for (const t of tokens) {
      const v = Math.abs(values[t]!);
      if (!Number.isNaN(v) && (Number.isNaN(max) || v > max)) {
        max = v;
        at = t;
      }
    }
    return { lo: tokens[0]!, hi: tokens[tokens.length - 1]! + 1, max, at };
  });
}

describe('absMaxBins: one bin per pixel column, its largest |α| and where', () => {
  it('equals a brute-force scan for odd sizes, fewer tokens than bins, and a row shorter than the array', () => {
    const next = rand(7);
    for (const [count, B, length] of [
      [1, 1, 1],
      [1, 640, 3],
      [2, 3, 2],
      [7, 3, 7],
      [13, 13, 20],
      [100, 7, 100],
      [101, 100, 150],
      [997, 641, 1000],
      [1000, 999, 1000],
      [12_345, 613, 20_000],
    ] as const) {
      const values = Float32Array.from({ length }, () => next() * 10);
      const got = absMaxBins(values, count, B);
      const want = brute(values, count, B);
      expect(got.lo.length).toBe(Math.min(B, count));
      want.forEach((w, k) => {
        expect([got.lo[k], got.hi[k], got.max[k], got.at[k]], `count ${count}, B ${B}, bin ${k}`).toEqual([w.lo, w.hi, w.max, w.at]);
      });
      // The bins cover [0, count) once, in order, none empty.
      expect(got.lo[0]).toBe(0);
      expect(got.hi[got.hi.length - 1]).toBe(count);
      for (let k = 1; k < got.lo.length; k++) expect(got.lo[k]).toBe(got.hi[k - 1]);
      for (let k = 0; k < got.lo.length; k++) expect(got.hi[k]!).toBeGreaterThan(got.lo[k]!);
      // Values after the row are never read (zeros of the row past i, or anything).
      const poisoned = values.slice();
      poisoned.fill(1e30, count);
      expect(absMaxBins(poisoned, count, B).max).toEqual(got.max);
    }
  });

  it('keeps the sign out of the max but the position of a negative peak; the first of equal peaks; NaN only when a bin is all NaN', () => {
    const values = Float32Array.from([0.5, -3, 2, 3, NaN, NaN, 0, -0]);
    const bins = absMaxBins(values, 8, 4);
    expect(Array.from(bins.max)).toEqual([3, 3, NaN, 0]);
    expect(Array.from(bins.at)).toEqual([1, 3, 4, 6]);
    expect(absMaxBins(values, 0, 5).max.length).toBe(0);
  });

  it('handles a million-token row quickly and exactly at the global peak', () => {
    const T = 1_000_000;
    const next = rand(3);
    const values = Float32Array.from({ length: T }, () => next());
    values[765_432] = -4.5;
    const t0 = performance.now();
    const bins = absMaxBins(values, T, 1200);
    const ms = performance.now() - t0;
    let k = 0;
    for (let i = 1; i < bins.max.length; i++) if (bins.max[i]! > bins.max[k]!) k = i;
    expect(bins.at[k]).toBe(765_432);
    expect(bins.max[k]).toBe(4.5);
    expect(ms).toBeLessThan(500);
  });

  it('rejects a row longer than its values or no bins', () => {
    expect(() => absMaxBins(new Float32Array(3), 4, 2)).toThrow(/Row length 4/);
    expect(() => absMaxBins(new Float32Array(3), 3, 0)).toThrow(/Bins 0/);
  });
});

describe('binAtX and moveBin', () => {
  it('maps x to the bin drawn there, null outside', () => {
    expect(binAtX(0, 100, 10)).toBe(0);
    expect(binAtX(9.99, 100, 10)).toBe(0);
    expect(binAtX(10, 100, 10)).toBe(1);
    expect(binAtX(99.9, 100, 10)).toBe(9);
    expect(binAtX(100, 100, 10)).toBeNull();
    expect(binAtX(-1, 100, 10)).toBeNull();
    expect(binAtX(5, 100, 0)).toBeNull();
  });
  it('moves by one, a tenth, to the ends; starts at the last bin; ignores other keys', () => {
    expect(moveBin(null, 'ArrowLeft', 50)).toBe(49);
    expect(moveBin(10, 'ArrowLeft', 50)).toBe(9);
    expect(moveBin(0, 'ArrowLeft', 50)).toBe(0);
    expect(moveBin(49, 'ArrowRight', 50)).toBe(49);
    expect(moveBin(10, 'PageDown', 50)).toBe(15);
    expect(moveBin(2, 'PageUp', 50)).toBe(0);
    expect(moveBin(7, 'Home', 50)).toBe(0);
    expect(moveBin(7, 'End', 50)).toBe(49);
    expect(moveBin(7, 'a', 50)).toBeNull();
    expect(moveBin(null, 'End', 0)).toBeNull();
  });
});

describe('longRowColumns', () => {
  it('writes tokens 0 … row with id, text and the raw α, which parse back to the same float32', () => {
    const alpha = Float32Array.from([0.1, -2.5e-7, 3.25, 0, 0]);
    const csv = toCsv(longRowColumns(alpha, 2, [5, 6, 7, 8, 9], ['a', 'b,"c"', 'd']));
    const rows = parseCsv(csv);
    expect(rows[0]).toEqual(['token', 'id', 'text', 'alpha']);
    expect(rows.slice(1).map((r) => [Number(r[0]), Number(r[1]), r[2]])).toEqual([
      [0, 5, 'a'],
      [1, 6, 'b,"c"'],
      [2, 7, 'd'],
    ]);
    expect(Float32Array.from(rows.slice(1), (r) => Number(r[3]))).toEqual(alpha.subarray(0, 3));
    expect(() => longRowColumns(alpha, 5, [1, 2, 3, 4, 5], [])).toThrow(/Row 5/);
  });
});
