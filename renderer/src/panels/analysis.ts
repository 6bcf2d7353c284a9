/**
 * Pure functions behind the analysis panels (hidden attention, compare, knockout):
 *
 * - Hidden attention (Ali et al. 2024): the engine returns the raw, signed implicit attention
 *   α [T, T] (row i = the token that reads, column j ≤ i = the token read). The panel shows |α|
 *   min-max scaled over the causal entries (j ≤ i), on a linear or log scale; the heatmap texture
 *   is |α| transposed so rows run top → bottom and columns left → right; the cell under a point;
 *   a row's strongest sources; the CSVs of the matrix and of one row.
 * - Compare: the position under a point of the chart and the CSV of a comparison (the comparison
 *   itself, ‖Δ_t‖ of two prompts by position and B − A, is app/analysis/compare.ts).
 * - Knockout: the CSV of the two next-token distributions, the union of their top tokens, and a
 *   top-k list spread over the vocabulary. (softmax, KL and total variation live in
 *   app/analysis/distributions.ts.)
 */
import type { ScoreComparison } from '../../../app/analysis/compare';
import { ALIGN_KINDS } from '../../../app/analysis/align';
import type { KnockoutResult } from '../../../app/engine/protocol';
import type { CsvColumn } from './csv';
import { normalize } from './selection';

// ---------------------------------------------------------------------------------------------
// Hidden attention

/** Checks α holds a [T, T] matrix. */
function checkSquare(alpha: ArrayLike<number>, tokens: number, who: string): void {
  if (!(Number.isInteger(tokens) && tokens > 0) || alpha.length !== tokens * tokens) {
    throw new RangeError(`${who}: ${alpha.length} values are not a ${tokens} × ${tokens} matrix`);
  }
}

/**
 * Smallest and largest |α[i, j]| over the causal entries (j ≤ i) that are finite, and for a log
 * scale also > 0 (log needs them). With none, a unit range ({1e-12, 1} on log, {0, 1} on linear).
 */
export function causalAbsRange(alpha: ArrayLike<number>, tokens: number, log: boolean): { min: number; max: number } {
  checkSquare(alpha, tokens, 'causalAbsRange');
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j <= i; j++) {
      const v = Math.abs(alpha[i * tokens + j] as number);
      if (!Number.isFinite(v) || (log && v <= 0)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min > max) return log ? { min: 1e-12, max: 1 } : { min: 0, max: 1 };
  return { min, max };
}

/** The smallest and largest |v| of the values that are finite (and > 0 on a log scale). */
export function absRange(values: ArrayLike<number>, log: boolean): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let k = 0; k < values.length; k++) {
    const v = Math.abs(values[k] as number);
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return log ? { min: 1e-12, max: 1 } : { min: 0, max: 1 };
  return { min, max };
}

/** Where |value| falls in the min-max range of |α|, 0..1 (what the heatmap's colour shows). */
export const scaledAbs = (value: number, range: { min: number; max: number }, log: boolean): number => normalize(Math.abs(value), range, log);

/**
 * The heatmap texture: |α| transposed, out[j·T + i] = |α[i·T + j]|. The heatmap renderer draws
 * texture rows ("tokens") left → right and columns ("channels") top → bottom, so row i of α runs
 * top → bottom and column j left → right, as attention matrices are usually drawn.
 */
export function attentionTexture(alpha: ArrayLike<number>, tokens: number): Float32Array {
  checkSquare(alpha, tokens, 'attentionTexture');
  const out = new Float32Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) for (let j = 0; j < tokens; j++) out[j * tokens + i] = Math.abs(alpha[i * tokens + j] as number);
  return out;
}

/** Row i of α (a copy). */
export function matrixRow(alpha: ArrayLike<number>, tokens: number, i: number): Float32Array {
  checkSquare(alpha, tokens, 'matrixRow');
  if (!(Number.isInteger(i) && i >= 0 && i < tokens)) throw new RangeError(`matrixRow: row ${i} is outside 0..${tokens - 1}`);
  return Float32Array.from({ length: tokens }, (_, j) => alpha[i * tokens + j] as number);
}

/** The cell (row i, column j) of a T × T matrix drawn over width × height under (x, y) from its top-left corner; null outside. */
export function matrixCellAt(tokens: number, x: number, y: number, width: number, height: number): { row: number; col: number } | null {
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  return { row: Math.min(tokens - 1, Math.floor((y / height) * tokens)), col: Math.min(tokens - 1, Math.floor((x / width) * tokens)) };
}

/** The centre of cell (i, j): the inverse of matrixCellAt. */
export function matrixCellCentre(tokens: number, row: number, col: number, width: number, height: number): { x: number; y: number } {
  return { x: ((col + 0.5) / tokens) * width, y: ((row + 0.5) / tokens) * height };
}

/**
 * The matrix cursor after a key press: arrows move one cell, PageUp/PageDown ten rows, Home/End
 * the first/last column of the row; kept inside the causal part (j ≤ i). Null when the key does
 * not move it.
 */
export function moveCell(cell: { row: number; col: number } | null, key: string, tokens: number): { row: number; col: number } | null {
  if (tokens <= 0) return null;
  const last = tokens - 1;
  const c = cell ?? { row: 0, col: 0 };
  let { row, col } = c;
  switch (key) {
    case 'ArrowDown':
      row += 1;
      break;
    case 'ArrowUp':
      row -= 1;
      break;
    case 'ArrowRight':
      col += 1;
      break;
    case 'ArrowLeft':
      col -= 1;
      break;
    case 'PageDown':
      row += 10;
      break;
    case 'PageUp':
      row -= 10;
      break;
    case 'Home':
      col = 0;
      break;
    case 'End':
      col = row;
      break;
    default:
      return null;
  }
  row = Math.min(last, Math.max(0, row));
  col = Math.min(row, Math.max(0, col));
  return cell === null ? { row: 0, col: 0 } : { row, col };
}

export interface Source {
  /** The token read (column j ≤ i). */
  token: number;
  alpha: number;
}

/** The `k` earlier tokens j ≤ i that token i reads most, by |α[i, j]| (ties: the earlier token first). */
export function topSources(row: ArrayLike<number>, i: number, k: number): Source[] {
  if (!(Number.isInteger(i) && i >= 0 && i < row.length)) throw new RangeError(`topSources: row ${i} is outside 0..${row.length - 1}`);
  const out: Source[] = [];
  for (let j = 0; j <= i; j++) {
    const alpha = row[j] as number;
    if (Number.isFinite(alpha)) out.push({ token: j, alpha });
  }
  out.sort((a, b) => Math.abs(b.alpha) - Math.abs(a.alpha) || a.token - b.token);
  return out.slice(0, Math.max(0, k));
}

/** The row for display: |α[i, j]| for j ≤ i, NaN after i (the chart breaks there). */
export function causalAbsRow(row: ArrayLike<number>, i: number): Float64Array {
  return Float64Array.from({ length: row.length }, (_, j) => (j <= i ? Math.abs(row[j] as number) : NaN));
}

/** The CSV of the whole matrix: per row i, the token, its id and text, then α[i, j] for every j (raw, signed; 0 above the diagonal). */
export function attentionMatrixColumns(alpha: ArrayLike<number>, tokens: number, ids: readonly number[], texts: readonly string[]): CsvColumn[] {
  checkSquare(alpha, tokens, 'attentionMatrixColumns');
  const columns: CsvColumn[] = [
    { name: 'token', values: Array.from({ length: tokens }, (_, t) => t) },
    { name: 'id', values: ids.slice(0, tokens) },
    { name: 'text', values: texts.slice(0, tokens) },
  ];
  for (let j = 0; j < tokens; j++) columns.push({ name: `j${j}`, values: Array.from({ length: tokens }, (_, i) => alpha[i * tokens + j] as number) });
  return columns;
}

/** The CSV of one row i: per token j, its id and text, α[i, j] (raw) and |α| scaled to 0..1 as the panel colours it. */
export function attentionRowColumns(row: ArrayLike<number>, ids: readonly number[], texts: readonly string[], range: { min: number; max: number }, log: boolean): CsvColumn[] {
  const T = row.length;
  return [
    { name: 'token', values: Array.from({ length: T }, (_, t) => t) },
    { name: 'id', values: ids.slice(0, T) },
    { name: 'text', values: texts.slice(0, T) },
    { name: 'alpha', values: row },
    { name: 'scaled |alpha|', values: Array.from(row, (v) => scaledAbs(v, range, log)) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Compare

/** The position under x (0..width) of a chart over `tokens` positions (each a column of width / tokens); null outside. */
export const positionAt = (x: number, width: number, tokens: number): number | null => (x >= 0 && x < width && tokens > 0 ? Math.min(tokens - 1, Math.floor((x / width) * tokens)) : null);

/**
 * The CSV behind the compare panel: per column of the alignment, both prompts' ids and texts
 * ('' on the side a column lacks), then per layer ‖Δ_t‖ of A, of B and B − A (NaN where a side is
 * missing), then the column's kind (same, replaced, inserted, deleted) and its positions in A and B.
 */
export function compareColumns(cmp: ScoreComparison, idsA: readonly number[], idsB: readonly number[], textsA: readonly string[], textsB: readonly string[]): CsvColumn[] {
  const T = cmp.tokens;
  const { a: ia, b: ib, kind } = cmp.alignment;
  // Per column of the alignment: a side's value, or '' where the column has no token of that side.
  const side = <V extends number | string>(index: Int32Array, values: readonly V[]) => Array.from({ length: T }, (_, t) => ((index[t] as number) >= 0 ? (values[index[t] as number] as V) : ''));
  const columns: CsvColumn[] = [
    { name: 'token', values: Array.from({ length: T }, (_, t) => t) },
    { name: 'id A', values: side(ia, idsA) },
    { name: 'text A', values: side(ia, textsA) },
    { name: 'id B', values: side(ib, idsB) },
    { name: 'text B', values: side(ib, textsB) },
  ];
  cmp.layers.forEach((l, k) => {
    columns.push({ name: `score A L${l}`, values: cmp.a[k] as Float32Array });
    columns.push({ name: `score B L${l}`, values: cmp.b[k] as Float32Array });
    columns.push({ name: `B-A L${l}`, values: cmp.diff[k] as Float64Array });
  });
  // The alignment (app/analysis/align.ts): what each column is, and which token of A and of B it holds.
  columns.push({ name: 'kind', values: Array.from(kind, (k) => ALIGN_KINDS[k] as string) });
  columns.push({ name: 'position A', values: side(ia, Array.from(idsA, (_, i) => i)) });
  columns.push({ name: 'position B', values: side(ib, Array.from(idsB, (_, i) => i)) });
  return columns;
}

// ---------------------------------------------------------------------------------------------
// Knockout

/** The CSV behind the knockout panel: rank by rank, the baseline's and the knocked-out run's top tokens. */
export function knockoutColumns(result: KnockoutResult): CsvColumn[] {
  const k = Math.max(result.baseline.ids.length, result.knocked.ids.length);
  const pad = <T>(values: readonly T[], fill: T) => Array.from({ length: k }, (_, r) => values[r] ?? fill);
  return [
    { name: 'rank', values: Array.from({ length: k }, (_, r) => r + 1) },
    { name: 'baseline id', values: pad<number | string>(result.baseline.ids, '') },
    { name: 'baseline text', values: pad(result.baseline.texts, '') },
    { name: 'baseline p', values: pad<number | string>(result.baseline.probs, '') },
    { name: 'knocked id', values: pad<number | string>(result.knocked.ids, '') },
    { name: 'knocked text', values: pad(result.knocked.texts, '') },
    { name: 'knocked p', values: pad<number | string>(result.knocked.probs, '') },
  ];
}

export interface ShiftRow {
  id: number;
  text: string;
  /** Probability before and after the knockout; NaN where the token is outside that run's top k. */
  before: number;
  after: number;
}

/** The tokens in either top k, ordered by the baseline's probability, then the knocked run's. */
export function probabilityShift(result: KnockoutResult): ShiftRow[] {
  const rows = new Map<number, ShiftRow>();
  result.baseline.ids.forEach((id, r) => rows.set(id, { id, text: result.baseline.texts[r] ?? String(id), before: result.baseline.probs[r] ?? NaN, after: NaN }));
  result.knocked.ids.forEach((id, r) => {
    const row = rows.get(id) ?? { id, text: result.knocked.texts[r] ?? String(id), before: NaN, after: NaN };
    row.after = result.knocked.probs[r] ?? NaN;
    rows.set(id, row);
  });
  const key = (v: number) => (Number.isFinite(v) ? v : -1);
  return [...rows.values()].sort((x, y) => key(y.before) - key(x.before) || key(y.after) - key(x.after));
}

/** A distribution given as top-k (ids, probs) spread over a vocabulary of `size` (0 where absent). */
export function denseDistribution(dist: { ids: readonly number[]; probs: readonly number[] }, size: number): Float64Array {
  const out = new Float64Array(size);
  dist.ids.forEach((id, r) => {
    if (id >= 0 && id < size) out[id] = dist.probs[r] ?? 0;
  });
  return out;
}
