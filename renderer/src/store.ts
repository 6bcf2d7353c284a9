/**
 * One zustand store of typed slices. Components read through the selectors below (defined once,
 * outside components) so each re-renders only when its slice changes.
 */
import { create, type StateCreator } from 'zustand';
import type { AppInfo, ModelEntry } from '../../app/contract';
import type { AttributionResult, EngineEvent, GpuStatus, LoadedModelInfo, LoadProgress, SelfTestResult, TraceParams, TraceResult, TraceRows } from '../../app/engine/protocol';
import { appendTraceRows } from '../../app/analysis/trace-rows';
import type { SessionHeatmapView } from '../../app/analysis/session';
import type { SessionModelRef } from '../../app/analysis/session';
import { addNotice, dismissNotice, enterContext, expireNotices, type Notice, type NoticeKind } from './notices';
import { browserStorage, defaultLayout, loadLayout, resetPanelHeight, resizePanel, saveLayout, setPanelCollapsed, withTiling, type PanelLayout, type Tiling } from './panels/layout';

export type ModelLoad =
  | { state: 'loading'; progress: LoadProgress | null }
  | { state: 'loaded'; info: LoadedModelInfo }
  | { state: 'failed'; message: string };

export type { Notice };

export interface GpuSlice {
  gpu: GpuStatus | { state: 'probing' };
  selfTest: SelfTestResult | { error: string } | null;
  setGpu(status: GpuStatus): void;
  setSelfTest(result: SelfTestResult | { error: string }): void;
}

export interface GenerationState {
  modelId: string;
  running: boolean;
  prompt: string;
  /** Generated text so far (streams in). */
  output: string;
  /**
   * The generated token ids so far, in order (the engine's 'token' events): id-only models show
   * these by their labels, not the engine's text. Append-only: each token makes a new
   * GenerationState around the same array (copying it per token would be quadratic).
   */
  ids: number[];
  tokens: number;
  tokensPerSecond: number;
  stopReason?: string;
  error?: string;
}

export interface EngineSlice {
  /** Load state of each model the user asked to load (one is on the GPU at a time). */
  loads: Record<string, ModelLoad>;
  setLoad(modelId: string, load: ModelLoad | null): void;
  generation: GenerationState | null;
  startGeneration(modelId: string, prompt: string): void;
  /** One streamed piece: `id` −1 for text that is no token (a decoder's tail), `tokensPerSecond` null then. */
  appendGenerated(modelId: string, text: string, tokensPerSecond: number | null, id?: number): void;
  finishGeneration(patch: Partial<GenerationState>): void;
  /** A suggested prompt the user picked (a chip): the generate and trace boxes take its text. `seq` tells picks apart. */
  promptSuggestion: { modelId: string; text: string; seq: number } | null;
  suggestPrompt(modelId: string, text: string): void;
}

export interface ModelsSlice {
  models: ModelEntry[];
  selectedModelId: string | null;
  modelsLoading: boolean;
  setModels(models: ModelEntry[]): void;
  selectModel(id: string | null): void;
  setModelsLoading(loading: boolean): void;
}

export interface UiSlice {
  appInfo: AppInfo | null;
  sidebarOpen: boolean;
  notices: Notice[];
  setAppInfo(info: AppInfo): void;
  toggleSidebar(): void;
  /** A notice; `context` (a model id) ties it to that model: selecting another one drops it. */
  notify(kind: NoticeKind, text: string, context?: string | null): void;
  dismiss(id: number): void;
  /** Drops the info notices whose time is up (the Notices component calls it when the next one is due). */
  expireNotices(now?: number): void;
}

/** A finished trace on screen. */
export type DoneTraceRun = { state: 'done'; modelId: string; result: TraceResult; /** Streamed with a generation (grows while it runs). */ live?: boolean; /** What was traced (the safetensors export's metadata). */ prompt?: { text: string } | { ids: number[] }; /** Read from a trace or session file (read-only: the engine does not hold it). */ opened?: OpenedFrom };

/**
 * A trace run (the selection panels' data) and what the panels show of it. While a new trace runs
 * (or after it failed), `previous` is the last finished one of the same model: the panels keep
 * showing it, dimmed, until the new one replaces it (or again, when the run is cancelled).
 */
export type TraceRun =
  | { state: 'running'; modelId: string; /** The engine request's id (its progress events and `cancel` name it). */ requestId?: number; progress?: { done: number; total: number }; previous?: DoneTraceRun }
  | DoneTraceRun
  | { state: 'failed'; modelId: string; message: string; previous?: DoneTraceRun };

/** The finished trace the panels show for `run` (itself, or the previous one while a new one runs or after it failed) and whether it is stale. */
export function traceOnScreen(run: TraceRun | null): { run: DoneTraceRun; stale: boolean } | null {
  if (!run) return null;
  if (run.state === 'done') return { run, stale: false };
  return run.previous ? { run: run.previous, stale: true } : null;
}

/** The finished trace of the same model that a new run (running or failed) of `modelId` keeps on screen. */
function previousOf(current: TraceRun | null, modelId: string): DoneTraceRun | undefined {
  const shown = traceOnScreen(current)?.run;
  return shown && shown.modelId === modelId ? shown : undefined;
}

/** Progress of one long engine request (its 'work-progress' events), by request id. */
export type WorkProgressState = Omit<Extract<EngineEvent, { kind: 'work-progress' }>, 'kind'>;

export type TraceScoreMode = 'norm' | 'focus';

/** Where an opened trace came from: its file, and the model it names (a session's reference, or the trace's model id). */
export interface OpenedFrom {
  file: string;
  model: SessionModelRef | null;
}

export interface TraceSlice {
  trace: TraceRun | null;
  /** Index into the trace's `layers` of the layer the panels show. */
  traceLayer: number;
  /** The token hovered in the strip or the heatmap (linked highlighting), or null. */
  traceHoverToken: number | null;
  /** The strip's score: ‖Δ_t‖ or mean Δ over the model's focus channels; null until the user picks one (the panels then use the focus channels when the model's studio.json names them). */
  traceScoreMode: TraceScoreMode | null;
  /** The token whose retention the memory panel shows (clicked in the strip or typed), or null. */
  traceMemoryToken: number | null;
  setTrace(run: TraceRun | null): void;
  /** Rows of a trace streaming with a generation (the engine's 'trace-rows' events): from row 0 a new trace, else appended. */
  appendTraceRows(modelId: string, rows: TraceRows): void;
  /** Progress of the running long requests (the engine's 'work-progress' events), by request id. */
  workProgress: Record<number, WorkProgressState>;
  /** A 'work-progress' event: kept by request id, and the running trace's progress when it is that request. */
  setWorkProgress(progress: WorkProgressState): void;
  /** A long request ended (done, failed or cancelled): its progress is dropped. */
  endWork(requestId: number): void;
  /** The running trace was cancelled: the previous trace (if any) is back, as it was. */
  cancelTrace(modelId: string): void;
  setTraceLayer(index: number): void;
  setTraceHoverToken(token: number | null): void;
  setTraceScoreMode(mode: TraceScoreMode): void;
  setTraceMemoryToken(token: number | null): void;
  /** The strip's thresholds as the user moved them, for the layer and score named by `key` (else the terciles); a new trace starts over. */
  traceThresholds: { key: string; low: number; high: number } | null;
  setTraceThresholds(thresholds: { key: string; low: number; high: number } | null): void;
  /** The Δ and B/C heatmaps' zoom and pan, with the counts they were made for (null: the full view); saved in sessions. */
  traceViews: { delta: SessionHeatmapView | null; bc: SessionHeatmapView | null };
  setTraceView(key: 'delta' | 'bc', view: SessionHeatmapView | null): void;
  /** What the trace and generate boxes hold (null: untouched, the box shows its default); saved in sessions. */
  promptDrafts: PromptDrafts;
  setPromptDraft(box: 'trace' | 'generate', text: string | null): void;
  /** The drafts of the models not selected now, by model id (selecting a model brings its own back). */
  draftsByModel: Record<string, PromptDrafts>;
  /** The last token attribution, with the trace it is of and its target's name: the token strip shows its bars while that trace is on screen. */
  attribution: { trace: TraceResult; result: AttributionResult; targetName: string } | null;
  setAttribution(attribution: { trace: TraceResult; result: AttributionResult; targetName: string } | null): void;
  /** The Compare panel's last pair: A's and B's traces and B's prompt (the patching panel takes them as clean and corrupted). */
  comparePair: ComparePair | null;
  setComparePair(pair: ComparePair | null): void;
}

export interface ComparePair {
  a: TraceResult;
  b: TraceResult;
  /** Prompt B as it was traced (text, or ids for a model without a tokenizer). */
  promptB: TraceParams['prompt'];
}

export interface PromptDrafts {
  trace: string | null;
  generate: string | null;
}
const NO_DRAFTS: PromptDrafts = { trace: null, generate: null };

export type StudioState = GpuSlice & EngineSlice & ModelsSlice & UiSlice & TraceSlice & LayoutSlice;

const traceSlice: StateCreator<StudioState, [], [], TraceSlice> = (set) => ({
  trace: null,
  traceLayer: 0,
  traceHoverToken: null,
  traceScoreMode: null,
  traceMemoryToken: null,
  workProgress: {},
  setTrace: (run) =>
    set((s) => {
      // A new run (or its failure) keeps the finished trace on screen until a new one replaces it.
      const previous = run && run.state !== 'done' && !run.previous ? previousOf(s.trace, run.modelId) : undefined;
      const trace = run && previous ? { ...run, previous } : run;
      // A new finished trace (or none) starts with the default thresholds; a running or failed one keeps the shown trace's.
      return { trace, traceHoverToken: traceOnScreen(trace) ? s.traceHoverToken : null, ...(!trace || trace.state === 'done' ? { traceThresholds: null } : {}) };
    }),
  appendTraceRows: (modelId, rows) =>
    set((s) => {
      const current = s.trace?.state === 'done' && s.trace.modelId === modelId ? s.trace.result : null;
      return { trace: { state: 'done', modelId, result: appendTraceRows(current, rows), live: true } };
    }),
  setWorkProgress: (progress) =>
    set((s) => {
      const { requestId, done, total } = progress;
      const trace = s.trace?.state === 'running' && s.trace.requestId === requestId ? { trace: { ...s.trace, progress: { done, total } } } : {};
      return { workProgress: { ...s.workProgress, [requestId]: progress }, ...trace };
    }),
  endWork: (requestId) =>
    set((s) => {
      if (!(requestId in s.workProgress)) return {};
      const { [requestId]: _ended, ...rest } = s.workProgress;
      return { workProgress: rest };
    }),
  cancelTrace: (modelId) => set((s) => (s.trace?.state === 'running' && s.trace.modelId === modelId ? { trace: s.trace.previous ?? null } : {})),
  setTraceLayer: (traceLayer) => set({ traceLayer }),
  setTraceHoverToken: (traceHoverToken) => set({ traceHoverToken }),
  setTraceScoreMode: (traceScoreMode) => set({ traceScoreMode }),
  setTraceMemoryToken: (traceMemoryToken) => set({ traceMemoryToken }),
  traceThresholds: null,
  setTraceThresholds: (traceThresholds) => set({ traceThresholds }),
  traceViews: { delta: null, bc: null },
  setTraceView: (key, view) => set((s) => ({ traceViews: { ...s.traceViews, [key]: view } })),
  promptDrafts: NO_DRAFTS,
  draftsByModel: {},
  setPromptDraft: (box, text) => set((s) => ({ promptDrafts: { ...s.promptDrafts, [box]: text } })),
  attribution: null,
  setAttribution: (attribution) => set({ attribution }),
  comparePair: null,
  setComparePair: (comparePair) => set({ comparePair }),
});

/** The workspace's panel sizes, collapsed state and tiling, remembered in localStorage (panels/layout.ts). */
export interface LayoutSlice {
  panelLayout: PanelLayout;
  setPanelHeight(id: string, height: number | null): void;
  setPanelCollapsed(id: string, collapsed: boolean): void;
  setPanelTiling(tiling: Tiling): void;
  /** Every panel back at its natural height, expanded, in the default tiling. */
  resetPanelLayout(): void;
}

const layoutSlice: StateCreator<StudioState, [], [], LayoutSlice> = (set, get) => {
  const commit = (panelLayout: PanelLayout) => {
    set({ panelLayout });
    saveLayout(browserStorage(), panelLayout);
  };
  return {
    panelLayout: loadLayout(browserStorage()),
    setPanelHeight: (id, height) => commit(height === null ? resetPanelHeight(get().panelLayout, id) : resizePanel(get().panelLayout, id, height)),
    setPanelCollapsed: (id, collapsed) => commit(setPanelCollapsed(get().panelLayout, id, collapsed)),
    setPanelTiling: (tiling) => commit(withTiling(get().panelLayout, tiling)),
    resetPanelLayout: () => commit(defaultLayout()),
  };
};

const engineSlice: StateCreator<StudioState, [], [], EngineSlice> = (set) => ({
  loads: {},
  setLoad: (modelId, load) =>
    set((s) => {
      const loads = { ...s.loads };
      if (load?.state === 'loaded') {
        // The engine keeps one model on the GPU: the others are no longer loaded.
        for (const [id, l] of Object.entries(loads)) if (l.state === 'loaded') delete loads[id];
      }
      if (load) loads[modelId] = load;
      else delete loads[modelId];
      return { loads };
    }),
  generation: null,
  startGeneration: (modelId, prompt) => set({ generation: { modelId, running: true, prompt, output: '', ids: [], tokens: 0, tokensPerSecond: 0 } }),
  appendGenerated: (modelId, text, tokensPerSecond, id = -1) =>
    set((s) => {
      const g = s.generation;
      if (!g || g.modelId !== modelId) return {};
      if (id >= 0) g.ids.push(id);
      return {
        generation: {
          ...g,
          output: g.output + text,
          tokens: g.tokens + (tokensPerSecond === null ? 0 : 1),
          tokensPerSecond: tokensPerSecond ?? g.tokensPerSecond,
        },
      };
    }),
  finishGeneration: (patch) => set((s) => (s.generation ? { generation: { ...s.generation, running: false, ...patch } } : {})),
  promptSuggestion: null,
  suggestPrompt: (modelId, text) => set((s) => ({ promptSuggestion: { modelId, text, seq: (s.promptSuggestion?.seq ?? 0) + 1 } })),
});

const gpuSlice: StateCreator<StudioState, [], [], GpuSlice> = (set) => ({
  gpu: { state: 'probing' },
  selfTest: null,
  setGpu: (gpu) => set({ gpu }),
  setSelfTest: (selfTest) => set({ selfTest }),
});

const modelsSlice: StateCreator<StudioState, [], [], ModelsSlice> = (set, get) => ({
  models: [],
  selectedModelId: null,
  modelsLoading: true,
  setModels: (models) => {
    const selected = get().selectedModelId;
    set({ models, modelsLoading: false });
    get().selectModel(selected && models.some((m) => m.id === selected) ? selected : (models[0]?.id ?? null));
  },
  selectModel: (selectedModelId) =>
    set((s) => {
      const notices = enterContext(s.notices, selectedModelId);
      if (selectedModelId === s.selectedModelId) return { selectedModelId, notices };
      // Each model keeps its own trace and generate boxes: the one left is stashed, the one selected comes back.
      const draftsByModel = s.selectedModelId === null ? s.draftsByModel : { ...s.draftsByModel, [s.selectedModelId]: s.promptDrafts };
      return { selectedModelId, notices, draftsByModel, promptDrafts: (selectedModelId !== null ? draftsByModel[selectedModelId] : undefined) ?? NO_DRAFTS };
    }),
  setModelsLoading: (modelsLoading) => set({ modelsLoading }),
});

let noticeId = 1;
const uiSlice: StateCreator<StudioState, [], [], UiSlice> = (set) => ({
  appInfo: null,
  sidebarOpen: true,
  notices: [],
  setAppInfo: (appInfo) => set({ appInfo }),
  toggleSidebar: () => set((s) => ({ sidebarOpen: !s.sidebarOpen })),
  notify: (kind, text, context = null) => set((s) => ({ notices: addNotice(s.notices, { kind, text, context }, Date.now(), noticeId++) })),
  dismiss: (id) => set((s) => ({ notices: dismissNotice(s.notices, id) })),
  expireNotices: (now = Date.now()) => set((s) => ({ notices: expireNotices(s.notices, now) })),
});

export const createStudioStore = () =>
  create<StudioState>()((...a) => ({ ...gpuSlice(...a), ...engineSlice(...a), ...modelsSlice(...a), ...uiSlice(...a), ...traceSlice(...a), ...layoutSlice(...a) }));

export const useStudio = createStudioStore();

// Selectors: defined once, outside components.
export const selectGpu = (s: StudioState) => s.gpu;
export const selectSelfTest = (s: StudioState) => s.selfTest;
export const selectModels = (s: StudioState) => s.models;
export const selectModelsLoading = (s: StudioState) => s.modelsLoading;
export const selectSelectedModel = (s: StudioState) => s.models.find((m) => m.id === s.selectedModelId) ?? null;
export const selectSelectedModelId = (s: StudioState) => s.selectedModelId;
export const selectSidebarOpen = (s: StudioState) => s.sidebarOpen;
export const selectNotices = (s: StudioState) => s.notices;
export const selectAppInfo = (s: StudioState) => s.appInfo;
export const selectGeneration = (s: StudioState) => s.generation;
export const selectPromptSuggestion = (s: StudioState) => s.promptSuggestion;
export const selectSelectedLoad = (s: StudioState) => (s.selectedModelId ? s.loads[s.selectedModelId] : undefined);
/** The model on the GPU (returns the stored object itself: a new object per call would re-render forever). */
export const selectLoadedModel = (s: StudioState): LoadedModelInfo | null => {
  for (const l of Object.values(s.loads)) if (l.state === 'loaded') return l.info;
  return null;
};
export const selectTrace = (s: StudioState) => s.trace;
export const selectTraceLayer = (s: StudioState) => s.traceLayer;
export const selectTraceHoverToken = (s: StudioState) => s.traceHoverToken;
export const selectTraceScoreMode = (s: StudioState) => s.traceScoreMode;
export const selectTraceMemoryToken = (s: StudioState) => s.traceMemoryToken;
export const selectWorkProgress = (s: StudioState) => s.workProgress;
export const selectPanelLayout = (s: StudioState) => s.panelLayout;
export const selectTraceThresholds = (s: StudioState) => s.traceThresholds;
export const selectTraceViews = (s: StudioState) => s.traceViews;
export const selectAttribution = (s: StudioState) => s.attribution;
export const selectComparePair = (s: StudioState) => s.comparePair;
export const selectTraceDraft = (s: StudioState) => s.promptDrafts.trace;
export const selectGenerateDraft = (s: StudioState) => s.promptDrafts.generate;
