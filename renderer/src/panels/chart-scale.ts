/**
 * The numbers behind every chart's axes and colour bars, as pure functions (unit-tested without a
 * DOM): "nice" tick values (1, 2 or 5 × 10^k steps) on linear scales, powers of ten (with 2× and
 * 5× in between when the range is narrow) on log scales, tick labels, label thinning so labels
 * never overlap, the token axis (token text when the zoom gives every token room, indices
 * otherwise), the symmetric range of a diverging colour map, and the 2-D view of a heatmap
 * (tokens × channels, both zoomable) with its cell mapping and keyboard cursor.
 */
import { clampView, normalize, type TokenView } from './selection';

export interface Range {
  min: number;
  max: number;
}

/** The nice step (1, 2 or 5 × 10^k) nearest above `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  const nice = r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10;
  return nice * mag;
}

/** k · step without the binary fuzz (0.1 · 3 → 0.3). */
const multiple = (k: number, step: number) => Number((k * step).toPrecision(12));

/** The next nice step below `step` (10 → 5 → 2 → 1 → 0.5 …). */
function smallerStep(step: number): number {
  const mag = 10 ** Math.floor(Math.log10(step) + 1e-9);
  const m = Math.round(step / mag);
  return m === 1 ? mag / 2 : m === 2 ? mag : 2 * mag;
}

/** Multiples of `step` inside [min, max]. */
function multiplesIn(min: number, max: number, step: number): number[] {
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const out: number[] = [];
  for (let k = first; k <= last; k++) out.push(multiple(k, step));
  return out;
}

/**
 * Ticks on a linear scale: every multiple of one nice step inside [min, max], at most `maxCount`
 * of them where that still gives two (a narrow range gets a finer step rather than one lone tick);
 * one when the range is a single value. `integer`: steps of at least 1.
 */
export function niceTicks(min: number, max: number, maxCount = 6, integer = false): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  if (max === min) return [min];
  const count = Math.max(2, Math.floor(maxCount));
  let step = niceStep((max - min) / count);
  if (integer) step = Math.max(1, step);
  let ticks = multiplesIn(min, max, step);
  while (ticks.length > count) {
    step = niceStep(step * 1.01);
    ticks = multiplesIn(min, max, step);
  }
  while (ticks.length < 2 && !(integer && step <= 1)) {
    step = smallerStep(step);
    if (integer) step = Math.max(1, step);
    ticks = multiplesIn(min, max, step);
  }
  return ticks;
}

/**
 * Ticks on a log scale over [min, max] (min > 0): powers of ten, every second or third one when
 * there are many; with fewer than two of them in range, also 2× and 5×; with fewer than two
 * still, linear nice ticks (the range spans less than a factor of ~2.5).
 */
export function logTicks(min: number, max: number, maxCount = 6): number[] {
  if (!(min > 0) || !Number.isFinite(max) || max < min) return [];
  const count = Math.max(2, Math.floor(maxCount));
  const lo = Math.ceil(Math.log10(min) - 1e-9);
  const hi = Math.floor(Math.log10(max) + 1e-9);
  const decades = hi - lo + 1;
  if (decades >= 2) {
    const stride = Math.ceil(decades / count);
    const out: number[] = [];
    for (let e = lo; e <= hi; e += stride) out.push(Number((10 ** e).toPrecision(12)));
    return out;
  }
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  if (out.length >= 2 && out.length <= count) return out;
  return niceTicks(min, max, count).filter((v) => v > 0);
}

/** A tick's label: plain decimals with as many places as the step needs, exponents for tiny or huge values. */
export function formatTick(value: number, step?: number): string {
  if (value === 0) return '0';
  const a = Math.abs(value);
  if (a >= 1e5 || a < 1e-3) {
    const s = value.toExponential(step !== undefined && step > 0 ? Math.max(0, Math.min(3, Math.round(Math.log10(a / step)))) : 2);
    return s.replace(/\.?0+e/, 'e').replace('e+', 'e');
  }
  if (step !== undefined && step > 0) return value.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));
  return String(Number(value.toPrecision(4)));
}

/** The smallest gap between consecutive ticks (the step their labels need), or undefined. */
const stepOf = (ticks: readonly number[]) => (ticks.length > 1 ? Math.min(...ticks.slice(1).map((v, i) => v - (ticks[i] as number))) : undefined);

export interface ScaleTick {
  value: number;
  /** Where along the axis or bar: 0 at `range.min`, 1 at `range.max`. */
  t: number;
  label: string;
}

/** Ticks of a colour bar or value axis over `range` on a log or linear scale, with their positions. */
export function scaleTicks(range: Range, log: boolean, maxCount = 6): ScaleTick[] {
  const values = log ? logTicks(range.min, range.max, maxCount) : niceTicks(range.min, range.max, maxCount);
  const step = log ? undefined : stepOf(values);
  return values.map((value) => ({ value, t: range.max === range.min ? 0.5 : normalize(value, range, log), label: log ? formatTick(value) : formatTick(value, step) }));
}

export interface LabelBox {
  /** Centre along the axis, in pixels. */
  centre: number;
  /** Width (or height, on a vertical axis) of the label in pixels. */
  size: number;
}

/**
 * Which labels to draw so that none overlaps the previous one drawn (at least `gap` pixels
 * apart), in order along the axis; `pinned` (an index) is always kept and its neighbours yield.
 */
export function thinLabels(boxes: readonly LabelBox[], gap = 4, pinned?: number): number[] {
  const kept: number[] = [];
  let end = -Infinity;
  const pin = pinned !== undefined ? boxes[pinned] : undefined;
  for (let i = 0; i < boxes.length; i++) {
    const b = boxes[i] as LabelBox;
    const start = b.centre - b.size / 2;
    if (i !== pinned) {
      if (start < end + gap) continue;
      // Leave room for the pinned label.
      if (pin && i < (pinned as number) && b.centre + b.size / 2 + gap > pin.centre - pin.size / 2) continue;
      if (pin && i > (pinned as number) && start < pin.centre + pin.size / 2 + gap) continue;
    }
    kept.push(i);
    end = b.centre + b.size / 2;
  }
  return kept;
}

export interface AxisTick {
  /** The token (or channel) index. */
  index: number;
  /** 0..1 across the axis. */
  t: number;
  label: string;
}

/** Approximate width of a label in the axes' 10 px font. */
export const labelWidth = (text: string, charPx = 6) => Math.max(1, [...text].length) * charPx;

const isControl = (c: string) => {
  const code = c.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f;
};

/** Makes a token's text visible in a label: whitespace and control characters as symbols. */
export function visibleText(text: string, max = 12): string {
  const shown = [...text]
    .map((c) => (c === ' ' ? '␣' : c === '\n' ? '↵' : c === '\t' ? '⇥' : isControl(c) ? '�' : c))
    .join('');
  const chars = [...shown];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : shown;
}

/** Pixels per token at which the token axis shows token text instead of indices. */
export const TEXT_LABEL_PX = 14;

/**
 * The token axis under a heatmap `widthPx` wide showing `view`: when every token has at least
 * TEXT_LABEL_PX, each visible token's text (thinned so labels do not overlap); otherwise nice
 * integer indices. `t` is the centre of the token's column.
 */
export function tokenAxisTicks(view: TokenView, widthPx: number, texts: readonly string[] | null, total: number, offset = 0): { kind: 'text' | 'index'; ticks: AxisTick[] } {
  if (!(view.count > 0) || !(widthPx > 0) || total <= 0) return { kind: 'index', ticks: [] };
  const px = widthPx / view.count;
  const first = Math.max(0, Math.floor(view.start));
  const last = Math.min(total - 1, Math.ceil(view.start + view.count) - 1);
  const centre = (i: number) => (i + 0.5 - view.start) / view.count;
  if (texts && px >= TEXT_LABEL_PX) {
    const cands: AxisTick[] = [];
    for (let i = first; i <= last; i++) cands.push({ index: i, t: centre(i), label: visibleText(texts[i] ?? String(i)) });
    const kept = thinLabels(cands.map((c) => ({ centre: c.t * widthPx, size: labelWidth(c.label) })));
    return { kind: 'text', ticks: kept.map((k) => cands[k] as AxisTick) };
  }
  return { kind: 'index', ticks: indexTicks(view, widthPx, total, 60, offset) };
}

/**
 * Nice integer indices over the cells of `view` along an axis `lengthPx` long (about one per 60 px).
 * `offset`: cell i is index offset + i (a window of a long trace, long-trace.ts TraceView): the
 * labels are nice absolute indices, `index` stays the local cell.
 */
export function indexTicks(view: TokenView, lengthPx: number, total: number, spacingPx = 60, offset = 0): AxisTick[] {
  const first = Math.max(0, Math.floor(view.start));
  const last = Math.min(total - 1, Math.ceil(view.start + view.count) - 1);
  if (last < first) return [];
  const values = niceTicks(first + offset, last + offset, Math.max(2, Math.floor(lengthPx / spacingPx)), true).map((v) => v - offset);
  return values.filter((i) => i + 0.5 >= view.start && i + 0.5 <= view.start + view.count).map((i) => ({ index: i, t: (i + 0.5 - view.start) / view.count, label: String(i + offset) }));
}

/**
 * Ticks of a state axis made of `groups` groups of `size` states (Mamba-2's B and C: column
 * g·size + n), `lengthPx` long, showing `view`. Across several groups: a tick at each group's
 * first state, labelled "g<g>", every k-th group so that ticks stay `spacingPx` apart (with
 * Mamba-Codestral's 8 × 128 columns on a 200 px axis: g0, g2, g4, g6), and, when a group has room
 * for several, nice states inside each labelled "n<n>". Inside one group: nice states labelled
 * "g<g>·n<n>". One group: plain indices (indexTicks).
 */
export function groupStateTicks(view: TokenView, lengthPx: number, groups: number, size: number, spacingPx = 28): AxisTick[] {
  const total = groups * size;
  if (groups <= 1 || size < 1) return indexTicks(view, lengthPx, total, spacingPx);
  const first = Math.max(0, Math.floor(view.start));
  const last = Math.min(total - 1, Math.ceil(view.start + view.count) - 1);
  if (last < first || !(lengthPx > 0) || !(view.count > 0)) return [];
  const t = (i: number) => (i + 0.5 - view.start) / view.count;
  const visible = (i: number) => i + 0.5 >= view.start && i + 0.5 <= view.start + view.count;
  const gFirst = Math.floor(first / size);
  const gLast = Math.floor(last / size);
  if (gFirst === gLast) {
    const base = gFirst * size;
    const values = niceTicks(first - base, last - base, Math.max(2, Math.floor(lengthPx / spacingPx)), true);
    return values.filter((n) => visible(base + n)).map((n) => ({ index: base + n, t: t(base + n), label: `g${gFirst}·n${n}` }));
  }
  const groupPx = (size * lengthPx) / view.count;
  const stride = Math.max(1, Math.ceil(spacingPx / groupPx));
  const inner = groupPx >= 3 * spacingPx ? niceTicks(0, size - 1, Math.floor(groupPx / spacingPx), true).filter((n) => n > 0 && n < size) : [];
  const ticks: AxisTick[] = [];
  for (let g = gFirst; g <= gLast; g++) {
    if (g % stride === 0 && visible(g * size)) ticks.push({ index: g * size, t: t(g * size), label: `g${g}` });
    for (const n of inner) if (visible(g * size + n)) ticks.push({ index: g * size + n, t: t(g * size + n), label: `n${n}` });
  }
  return ticks;
}

/** Rows of the layer overview (‖Δ_t‖, layers × tokens), in px: 12 each up to 20 layers, then the overview stays about 240 px tall (at least 4 px a row: 64 layers, 256 px). */
export function layerOverviewHeight(layers: number): number {
  if (layers <= 20) return Math.max(24, 12 * layers);
  return layers * Math.max(4, Math.floor(240 / layers));
}

/** The range of a diverging map: symmetric about 0, so that 0 is its middle colour. */
export function symmetricRange(range: Range): Range {
  const m = Math.max(Math.abs(range.min), Math.abs(range.max));
  return m > 0 && Number.isFinite(m) ? { min: -m, max: m } : { min: -1, max: 1 };
}

/** A heatmap's 2-D view: tokens along x, channels (states, layers, rows) along y, each zoomable. */
export interface View2d {
  x: TokenView;
  y: TokenView;
}

/** The cell under (px, py) from the top-left corner of a width × height heatmap showing `view`; null outside. */
export function cellAt2d(view: View2d, px: number, py: number, width: number, height: number): { token: number; channel: number } | null {
  if (!(px >= 0 && py >= 0 && px < width && py < height)) return null;
  return { token: Math.floor(view.x.start + (px / width) * view.x.count), channel: Math.floor(view.y.start + (py / height) * view.y.count) };
}

/** The centre of a cell: the inverse of cellAt2d. */
export function cellCentre2d(view: View2d, token: number, channel: number, width: number, height: number): { x: number; y: number } {
  return { x: ((token + 0.5 - view.x.start) / view.x.count) * width, y: ((channel + 0.5 - view.y.start) / view.y.count) * height };
}

/**
 * The keyboard cursor after a key: ←/→ one token, ↑/↓ one channel, Home/End the first/last
 * token, PageUp/PageDown eight channels; kept inside the matrix. Null when the key does not move it.
 */
export function moveCursor2d(cell: { token: number; channel: number } | null, key: string, tokens: number, channels: number): { token: number; channel: number } | null {
  if (tokens <= 0 || channels <= 0) return null;
  const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1], PageUp: [0, -8], PageDown: [0, 8] };
  const start = cell ?? { token: 0, channel: 0 };
  let { token, channel } = start;
  if (key === 'Home') token = 0;
  else if (key === 'End') token = tokens - 1;
  else if (moves[key]) {
    if (!cell) return { token: 0, channel: 0 };
    token += moves[key][0];
    channel += moves[key][1];
  } else return null;
  return { token: Math.min(tokens - 1, Math.max(0, token)), channel: Math.min(channels - 1, Math.max(0, channel)) };
}

/** The view panned (not zoomed) just enough to show cell `index` of `total`. */
export function keepVisible(view: TokenView, index: number, total: number): TokenView {
  let start = view.start;
  if (index < start) start = index;
  else if (index + 1 > start + view.count) start = index + 1 - view.count;
  return start === view.start ? view : clampView({ start, count: view.count }, total, 1);
}
