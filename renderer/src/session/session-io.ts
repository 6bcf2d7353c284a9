/**
 * Sessions and opened traces in the renderer: what a session saves of the store, how a file the
 * user opens is told apart (a session, a trace export, or a model), and how an opened session or
 * trace goes into the store — all-or-nothing: the file is read and checked in full
 * (app/analysis/session.ts, trace-file.ts) before anything on screen changes, so a bad file
 * leaves what was open as it was. The pure parts are unit-tested (test/unit/session-io.test.ts).
 */
import type { ModelEntry } from '../../../app/contract';
import { HEATMAP_KEYS, readHeatmapView, readSessionFile, SESSION_EXTENSION, SESSION_FORMAT, type Session, type SessionHeatmaps, type SessionModelRef, type SessionState } from '../../../app/analysis/session';
import { readTraceFile, type OpenedTrace } from '../../../app/analysis/trace-file';
import { TRACE_FORMAT } from '../../../app/analysis/export';
import { readSafetensorsHeader } from '../../../app/formats/safetensors';
import { blobSource, type BlobLike, type ByteSource } from '../../../app/formats/source';
import type { StudioState, TraceScoreMode } from '../store';

/** Largest session or trace file opened (each tensor is read into memory). */
export const MAX_SESSION_FILE_BYTES = 2 * 1024 ** 3;

/** The reference a session keeps of a model: enough to find it again, never its weights. */
export function modelRef(entry: ModelEntry): SessionModelRef {
  return {
    id: entry.id,
    name: entry.name,
    source: entry.source,
    files: [...entry.files],
    sizeBytes: entry.sizeBytes,
    ...(entry.path ? { path: entry.path } : {}),
    ...(entry.architecture !== 'unknown' ? { architecture: entry.architecture } : {}),
  };
}

/**
 * The library's model a reference names: a bundled model by id; a user model by its path (desktop),
 * else by name, size and files (web mode's ids are not stable across reloads). Null when none is there.
 */
export function findModel(models: readonly ModelEntry[], ref: SessionModelRef | null): ModelEntry | null {
  if (!ref) return null;
  if (ref.source === 'bundled') return models.find((m) => m.source === 'bundled' && m.id === ref.id) ?? null;
  const sameFiles = (m: ModelEntry) => !ref.files || (m.files.length === ref.files.length && m.files.every((f, i) => f === ref.files?.[i]));
  return (
    models.find((m) => m.source === 'user' && ref.path !== undefined && m.path === ref.path) ??
    models.find((m) => m.source === 'user' && m.name === ref.name && (ref.sizeBytes === undefined || m.sizeBytes === ref.sizeBytes) && sameFiles(m)) ??
    null
  );
}

/** What a session saves of the store: the model shown, the two prompt boxes, the view of the trace (with the heatmaps' zoom when zoomed). */
export function sessionStateOf(
  s: Pick<StudioState, 'models' | 'selectedModelId' | 'trace' | 'promptDrafts' | 'traceLayer' | 'traceHoverToken' | 'traceMemoryToken' | 'traceScoreMode' | 'traceThresholds' | 'traceViews'>,
): SessionState {
  const trace = s.trace?.state === 'done' ? s.trace : null;
  const selected = s.models.find((m) => m.id === s.selectedModelId) ?? null;
  // The trace's model when there is a trace (its reference as opened, or the library's entry), else the selected model.
  const traceModel = trace ? (trace.opened?.model ?? (s.models.find((m) => m.id === trace.modelId) ? modelRef(s.models.find((m) => m.id === trace.modelId) as ModelEntry) : null)) : null;
  const T = trace?.result.ids.length ?? 0;
  const token = (t: number | null) => (t !== null && t >= 0 && t < T ? t : null);
  // The heatmap views that belong to this trace (a view made for another token count is not shown, so not saved).
  const heatmaps: SessionHeatmaps = {};
  for (const key of HEATMAP_KEYS) {
    const saved = trace ? readHeatmapView(s.traceViews[key], T) : null;
    if (saved) heatmaps[key] = saved;
  }
  return {
    model: traceModel ?? (selected ? modelRef(selected) : null),
    prompts: { trace: s.promptDrafts.trace, generate: s.promptDrafts.generate },
    view: {
      layer: trace ? Math.max(0, Math.min(s.traceLayer, trace.result.layers.length - 1)) : 0,
      hoverToken: token(s.traceHoverToken),
      memoryToken: token(s.traceMemoryToken),
      scoreMode: s.traceScoreMode,
      thresholds: trace ? s.traceThresholds : null,
      ...(Object.keys(heatmaps).length > 0 ? { heatmaps } : {}),
    },
  };
}

export type OpenedFile = { kind: 'session'; file: string; session: Session } | { kind: 'trace'; file: string; trace: OpenedTrace };

/**
 * Is this a session or a trace file (rather than a model)? A `.mamba-session`, or a single
 * `.safetensors` whose metadata names the trace or session format (the header alone is read).
 */
export async function sessionFileKind(files: readonly BlobLike[]): Promise<'session' | 'trace' | null> {
  if (files.length !== 1) return null;
  const file = files[0] as BlobLike;
  const name = file.name ?? '';
  if (name.toLowerCase().endsWith(SESSION_EXTENSION)) return 'session';
  if (!/\.safetensors$/i.test(name)) return null;
  try {
    const format = (await readSafetensorsHeader(blobSource(file, name))).metadata.format;
    return format === SESSION_FORMAT ? 'session' : format === TRACE_FORMAT ? 'trace' : null;
  } catch {
    return null; // not readable as safetensors: let the model opener say what is wrong
  }
}

/** Reads and checks a session or trace file completely (nothing is applied). */
export async function readOpenedFile(source: ByteSource, kind: 'session' | 'trace'): Promise<OpenedFile> {
  if (source.size > MAX_SESSION_FILE_BYTES) {
    throw new Error(`${source.name}: ${(source.size / 1024 ** 3).toFixed(1)} GiB is larger than any session or trace this app writes (limit ${MAX_SESSION_FILE_BYTES / 1024 ** 3} GiB)`);
  }
  if (kind === 'session') return { kind, file: source.name, session: await readSessionFile(source) };
  return { kind, file: source.name, trace: await readTraceFile(source) };
}

/** The file name a session of this model is saved under. */
export function sessionFileName(ref: SessionModelRef | null): string {
  const base = (ref?.name ?? 'untitled').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'untitled';
  return `${base}${SESSION_EXTENSION}`;
}

/** What an opened file does to the store (all at once, after the whole file was checked). */
export function applyOpenedFile(store: StudioState, opened: OpenedFile): { model: ModelEntry | null; wanted: SessionModelRef | null } {
  const trace = opened.kind === 'session' ? opened.session.trace : opened.trace;
  const wanted: SessionModelRef | null =
    opened.kind === 'session' ? opened.session.model : { id: opened.trace.result.modelId, name: opened.trace.result.modelId.replace(/^bundled:/, ''), source: opened.trace.result.modelId.startsWith('bundled:') ? 'bundled' : 'user' };
  const model = findModel(store.models, wanted);
  if (model) store.selectModel(model.id);
  if (trace) {
    store.setTrace({ state: 'done', modelId: trace.result.modelId, result: trace.result, prompt: trace.prompt, opened: { file: opened.file, model: wanted } });
  }
  if (opened.kind === 'session') {
    const { view, prompts } = opened.session;
    store.setTraceLayer(trace ? view.layer : 0);
    store.setTraceHoverToken(view.hoverToken);
    store.setTraceMemoryToken(view.memoryToken);
    if (view.scoreMode) store.setTraceScoreMode(view.scoreMode as TraceScoreMode);
    store.setPromptDraft('trace', prompts.trace);
    store.setPromptDraft('generate', prompts.generate);
    store.setTraceThresholds(trace ? (view.thresholds ?? null) : null);
    for (const key of HEATMAP_KEYS) store.setTraceView(key, (trace && view.heatmaps?.[key]) || null);
  } else {
    store.setTraceLayer(0);
    store.setTraceHoverToken(null);
    for (const key of HEATMAP_KEYS) store.setTraceView(key, null);
  }
  return { model, wanted };
}
