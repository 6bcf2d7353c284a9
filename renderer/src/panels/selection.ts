/**
 * Pure functions behind the selection panels: per-token selection scores (‖Δ_t‖ or mean Δ over
 * a model's focus channels), the three bands (write + reset / in between / filtered) from two
 * movable thresholds, the heatmap's view along tokens (zoom, pan) and the cell under the cursor,
 * the hover readout, and what a model's studio.json says about itself.
 */
import type { TraceResult } from '../../../app/engine/protocol';
import { readableByte } from '../../../app/tokenizer/readable';
import { rowNorms } from './memory';

/** The selection score of each token: ‖Δ_t‖ over every channel, or mean Δ over chosen channels. */
export type ScoreMode = { kind: 'norm' } | { kind: 'focus'; channels: readonly number[] };

export type Band = 'write' | 'between' | 'filtered';

/** Scores ≥ high are "write + reset"; scores ≤ low are "filtered"; in between otherwise. */
export interface Thresholds {
  low: number;
  high: number;
}

export const BAND_LABELS: Record<Band, string> = {
  write: 'write + reset (large Δ)',
  between: 'in between',
  filtered: 'pass-through / filtered (small Δ)',
};

/** Per token of `delta` ([T, Di] row-major), its score under `mode`. */
export function tokenScores(delta: Float32Array, dInner: number, mode: ScoreMode): Float32Array {
  if (!(Number.isInteger(dInner) && dInner > 0) || delta.length % dInner !== 0) {
    throw new RangeError(`tokenScores: ${delta.length} values are not whole rows of ${dInner} channels`);
  }
  if (mode.kind === 'focus') {
    const T = delta.length / dInner;
    const out = new Float32Array(T);
    const channels = mode.channels.filter((c) => Number.isInteger(c) && c >= 0 && c < dInner);
    if (channels.length === 0) throw new RangeError(`tokenScores: none of the focus channels ${mode.channels.join(', ')} is below ${dInner}`);
    for (let t = 0; t < T; t++) {
      let sum = 0;
      for (const c of channels) sum += delta[t * dInner + c] as number;
      out[t] = sum / channels.length;
    }
    return out;
  }
  return Float32Array.from(rowNorms(delta, dInner));
}

/** What the legend says the score is. */
export function scoreLabel(mode: ScoreMode): string {
  if (mode.kind === 'norm') return '‖Δ_t‖ over all channels';
  const shown = mode.channels.slice(0, 4).join(', ');
  return `mean Δ over focus channels ${shown}${mode.channels.length > 4 ? `, … (${mode.channels.length})` : ''}`;
}

export function bandOf(score: number, thresholds: Thresholds): Band {
  if (score >= thresholds.high) return 'write';
  if (score <= thresholds.low) return 'filtered';
  return 'between';
}

export function bands(scores: ArrayLike<number>, thresholds: Thresholds): Band[] {
  return Array.from(scores, (s) => bandOf(s, thresholds));
}

/** The q-quantile (0..1) of the finite values, linear between order statistics; NaN when there are none. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const at = Math.min(1, Math.max(0, q)) * (sorted.length - 1);
  const lo = Math.floor(at);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (at - lo);
}

/**
 * Thresholds at the terciles of the scores (a third of the tokens in each band to start with);
 * when ties make the terciles meet (many identical tokens), at the thirds of the scores' range.
 */
export function defaultThresholds(scores: ArrayLike<number>): Thresholds {
  const low = quantile(scores, 1 / 3);
  const high = quantile(scores, 2 / 3);
  if (low < high) return { low, high };
  const { min, max } = valueRange(scores, false);
  return { low: min + (max - min) / 3, high: min + (2 * (max - min)) / 3 };
}

/** Thresholds with low ≤ high, after one of them moved. */
export function moveThreshold(thresholds: Thresholds, which: keyof Thresholds, value: number): Thresholds {
  if (which === 'low') return { low: value, high: Math.max(value, thresholds.high) };
  return { low: Math.min(value, thresholds.low), high: value };
}

/** Smallest and largest finite value; with `log`, the smallest positive one (log scales need > 0). */
export function valueRange(data: ArrayLike<number>, log: boolean): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) return log ? { min: 1e-6, max: 1 } : { min: 0, max: 1 };
  return { min, max };
}

/** Where `value` falls in `range` as 0..1 (clamped), on a log or linear scale: what the shader computes. */
export function normalize(value: number, range: { min: number; max: number }, log: boolean): number {
  const f = log ? (x: number) => Math.log(Math.max(x, range.min)) : (x: number) => x;
  const span = f(range.max) - f(range.min);
  if (!(span > 0)) return 0;
  return Math.min(1, Math.max(0, (f(value) - f(range.min)) / span));
}

/** The tokens shown by the heatmap: [start, start + count), fractional while zooming. */
export interface TokenView {
  start: number;
  count: number;
}

export const fullView = (tokens: number): TokenView => ({ start: 0, count: tokens });

/** The view kept inside [0, tokens) and at least `minCount` tokens wide. */
export function clampView(view: TokenView, tokens: number, minCount = 4): TokenView {
  const count = Math.min(tokens, Math.max(Math.min(minCount, tokens), view.count));
  const start = Math.min(tokens - count, Math.max(0, view.start));
  return { start, count };
}

/** Zooms by `factor` (> 1 shows fewer tokens) keeping the token at `anchor` (0..1 across the view) in place. */
export function zoomView(view: TokenView, factor: number, anchor: number, tokens: number): TokenView {
  const at = view.start + anchor * view.count;
  const count = view.count / factor;
  return clampView({ start: at - anchor * count, count }, tokens);
}

/** Pans by `fraction` of the view's width (positive: later tokens). */
export function panView(view: TokenView, fraction: number, tokens: number): TokenView {
  return clampView({ start: view.start + fraction * view.count, count: view.count }, tokens);
}

/**
 * The (token, channel) under a point of the heatmap, x and y measured from its top-left corner
 * in the same units as width and height: tokens run left to right over the view, channels top to
 * bottom. Null outside. The fragment shader maps pixels to texels the same way.
 */
export function cellAt(view: TokenView, channels: number, x: number, y: number, width: number, height: number): { token: number; channel: number } | null {
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  const token = Math.floor(view.start + (x / width) * view.count);
  const channel = Math.floor((y / height) * channels);
  return { token, channel };
}

/** The point (from the top-left corner) at the centre of a cell: the inverse of cellAt. */
export function cellCentre(view: TokenView, channels: number, token: number, channel: number, width: number, height: number): { x: number; y: number } {
  return { x: ((token + 0.5 - view.start) / view.count) * width, y: ((channel + 0.5) / channels) * height };
}

export interface Readout {
  token: number;
  channel: number;
  layer: number;
  id: number;
  text: string;
  value: number;
}

/** The trace's Δ at (token, channel) of the layer at `layerIndex` (an index into trace.layers). */
export function readoutAt(trace: TraceResult, layerIndex: number, token: number, channel: number, texts: readonly string[] = trace.tokens): Readout | null {
  const delta = trace.delta[layerIndex];
  const layer = trace.layers[layerIndex];
  const T = trace.ids.length;
  if (!delta || layer === undefined || !(Number.isInteger(token) && token >= 0 && token < T)) return null;
  if (!(Number.isInteger(channel) && channel >= 0 && channel < trace.deltaWidth)) return null;
  return { token, channel, layer, id: trace.ids[token] as number, text: texts[token] ?? '', value: delta[token * trace.deltaWidth + channel] as number };
}

/** The hovered token after a key press (arrows, Home, End); null when the key does not move it. */
export function moveToken(current: number | null, key: string, tokens: number): number | null {
  if (tokens <= 0) return null;
  const last = tokens - 1;
  switch (key) {
    case 'ArrowRight':
      return current === null ? 0 : Math.min(last, current + 1);
    case 'ArrowLeft':
      return current === null ? last : Math.max(0, current - 1);
    case 'Home':
      return 0;
    case 'End':
      return last;
    default:
      return null;
  }
}

/** Token texts for display: the model's labels (studio.json) when it has them for every id. */
export function tokenTexts(trace: Pick<TraceResult, 'ids' | 'tokens'>, labels?: readonly string[]): string[] {
  if (labels && trace.ids.every((id) => id >= 0 && id < labels.length)) return trace.ids.map((id) => labels[id] as string);
  return [...trace.tokens];
}

/** A prompt a model's studio.json suggests: text (byte or BPE models) or token ids (id-only models). */
export type SuggestedPrompt = { kind: 'text'; text: string } | { kind: 'ids'; ids: number[] };

/** What the studio uses from a model's studio.json (anything missing or malformed is left out). */
export interface StudioHints {
  labels?: string[];
  focusLayer?: number;
  focusChannels?: number[];
  /** The first suggested prompt's token ids (when it is an ids prompt). */
  suggestedIds?: number[];
  /** Every well-formed suggested prompt, in the file's order (malformed entries skipped). */
  prompts?: SuggestedPrompt[];
  /** `generation.max_new_tokens` and `generation.temperature`: the generate panel's defaults. */
  maxNewTokens?: number;
  temperature?: number;
  /** `what_to_look_at`: what the selection panels should show on this model. */
  whatToLookAt?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The bounds the generate panel's own inputs have: studio.json values outside them are ignored. */
export const MAX_NEW_TOKENS_LIMIT = 100000;
export const TEMPERATURE_LIMIT = 5;

function suggestedPrompt(entry: unknown): SuggestedPrompt | null {
  if (typeof entry === 'string') return entry.length > 0 ? { kind: 'text', text: entry } : null;
  if (isRecord(entry) && Array.isArray(entry.ids) && entry.ids.length > 0 && entry.ids.every(isIndex)) return { kind: 'ids', ids: entry.ids };
  if (isRecord(entry) && typeof entry.text === 'string' && entry.text.length > 0) return { kind: 'text', text: entry.text };
  return null;
}

export function studioHints(json: unknown): StudioHints {
  const hints: StudioHints = {};
  if (!isRecord(json)) return hints;
  const labels = isRecord(json.tokenizer) ? json.tokenizer.labels : undefined;
  if (Array.isArray(labels) && labels.length > 0 && labels.every((l) => typeof l === 'string')) hints.labels = labels as string[];
  if (isIndex(json.focus_layer)) hints.focusLayer = json.focus_layer;
  if (Array.isArray(json.focus_channels)) {
    const channels = json.focus_channels.map((c) => (isRecord(c) ? c.channel : c)).filter(isIndex);
    if (channels.length > 0) hints.focusChannels = channels;
  }
  if (Array.isArray(json.suggested_prompts)) {
    const prompts = json.suggested_prompts.map(suggestedPrompt).filter((p): p is SuggestedPrompt => p !== null);
    if (prompts.length > 0) hints.prompts = prompts;
    if (prompts[0]?.kind === 'ids') hints.suggestedIds = prompts[0].ids;
  }
  if (isRecord(json.generation)) {
    const { max_new_tokens: max, temperature } = json.generation;
    if (isIndex(max) && max >= 1 && max <= MAX_NEW_TOKENS_LIMIT) hints.maxNewTokens = max;
    if (typeof temperature === 'number' && temperature >= 0 && temperature <= TEMPERATURE_LIMIT) hints.temperature = temperature;
  }
  if (typeof json.what_to_look_at === 'string' && json.what_to_look_at.trim()) hints.whatToLookAt = json.what_to_look_at.trim();
  return hints;
}

/** What a suggested prompt puts into a prompt box: the text, or the ids as "5, 17, 3" (what parseIds reads). */
export function promptBoxText(prompt: SuggestedPrompt): string {
  return prompt.kind === 'text' ? prompt.text : prompt.ids.join(', ');
}

/**
 * A suggested prompt's chip: a short label (text with newlines as ⏎, cut at `max` characters; ids
 * as "Sequence n · T tokens") and a longer title (the text, or the ids' labels when there are).
 */
export function promptChip(prompt: SuggestedPrompt, index: number, labels?: readonly string[], max = 24): { label: string; title: string } {
  if (prompt.kind === 'text') {
    const flat = prompt.text.replace(/\r?\n/g, '⏎');
    return { label: flat.length > max ? `${flat.slice(0, max - 1)}…` : flat, title: prompt.text };
  }
  const named = labels && prompt.ids.every((id) => id < labels.length) ? prompt.ids.map((id) => labels[id]).join('') : prompt.ids.join(' ');
  return { label: `Sequence ${index + 1} · ${prompt.ids.length} tokens`, title: named };
}

/** Token ids typed as "5, 17 3"; null when any part is not a non-negative integer. */
export function parseIds(text: string): number[] | null {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  const ids = parts.map(Number);
  return ids.length > 0 && ids.every((id) => Number.isInteger(id) && id >= 0) ? ids : null;
}

/** What a token id reads as in the UI, for any id (not only the prompt's): see tokenNamer. */
export interface TokenNaming {
  /** studio.json's labels (labels[id]). */
  labels?: readonly string[];
  /** The loaded model's tokenizer kind. */
  tokenizer: 'bytes' | 'bpe' | 'none';
  /** The traced prompt's ids and their texts (the engine's `tokens`): the texts known for BPE ids. */
  ids: readonly number[];
  tokens: readonly string[];
}

/**
 * A function from token id to display text: the model's label when studio.json has one; for byte
 * models the byte shown readably (as the engine shows prompt bytes); for other models the
 * prompt's text of that id when the prompt holds it; otherwise the id itself.
 */
export function tokenNamer(naming: TokenNaming): (id: number) => string {
  const known = new Map<number, string>();
  naming.ids.forEach((id, t) => {
    const text = naming.tokens[t];
    if (text !== undefined && !known.has(id)) known.set(id, text);
  });
  const { labels, tokenizer } = naming;
  return (id) => {
    if (labels && Number.isInteger(id) && id >= 0 && id < labels.length) return labels[id] as string;
    if (tokenizer === 'bytes' && Number.isInteger(id) && id >= 0 && id < 256) return readableByte(id);
    if (tokenizer === 'bpe') return known.get(id) ?? String(id);
    return String(id);
  };
}

/** The `n` most likely next tokens after token `t` (row t of [T, k] top-k ids and probabilities), most likely first. */
export function topNextAt(topNext: TraceResult['topNext'], t: number, n = 5): { id: number; prob: number }[] {
  const { k, ids, probs } = topNext;
  if (!(Number.isInteger(t) && t >= 0 && (t + 1) * k <= ids.length && (t + 1) * k <= probs.length)) return [];
  const row = Array.from({ length: k }, (_, j) => ({ id: ids[t * k + j] as number, prob: probs[t * k + j] as number }));
  // A live trace traced in the generating session (software adapters) has no prediction for
  // prompt tokens but the last (id −1, probability NaN); a trail's (app/analysis/trace-trail.ts) has every one.
  return row.filter((e) => e.id >= 0 && Number.isFinite(e.prob)).sort((a, b) => b.prob - a.prob).slice(0, n);
}

/** Why a click on Trace cannot run now (the message shown beside the button), or null when it can. */
export function traceBlocker(state: { tracing: boolean; generating: boolean; prompt: string; idsOnly: boolean }): string | null {
  if (state.tracing) return 'A trace is already running: wait for it to finish.';
  if (state.generating) return 'A generation is running: stop it (Stop, or Escape in the prompt) before tracing.';
  if (state.prompt.trim() === '') return state.idsOnly ? 'The box is empty: type token ids to trace, e.g. "5, 17, 3".' : 'The box is empty: type a prompt to trace.';
  if (state.idsOnly && parseIds(state.prompt) === null) return 'This model has no tokenizer: type token ids to trace, e.g. "5, 17, 3".';
  return null;
}

/**
 * What a key does in the token strip: arrows, Home and End move the hovered token; Enter and
 * Space pick the hovered token for the memory and knockout panels (as a click does). Null: not
 * the strip's key.
 */
export function stripKeyAction(key: string, hovered: number | null, tokens: number): { hover: number } | { pick: number } | null {
  if (key === 'Enter' || key === ' ') return hovered !== null && hovered >= 0 && hovered < tokens ? { pick: hovered } : null;
  const next = moveToken(hovered, key, tokens);
  return next === null ? null : { hover: next };
}
