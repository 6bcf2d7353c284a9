/**
 * One zustand store of typed slices. Components read through the selectors below (defined once,
 * outside components) so each re-renders only when its slice changes.
 */
import { create, type StateCreator } from 'zustand';
import type { AppInfo, ModelEntry } from '../../app/contract';
import type { GpuStatus, LoadedModelInfo, LoadProgress, SelfTestResult, TraceResult, TraceRows } from '../../app/engine/protocol';
import { appendTraceRows } from '../../app/analysis/trace-rows';
import type { SessionModelRef } from '../../app/analysis/session';
import { browserStorage, loadLayout, resetPanelHeight, resizePanel, saveLayout, setPanelCollapsed, type PanelLayout } from './panels/layout';

export type ModelLoad =
  | { state: 'loading'; progress: LoadProgress | null }
  | { state: 'loaded'; info: LoadedModelInfo }
  | { state: 'failed'; message: string };

export type Notice = { id: number; kind: 'error' | 'info'; text: string };

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
  appendGenerated(modelId: string, text: string, tokensPerSecond: number | null): void;
  finishGeneration(patch: Partial<GenerationState>): void;
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
  notify(kind: Notice['kind'], text: string): void;
  dismiss(id: number): void;
}

/** A trace run (the selection panels' data) and what the panels show of it. */
export type TraceRun =
  | { state: 'running'; modelId: string; progress?: { done: number; total: number } }
  | { state: 'done'; modelId: string; result: TraceResult; /** Streamed with a generation (grows while it runs). */ live?: boolean; /** What was traced (the safetensors export's metadata). */ prompt?: { text: string } | { ids: number[] }; /** Read from a trace or session file (read-only: the engine does not hold it). */ opened?: OpenedFrom }
  | { state: 'failed'; modelId: string; message: string };

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
  /** Tokens prefilled so far by the running trace (the engine's 'trace-progress' events). */
  setTraceProgress(modelId: string, done: number, total: number): void;
  setTraceLayer(index: number): void;
  setTraceHoverToken(token: number | null): void;
  setTraceScoreMode(mode: TraceScoreMode): void;
  setTraceMemoryToken(token: number | null): void;
  /** The strip's thresholds as the user moved them, for the layer and score named by `key` (else the terciles); a new trace starts over. */
  traceThresholds: { key: string; low: number; high: number } | null;
  setTraceThresholds(thresholds: { key: string; low: number; high: number } | null): void;
  /** What the trace and generate boxes hold (null: untouched, the box shows its default); saved in sessions. */
  promptDrafts: { trace: string | null; generate: string | null };
  setPromptDraft(box: 'trace' | 'generate', text: string | null): void;
}

export type StudioState = GpuSlice & EngineSlice & ModelsSlice & UiSlice & TraceSlice & LayoutSlice;

const traceSlice: StateCreator<StudioState, [], [], TraceSlice> = (set) => ({
  trace: null,
  traceLayer: 0,
  traceHoverToken: null,
  traceScoreMode: null,
  traceMemoryToken: null,
  setTrace: (trace) => set((s) => ({ trace, traceHoverToken: trace?.state === 'done' ? s.traceHoverToken : null, traceThresholds: null })),
  appendTraceRows: (modelId, rows) =>
    set((s) => {
      const current = s.trace?.state === 'done' && s.trace.modelId === modelId ? s.trace.result : null;
      return { trace: { state: 'done', modelId, result: appendTraceRows(current, rows), live: true } };
    }),
  setTraceProgress: (modelId, done, total) =>
    set((s) => (s.trace?.state === 'running' && s.trace.modelId === modelId ? { trace: { ...s.trace, progress: { done, total } } } : {})),
  setTraceLayer: (traceLayer) => set({ traceLayer }),
  setTraceHoverToken: (traceHoverToken) => set({ traceHoverToken }),
  setTraceScoreMode: (traceScoreMode) => set({ traceScoreMode }),
  setTraceMemoryToken: (traceMemoryToken) => set({ traceMemoryToken }),
  traceThresholds: null,
  setTraceThresholds: (traceThresholds) => set({ traceThresholds }),
  promptDrafts: { trace: null, generate: null },
  setPromptDraft: (box, text) => set((s) => ({ promptDrafts: { ...s.promptDrafts, [box]: text } })),
});

/** The selection panels' sizes and collapsed state, remembered in localStorage (panels/layout.ts). */
export interface LayoutSlice {
  panelLayout: PanelLayout;
  setPanelHeight(id: string, height: number | null): void;
  setPanelCollapsed(id: string, collapsed: boolean): void;
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
  startGeneration: (modelId, prompt) => set({ generation: { modelId, running: true, prompt, output: '', tokens: 0, tokensPerSecond: 0 } }),
  appendGenerated: (modelId, text, tokensPerSecond) =>
    set((s) => {
      const g = s.generation;
      if (!g || g.modelId !== modelId) return {};
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
    set({
      models,
      modelsLoading: false,
      selectedModelId: selected && models.some((m) => m.id === selected) ? selected : (models[0]?.id ?? null),
    });
  },
  selectModel: (selectedModelId) => set({ selectedModelId }),
  setModelsLoading: (modelsLoading) => set({ modelsLoading }),
});

let noticeId = 1;
const uiSlice: StateCreator<StudioState, [], [], UiSlice> = (set) => ({
  appInfo: null,
  sidebarOpen: true,
  notices: [],
  setAppInfo: (appInfo) => set({ appInfo }),
  toggleSidebar: () => set((s) => ({ sidebarOpen: !s.sidebarOpen })),
  notify: (kind, text) => set((s) => ({ notices: [...s.notices.slice(-4), { id: noticeId++, kind, text }] })),
  dismiss: (id) => set((s) => ({ notices: s.notices.filter((n) => n.id !== id) })),
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
export const selectPanelLayout = (s: StudioState) => s.panelLayout;
export const selectTraceThresholds = (s: StudioState) => s.traceThresholds;
export const selectTraceDraft = (s: StudioState) => s.promptDrafts.trace;
export const selectGenerateDraft = (s: StudioState) => s.promptDrafts.generate;
