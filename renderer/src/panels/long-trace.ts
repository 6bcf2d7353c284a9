/**
 * Level of detail for long traces (issue 18): a trace with `detail: 'windows'` holds its per-token
 * summaries ([T] per layer: ‖Δ_t‖, write gate, ‖state_t‖, focus score) for every token, but Δ, B
 * and C only for windows the engine recomputes on request. This module is the pure part of the
 * renderer's side:
 *
 * - `Pyramid`: min / max / sum of one [T] summary over blocks of LEAF·2^k tokens (level k), built
 *   once per trace and summary in O(T) (about 8 bytes a token with the leaf of 4), and `binStats`, which
 *   gives any token range [start, start + count) cut into B bins (one per pixel column) their min,
 *   max and mean in O(B·(log T + LEAF)) — what the overview draws every frame, never touching the
 *   T values. Min and max equal a brute-force scan exactly; the mean is the float64 sum of the
 *   same values (in another order) over the count.
 * - `overviewPixels`: the overview's RGBA image (layers × pixel columns) from the pyramids: the
 *   benchmarked per-frame work (test/unit/long-trace-view.test.ts reports its time).
 * - `windowView`: the trace restricted to the tokens [from, to) of the window on screen, Δ, B and
 *   C filled in from the fetched windows, as a `TraceView`.
 *
 * `TraceView` is a TraceResult plus `tokenOffset`: the absolute index of its token 0 in the whole
 * trace (0, or left out, for an ordinary trace). Panels index a view locally (0 … T_view − 1) and
 * show `tokenOffset + index` in axes, readouts and exports (`absoluteToken`).
 */
import type { TraceResult, TraceWindowResult } from '../../../app/engine/protocol';
import { TRACE_WINDOW_MAX } from '../../../app/analysis/trace-window';
import { colormapTable, type ColormapName } from './colormaps';

/** A trace, or a window of one: token i of the view is token `tokenOffset + i` of the trace. */
export type TraceView = TraceResult & { tokenOffset?: number };

/** The absolute token index of a view's local index. */
export const absoluteToken = (view: TraceView, local: number) => (view.tokenOffset ?? 0) + local;

/**
 * Tokens per block of a pyramid's first level (below that, binStats reads the values). 4: bins of 16
 * tokens or more read whole blocks only (the overview's cost per frame barely depends on the zoom),
 * for 8 bytes a token of a layer (a 16-token leaf: 2 bytes, but frames at ~20–60 tokens a column
 * about 3× slower).
 */
export const PYRAMID_LEAF = 4;

export interface Pyramid {
  /** The values, [T] (not copied). */
  values: Float32Array;
  leaf: number;
  /** Level k: blocks of leaf·2^k tokens, complete ones only; min and max per block, and the float64 sum. */
  levels: { min: Float32Array; max: Float32Array; sum: Float64Array }[];
  /** Over all T values (NaN ignored); both 0 when T = 0 or every value is NaN. */
  min: number;
  max: number;
  /** The smallest value > 0 (a log scale's floor), or 0 when there is none. */
  minPositive: number;
}

/** What export file names add for a window of a long trace ("-tokens<from>-<to>"; nothing for a whole trace). */
export const windowSuffix = (view: TraceView) => (view.tokenOffset !== undefined ? `-tokens${view.tokenOffset}-${view.tokenOffset + view.ids.length}` : '');

/** The pyramid of a [T] summary: O(T) time, about 2 · (4 + 4 + 8) / leaf bytes a token. */
export function buildPyramid(values: Float32Array, leaf = PYRAMID_LEAF): Pyramid {
  if (!(Number.isInteger(leaf) && leaf >= 1)) throw new RangeError(`Pyramid leaf ${leaf} is not a positive integer.`);
  const T = values.length;
  let min = Infinity;
  let max = -Infinity;
  const n0 = Math.floor(T / leaf);
  const first = { min: new Float32Array(n0), max: new Float32Array(n0), sum: new Float64Array(n0) };
  for (let b = 0; b < n0; b++) {
    let lo = Infinity;
    let hi = -Infinity;
    let s = 0;
    for (let t = b * leaf, e = t + leaf; t < e; t++) {
      const v = values[t] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      s += v;
    }
    first.min[b] = lo;
    first.max[b] = hi;
    first.sum[b] = s;
  }
  let minPositive = Infinity;
  for (let t = 0; t < T; t++) {
    const v = values[t] as number;
    if (v < min) min = v;
    if (v > max) max = v;
    if (v > 0 && v < minPositive) minPositive = v;
  }
  const levels = [first];
  for (let below = first; below.min.length >= 2; ) {
    const n = below.min.length >> 1;
    const up = { min: new Float32Array(n), max: new Float32Array(n), sum: new Float64Array(n) };
    for (let i = 0; i < n; i++) {
      up.min[i] = Math.min(below.min[2 * i] as number, below.min[2 * i + 1] as number);
      up.max[i] = Math.max(below.max[2 * i] as number, below.max[2 * i + 1] as number);
      up.sum[i] = (below.sum[2 * i] as number) + (below.sum[2 * i + 1] as number);
    }
    levels.push(up);
    below = up;
  }
  return { values, leaf, levels, min: min <= max ? min : 0, max: min <= max ? max : 0, minPositive: minPositive < Infinity ? minPositive : 0 };
}

/** Bins at least this many blocks of the first level wide have block-aligned inner edges (binRanges). */
export const BIN_BLOCKS = 4;

/** Per-bin statistics: B bins, each the min, max and mean of its tokens. */
export interface Bins {
  min: Float32Array;
  max: Float32Array;
  mean: Float32Array;
}

/**
 * Tokens [start, start + count) cut into B bins: bin k is tokens [lo[k], hi[k]) (absolute). Narrow bins (under
 * BIN_BLOCKS·leaf tokens) split the range evenly, at least one token each (so a range narrower than B
 * repeats tokens across columns). Wider bins have their inner edges rounded to the nearest multiple
 * of a block size s (leaf·2^ℓ, at most 1/4 of a bin, so an edge moves by at most 1/8 of a bin):
 * then binStats reads whole pyramid blocks only, never single values. The bins still cover the
 * range exactly once, in order.
 */
export function binRanges(start: number, count: number, B: number, leaf = PYRAMID_LEAF): { lo: Int32Array; hi: Int32Array } {
  const key = `${start}|${count}|${B}|${leaf}`;
  if (lastRanges.key === key) return lastRanges.ranges;
  const lo = new Int32Array(B);
  const hi = new Int32Array(B);
  const w = count / B;
  if (w < BIN_BLOCKS * leaf) {
    for (let k = 0; k < B; k++) {
      const l = start + Math.floor((k * count) / B);
      lo[k] = l;
      hi[k] = Math.max(l + 1, start + Math.floor(((k + 1) * count) / B));
    }
  } else {
    const s = leaf * 2 ** Math.floor(Math.log2(w / (BIN_BLOCKS * leaf)));
    let prev = start;
    for (let k = 0; k < B; k++) {
      const next = k + 1 === B ? start + count : Math.round((start + Math.floor(((k + 1) * count) / B)) / s) * s;
      lo[k] = prev;
      hi[k] = next;
      prev = next;
    }
  }
  lastRanges.key = key;
  lastRanges.ranges = { lo, hi };
  return lastRanges.ranges;
}

/** The last bins made (every row of an overview frame cuts the same range into the same bins). */
const lastRanges: { key: string; ranges: { lo: Int32Array; hi: Int32Array } } = { key: '', ranges: { lo: new Int32Array(0), hi: new Int32Array(0) } };

/** Scratch accumulator of rangeStats. */
const acc = { min: 0, max: 0, sum: 0 };

/** min, max and sum of values [a, b) (a < b) into `acc`, from the pyramid. */
function rangeStats(p: Pyramid, a: number, b: number): void {
  const v = p.values;
  const leaf = p.leaf;
  let lo = Infinity;
  let hi = -Infinity;
  let s = 0;
  // The unaligned ends, value by value (the whole range when it holds no complete block).
  const firstBlock = Math.ceil(a / leaf);
  const lastBlock = Math.floor(b / leaf);
  if (firstBlock >= lastBlock) {
    for (let t = a; t < b; t++) {
      const x = v[t] as number;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      s += x;
    }
  } else {
    for (let t = a, e = firstBlock * leaf; t < e; t++) {
      const x = v[t] as number;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      s += x;
    }
    for (let t = lastBlock * leaf; t < b; t++) {
      const x = v[t] as number;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
      s += x;
    }
    // Blocks [i, j) of level 0, bottom-up: an odd left end or right end is taken at its level.
    let i = firstBlock;
    let j = lastBlock;
    for (let k = 0; i < j; k++) {
      const level = p.levels[k] as Pyramid['levels'][number];
      if (i & 1) {
        const m = level.min[i] as number;
        const M = level.max[i] as number;
        if (m < lo) lo = m;
        if (M > hi) hi = M;
        s += level.sum[i] as number;
        i++;
      }
      if (j & 1) {
        j--;
        const m = level.min[j] as number;
        const M = level.max[j] as number;
        if (m < lo) lo = m;
        if (M > hi) hi = M;
        s += level.sum[j] as number;
      }
      i >>= 1;
      j >>= 1;
    }
  }
  acc.min = lo;
  acc.max = hi;
  acc.sum = s;
}

/**
 * Tokens [start, start + count) of the pyramid's summary cut into B bins (binRanges): each bin's
 * min, max and mean. O(B·log T) for bins of BIN_BLOCKS·leaf tokens or more (whole blocks), else
 * O(B·(log T + leaf)). The range must lie inside [0, T).
 */
export function binStats(p: Pyramid, start: number, count: number, B: number, out?: Bins): Bins {
  const T = p.values.length;
  if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 1 && start + count <= T)) {
    throw new RangeError(`Tokens ${start}..${start + count} are not inside the trace's ${T} tokens.`);
  }
  if (!(Number.isInteger(B) && B >= 1)) throw new RangeError(`Bins ${B} is not a positive integer.`);
  const bins = out && out.min.length >= B ? out : { min: new Float32Array(B), max: new Float32Array(B), mean: new Float32Array(B) };
  const { lo, hi } = binRanges(start, count, B, p.leaf);
  const w = count / B;
  if (w >= BIN_BLOCKS * p.leaf) {
    // Every edge but the range's own ends is a multiple of s = leaf·2^ℓ: walk up from level ℓ.
    const ell = Math.floor(Math.log2(w / (BIN_BLOCKS * p.leaf)));
    const s = p.leaf * 2 ** ell;
    for (let k = 0; k < B; k++) {
      const a = lo[k] as number;
      const b = hi[k] as number;
      if (a % s !== 0 || b % s !== 0 || ell >= p.levels.length) {
        rangeStats(p, a, b);
        bins.min[k] = acc.min;
        bins.max[k] = acc.max;
        bins.mean[k] = acc.sum / (b - a);
        continue;
      }
      let mn = Infinity;
      let mx = -Infinity;
      let sum = 0;
      let i = a / s;
      let j = b / s;
      for (let level = ell; i < j; level++) {
        const L = p.levels[level] as Pyramid['levels'][number];
        const lmin = L.min;
        const lmax = L.max;
        const lsum = L.sum;
        if (i & 1) {
          const m = lmin[i] as number;
          const M = lmax[i] as number;
          if (m < mn) mn = m;
          if (M > mx) mx = M;
          sum += lsum[i] as number;
          i++;
        }
        if (j & 1) {
          j--;
          const m = lmin[j] as number;
          const M = lmax[j] as number;
          if (m < mn) mn = m;
          if (M > mx) mx = M;
          sum += lsum[j] as number;
        }
        i >>= 1;
        j >>= 1;
      }
      bins.min[k] = mn;
      bins.max[k] = mx;
      bins.mean[k] = sum / (b - a);
    }
    return bins;
  }
  for (let k = 0; k < B; k++) {
    const a = lo[k] as number;
    const b = hi[k] as number;
    rangeStats(p, a, b);
    bins.min[k] = acc.min;
    bins.max[k] = acc.max;
    bins.mean[k] = acc.sum / (b - a);
  }
  return bins;
}

/** Which of a bin's statistics colours the overview. */
export type BinAggregate = 'min' | 'max' | 'mean';

/**
 * One statistic of each bin (binStats's `aggregate` array, equal to it value for value), reading
 * only that statistic's blocks: what a frame of the overview needs.
 */
export function binAggregate(p: Pyramid, start: number, count: number, B: number, aggregate: BinAggregate, out: Float32Array): Float32Array {
  const w = count / B;
  if (!(w >= BIN_BLOCKS * p.leaf) || out.length < B) {
    const bins = binStats(p, start, count, B);
    out.set(bins[aggregate].subarray(0, B));
    return out;
  }
  const { lo, hi } = binRanges(start, count, B, p.leaf);
  const ell = Math.floor(Math.log2(w / (BIN_BLOCKS * p.leaf)));
  const s = p.leaf * 2 ** ell;
  const levels = p.levels;
  for (let k = 0; k < B; k++) {
    const a = lo[k] as number;
    const b = hi[k] as number;
    if (a % s !== 0 || b % s !== 0 || ell >= levels.length) {
      rangeStats(p, a, b);
      out[k] = aggregate === 'min' ? acc.min : aggregate === 'max' ? acc.max : acc.sum / (b - a);
      continue;
    }
    let i = a / s;
    let j = b / s;
    if (aggregate === 'mean') {
      let sum = 0;
      for (let level = ell; i < j; level++) {
        const data = (levels[level] as Pyramid['levels'][number]).sum;
        if (i & 1) sum += data[i++] as number;
        if (j & 1) sum += data[--j] as number;
        i >>= 1;
        j >>= 1;
      }
      out[k] = sum / (b - a);
    } else if (aggregate === 'max') {
      let m = -Infinity;
      for (let level = ell; i < j; level++) {
        const data = (levels[level] as Pyramid['levels'][number]).max;
        if (i & 1) {
          const v = data[i++] as number;
          if (v > m) m = v;
        }
        if (j & 1) {
          const v = data[--j] as number;
          if (v > m) m = v;
        }
        i >>= 1;
        j >>= 1;
      }
      out[k] = m;
    } else {
      let m = Infinity;
      for (let level = ell; i < j; level++) {
        const data = (levels[level] as Pyramid['levels'][number]).min;
        if (i & 1) {
          const v = data[i++] as number;
          if (v < m) m = v;
        }
        if (j & 1) {
          const v = data[--j] as number;
          if (v < m) m = v;
        }
        i >>= 1;
        j >>= 1;
      }
      out[k] = m;
    }
  }
  return out;
}

export interface OverviewFrame {
  /** One pyramid per row (layer), top to bottom. */
  rows: readonly Pyramid[];
  /** Whole tokens [start, start + count) of the trace, across `width` pixel columns. */
  start: number;
  count: number;
  width: number;
  aggregate: BinAggregate;
  range: { min: number; max: number };
  log: boolean;
  colormap: ColormapName;
}

const tables = new Map<ColormapName, Uint8Array>();
const tableOf = (name: ColormapName) => {
  let t = tables.get(name);
  if (!t) tables.set(name, (t = colormapTable(name)));
  return t;
};

/**
 * The overview's pixels, [rows, width] RGBA row-major (a row per layer: the canvas scales it up):
 * each column the chosen statistic of its bin, on the colour map over `range` (log: ln of values
 * floored at the smallest positive one). Reads O(rows · width · (log T + leaf)) values.
 */
export function overviewPixels(frame: OverviewFrame, out?: Uint8ClampedArray<ArrayBuffer>, scratch?: Float32Array): Uint8ClampedArray<ArrayBuffer> {
  const { rows, start, count, width, aggregate, range, log } = frame;
  const pixels = out && out.length === rows.length * width * 4 ? out : new Uint8ClampedArray(rows.length * width * 4);
  const table = tableOf(frame.colormap);
  const floor = log ? Math.max(range.min, Number.MIN_VALUE) : range.min;
  const f = (x: number) => (log ? Math.log(Math.max(x, floor)) : x);
  const lo = f(range.min);
  const span = f(range.max) - lo;
  const stat = scratch && scratch.length >= width ? scratch : new Float32Array(width);
  rows.forEach((p, r) => {
    binAggregate(p, start, count, width, aggregate, stat);
    for (let x = 0; x < width; x++) {
      const v = stat[x] as number;
      const t = span > 0 ? Math.min(1, Math.max(0, (f(v) - lo) / span)) : 0;
      const c = Number.isNaN(t) ? 0 : Math.round(t * 255) * 4;
      const o = (r * width + x) * 4;
      pixels[o] = table[c] as number;
      pixels[o + 1] = table[c + 1] as number;
      pixels[o + 2] = table[c + 2] as number;
      pixels[o + 3] = 255;
    }
  });
  return pixels;
}

/** The summaries the overview can show. */
export type OverviewSummary = 'deltaNorm' | 'focusScore' | 'writeGate' | 'stateNorm';

export const SUMMARY_LABELS: Record<OverviewSummary, { name: string; unit: string }> = {
  deltaNorm: { name: '‖Δ_t‖', unit: 'L2 norm of Δ over the channels' },
  focusScore: { name: 'focus score', unit: 'mean Δ over the focus channels' },
  writeGate: { name: 'write gate', unit: 'mean 1 − exp(Δ·A), fraction' },
  stateNorm: { name: '‖state_t‖', unit: 'Frobenius norm of the layer state' },
};

/** The summaries a trace has (focus score only when the engine computed it). */
export function summariesOf(trace: TraceResult): OverviewSummary[] {
  return (['deltaNorm', 'focusScore', 'writeGate', 'stateNorm'] as const).filter((s) => (trace[s]?.length ?? 0) === trace.layers.length && trace.layers.length > 0);
}

/** The window size a user may ask for: 1 … min(T, TRACE_WINDOW_MAX). */
export function clampWindowSize(size: number, T: number): number {
  return Math.max(1, Math.min(T, TRACE_WINDOW_MAX, Math.round(Number.isFinite(size) ? size : 1)));
}

/** The window [from, from + size) moved to start near `from`, kept inside [0, T). */
export function clampWindow(from: number, size: number, T: number): { from: number; to: number } {
  const n = clampWindowSize(size, T);
  const f = Math.max(0, Math.min(T - n, Math.round(from)));
  return { from: f, to: f + n };
}

/** The default window: the last min(T, 2048) tokens. */
export function defaultWindow(T: number): { from: number; to: number } {
  return clampWindow(T, Math.min(T, 2048), T);
}

/** The window after a key (←/→ a tenth of it, PageUp/PageDown a whole one, Home/End the ends); null for other keys. */
export function moveWindowKey(window: { from: number; to: number }, key: string, T: number): { from: number; to: number } | null {
  const n = window.to - window.from;
  const step = Math.max(1, Math.round(n / 10));
  const moves: Record<string, number> = { ArrowLeft: -step, ArrowRight: step, PageUp: -n, PageDown: n };
  if (key === 'Home') return clampWindow(0, n, T);
  if (key === 'End') return clampWindow(T, n, T);
  const d = moves[key];
  return d === undefined ? null : clampWindow(window.from + d, n, T);
}

/**
 * The trace restricted to tokens [from, to): ids, tokens, the per-token summaries and the top next
 * tokens sliced, Δ, B, C (and Mamba-2's ‖state‖ per head) of each layer from the fetched window of
 * that layer over exactly [from, to) (empty arrays for the others), and `tokenOffset: from`.
 * Windows of other ranges or other traces are ignored.
 */
export function windowView(result: TraceResult, from: number, to: number, fetched: readonly TraceWindowResult[]): TraceView {
  const T = result.ids.length;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from < to && to <= T)) {
    throw new RangeError(`Tokens ${from}..${to} are not a window of trace ${result.traceId} (${T} tokens).`);
  }
  const n = to - from;
  const slice = (arrays: readonly Float32Array[]) => arrays.map((a) => a.slice(from, to));
  const windowOf = (layer: number) => fetched.find((w) => w.traceId === result.traceId && w.layer === layer && w.from === from && w.to === to);
  const G = result.nGroups * result.dState;
  const per = (pick: (w: TraceWindowResult) => Float32Array, width: number) =>
    result.layers.map((layer) => {
      const w = windowOf(layer);
      const data = w ? pick(w) : undefined;
      return data && data.length === n * width ? data : new Float32Array(0);
    });
  const k = result.topNext.k;
  const byHead = result.layers.map((layer) => windowOf(layer)?.stateNormByHead);
  const view: TraceView = {
    ...result,
    ids: result.ids.slice(from, to),
    tokens: result.tokens.slice(from, to),
    delta: per((w) => w.delta, result.deltaWidth),
    B: per((w) => w.B, G),
    C: per((w) => w.C, G),
    deltaNorm: slice(result.deltaNorm),
    writeGate: slice(result.writeGate),
    stateNorm: slice(result.stateNorm),
    topNext: { k, ids: result.topNext.ids.slice(from * k, to * k), probs: result.topNext.probs.slice(from * k, to * k) },
    tokenOffset: from,
  };
  if (result.focusScore) view.focusScore = slice(result.focusScore);
  else delete view.focusScore;
  // Per head only when every layer's window brought it (the Memory panel indexes it by layer).
  if (byHead.some((h) => h)) view.stateNormByHead = byHead.map((h) => h ?? new Float32Array(0));
  else delete view.stateNormByHead;
  return view;
}

/** Whether the view's layer `index` has its Δ (a window fetched for it, or an ordinary trace). */
export const hasDetail = (view: TraceResult, index: number) => (view.delta[index]?.length ?? 0) > 0 || view.ids.length === 0;

/**
 * A local token index of a window starting at `oldFrom`, in the window [newFrom, newFrom + n):
 * the same absolute token, or null when it is not in the new window.
 */
export function shiftToken(token: number | null, oldFrom: number, newFrom: number, n: number): number | null {
  if (token === null) return null;
  const local = token + oldFrom - newFrom;
  return local >= 0 && local < n ? local : null;
}
