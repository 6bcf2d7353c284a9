/**
 * One row of hidden attention over a long context (issue 18, item 4), the pure part of
 * LongAttentionRow.tsx: α[i, j] for j = 0 … i (up to ~1,000,000 values) cut into one bin per
 * pixel column, each bin's largest |α| and the token where it is (the chart draws the max
 * envelope, the hover readout gives that token's exact α), and the row's CSV columns.
 *
 * The bins split tokens [0, count) evenly (bin k: [⌊k·count/n⌋, ⌊(k+1)·count/n⌋), n = min(B, count),
 * so each holds at least one token and together they cover the row once, in order). The row is
 * computed once per request, so a plain O(count) scan per redraw is enough (no pyramid: long-trace.ts
 * binStats gives min / max / mean, not where the max is).
 */
import type { CsvColumn } from './csv';

export interface RowBins {
  /** Bin k covers tokens [lo[k], hi[k]). */
  lo: Int32Array;
  hi: Int32Array;
  /** The largest |α| of the bin (NaN when every value of the bin is NaN). */
  max: Float64Array;
  /** The first token of the bin where |α| is `max` (lo[k] when every value is NaN). */
  at: Int32Array;
}

/** Tokens [0, count) of `values` in min(B, count) bins: each bin's largest |value| and where it is. */
export function absMaxBins(values: ArrayLike<number>, count: number, B: number): RowBins {
  if (!(Number.isInteger(count) && count >= 0 && count <= values.length)) throw new RangeError(`Row length ${count} is not within the ${values.length} values.`);
  if (!(Number.isInteger(B) && B >= 1)) throw new RangeError(`Bins ${B} is not a positive integer.`);
  const n = Math.min(B, count);
  const lo = new Int32Array(n);
  const hi = new Int32Array(n);
  const max = new Float64Array(n);
  const at = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const a = Math.floor((k * count) / n);
    const b = Math.floor(((k + 1) * count) / n);
    let m = -1;
    let where = a;
    for (let t = a; t < b; t++) {
      const v = Math.abs(values[t] as number);
      if (v > m) {
        m = v;
        where = t;
      }
    }
    lo[k] = a;
    hi[k] = b;
    max[k] = m < 0 ? NaN : m;
    at[k] = where;
  }
  return { lo, hi, max, at };
}

/** The bin under x (0 … width) of a chart of n bins side by side; null outside. */
export function binAtX(x: number, width: number, n: number): number | null {
  if (!(width > 0 && n > 0 && x >= 0 && x < width)) return null;
  return Math.min(n - 1, Math.floor((x / width) * n));
}

/** The hovered bin after a key (←/→ one bin, PageUp/PageDown a tenth of them, Home/End the ends); null for other keys. */
export function moveBin(bin: number | null, key: string, n: number): number | null {
  if (n <= 0) return null;
  const step = Math.max(1, Math.round(n / 10));
  const from = bin ?? n - 1;
  const moves: Record<string, number> = { ArrowLeft: -1, ArrowRight: 1, PageUp: -step, PageDown: step };
  if (key === 'Home') return 0;
  if (key === 'End') return n - 1;
  const d = moves[key];
  if (d === undefined) return null;
  return bin === null ? from : Math.min(n - 1, Math.max(0, from + d));
}

/** The row's CSV: token j = 0 … row, its id and text, α[row, j] (raw, signed). */
export function longRowColumns(alpha: ArrayLike<number>, row: number, ids: readonly number[], texts: readonly string[]): CsvColumn[] {
  if (!(Number.isInteger(row) && row >= 0 && row < alpha.length && row < ids.length)) throw new RangeError(`Row ${row} is not a token of the ${Math.min(alpha.length, ids.length)}.`);
  const n = row + 1;
  return [
    { name: 'token', values: Array.from({ length: n }, (_, t) => t) },
    { name: 'id', values: ids.slice(0, n) },
    { name: 'text', values: Array.from({ length: n }, (_, t) => texts[t] ?? '') },
    { name: 'alpha', values: Array.from({ length: n }, (_, t) => alpha[t] as number) },
  ];
}
