/**
 * A session file (`.mamba-session`): one safetensors file that holds what the studio showed —
 * the trace's tensors exactly as a trace file holds them (app/analysis/export.ts, so a session
 * opens wherever a trace does) and, in the metadata key `session`, a JSON object:
 *
 *   { "version": 1,
 *     "model": { "id", "name", "source": "bundled" | "user", "path"?, "files"?, "sizeBytes"?, "architecture"? } | null,
 *     "prompts": { "trace": string | null, "generate": string | null },
 *     "view": { "layer": index into the trace's layers, "hoverToken", "memoryToken": token | null,
 *               "scoreMode": "norm" | "focus" | null, "thresholds"?: { "key", "low", "high" } | null,
 *               "heatmaps"?: { "delta"?: HeatmapView, "bc"?: HeatmapView } } }
 *
 * A HeatmapView is a heatmap's zoom and pan: { "tokens", "channels" (the counts it was made for),
 * "x": { "start", "count" } (tokens shown), "y": { "start", "count" } (channels / states shown) }.
 * Heatmap views are read leniently: one that is malformed or does not fit the trace is dropped
 * (that heatmap opens on its full view) rather than refusing the session.
 *
 * The model is a reference, never its weights: a bundled model by id, a user model by name,
 * file list and size (and its path on the desktop). A session without a trace has no tensors.
 * Reading checks the JSON's every field and its view against the trace before anything else
 * happens; any problem is one ModelFileError naming the file.
 */
import { ModelFileError } from '../formats/errors.js';
import { encodeSafetensors } from '../formats/safetensors-write.js';
import { readSafetensorsHeader } from '../formats/safetensors.js';
import { memorySource, type ByteSource } from '../formats/source.js';
import { v, ValidationError } from '../validate.js';
import { encodeTrace } from './export.js';
import { readTraceFile, SESSION_FORMAT, type OpenedTrace } from './trace-file.js';
import type { TraceResult } from './types.js';

export { SESSION_FORMAT };
export const SESSION_EXTENSION = '.mamba-session';

export interface SessionModelRef {
  id: string;
  name: string;
  source: 'bundled' | 'user';
  path?: string;
  files?: string[];
  sizeBytes?: number;
  architecture?: string;
}

export interface SessionView {
  layer: number;
  hoverToken: number | null;
  memoryToken: number | null;
  scoreMode: 'norm' | 'focus' | null;
  /** The token strip's thresholds as moved by the user, for the layer and score `key` names (null: the defaults). */
  thresholds?: { key: string; low: number; high: number } | null;
  /** The heatmaps' zoom and pan (absent: full views). */
  heatmaps?: SessionHeatmaps;
}

/** A heatmap's zoom and pan (both axes), for the counts it was made for. */
export interface SessionHeatmapView {
  tokens: number;
  channels: number;
  x: { start: number; count: number };
  y: { start: number; count: number };
}

export interface SessionHeatmaps {
  delta?: SessionHeatmapView;
  bc?: SessionHeatmapView;
}

export const HEATMAP_KEYS = ['delta', 'bc'] as const;

const MAX_AXIS = 1 << 24;

/** One axis of a heatmap view inside 0 … total, or null. */
function axisOf(raw: unknown, total: number): { start: number; count: number } | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const { start, count } = raw as Record<string, unknown>;
  if (typeof start !== 'number' || typeof count !== 'number' || !Number.isFinite(start) || !Number.isFinite(count)) return null;
  if (!(start >= 0 && count > 0 && start + count <= total * (1 + 1e-9))) return null;
  return { start, count };
}

/** A heatmap view from a session's JSON, when it is well-formed and made for `tokens` tokens; else null (the full view). */
export function readHeatmapView(raw: unknown, tokens: number): SessionHeatmapView | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_AXIS;
  if (!count(r.tokens) || r.tokens !== tokens || !count(r.channels)) return null;
  const x = axisOf(r.x, tokens);
  const y = axisOf(r.y, r.channels as number);
  return x && y ? { tokens, channels: r.channels as number, x, y } : null;
}

/** The heatmap views of a session's JSON that are well-formed and fit a trace of `tokens` tokens. */
export function readHeatmapViews(raw: unknown, tokens: number): SessionHeatmaps {
  const out: SessionHeatmaps = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  for (const key of HEATMAP_KEYS) {
    const view = readHeatmapView((raw as Record<string, unknown>)[key], tokens);
    if (view) out[key] = view;
  }
  return out;
}

export interface SessionState {
  model: SessionModelRef | null;
  prompts: { trace: string | null; generate: string | null };
  view: SessionView;
}

export interface Session extends SessionState {
  trace: OpenedTrace | null;
}

const MAX_PROMPT = 4 * 1024 * 1024;
const nullable = <T>(inner: (value: unknown, path: string) => T) => (value: unknown, path: string) => (value === null ? null : inner(value, path));
const token = v.number({ integer: true, min: 0, max: 1 << 20 });

const sessionJson = v.object({
  version: v.literal(1),
  model: nullable(
    v.object({
      id: v.string({ maxLength: 512, nonEmpty: true }),
      name: v.string({ maxLength: 1024, nonEmpty: true }),
      source: v.literal('bundled', 'user'),
      path: v.optional(v.string({ maxLength: 4096 })),
      files: v.optional(v.array(v.string({ maxLength: 1024 }), { maxLength: 256 })),
      sizeBytes: v.optional(v.number({ integer: true, min: 0 })),
      architecture: v.optional(v.string({ maxLength: 64 })),
    }),
  ),
  prompts: v.object({ trace: nullable(v.string({ maxLength: MAX_PROMPT })), generate: nullable(v.string({ maxLength: MAX_PROMPT })) }),
  view: v.object({
    layer: v.number({ integer: true, min: 0, max: 1024 }),
    hoverToken: nullable(token),
    memoryToken: nullable(token),
    scoreMode: nullable(v.literal('norm', 'focus')),
    thresholds: v.optional(nullable(v.object({ key: v.string({ maxLength: 512 }), low: v.number(), high: v.number() }))),
    // Checked leniently below (readHeatmapViews): a bad view falls back to the full view.
    heatmaps: (value: unknown) => value,
  }),
});

/** Drops keys whose value is undefined (the validator writes them for absent optional keys). */
function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, x]) => x !== undefined)) as T;
}

/** The bytes of a session file. */
export function encodeSession(state: SessionState, trace: { result: TraceResult; prompt: { text: string } | { ids: readonly number[] } } | null): Uint8Array {
  const json = JSON.stringify({ version: 1, model: state.model, prompts: state.prompts, view: state.view });
  if (!trace) return encodeSafetensors({}, { format: SESSION_FORMAT, session: json });
  return encodeTrace(trace.result, trace.prompt, { format: SESSION_FORMAT, metadata: { session: json } });
}

/** Reads and checks a session file. */
export async function readSessionFile(source: ByteSource): Promise<Session> {
  const file = source.name;
  const header = await readSafetensorsHeader(source);
  if (header.metadata.format !== SESSION_FORMAT) {
    throw new ModelFileError(file, `not a Mamba Studio session: metadata format is ${header.metadata.format === undefined ? 'missing' : JSON.stringify(header.metadata.format.slice(0, 60))}, expected "${SESSION_FORMAT}"`);
  }
  const text = header.metadata.session;
  if (text === undefined) throw new ModelFileError(file, 'metadata has no "session"');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ModelFileError(file, 'metadata "session" is not valid JSON');
  }
  let parsed;
  try {
    parsed = sessionJson(raw, 'session');
  } catch (error) {
    if (error instanceof ValidationError) throw new ModelFileError(file, error.message);
    throw error;
  }
  const trace = header.tensors.size > 0 ? await readTraceFile(source) : null;
  const view = parsed.view;
  if (trace) {
    const T = trace.result.ids.length;
    if (view.layer >= trace.result.layers.length) throw new ModelFileError(file, `session.view.layer is ${view.layer}, but the trace has ${trace.result.layers.length} layer(s)`);
    for (const key of ['hoverToken', 'memoryToken'] as const) {
      const t = view[key];
      if (t !== null && t >= T) throw new ModelFileError(file, `session.view.${key} is ${t}, but the trace has ${T} token(s)`);
    }
  }
  const heatmaps = trace ? readHeatmapViews(view.heatmaps, trace.result.ids.length) : {};
  return {
    model: parsed.model ? compact(parsed.model) : null,
    prompts: parsed.prompts,
    view: compact({ ...view, heatmaps: Object.keys(heatmaps).length > 0 ? heatmaps : undefined }),
    trace,
  };
}

export function bytesToSession(bytes: Uint8Array, file = `session${SESSION_EXTENSION}`): Promise<Session> {
  return readSessionFile(memorySource(file, bytes));
}
