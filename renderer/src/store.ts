/**
 * One zustand store of typed slices. Components read through the selectors below (defined once,
 * outside components) so each re-renders only when its slice changes.
 */
import { create, type StateCreator } from 'zustand';
import type { AppInfo, ModelEntry } from '../../app/contract';
import type { GpuStatus, SelfTestResult } from '../../app/engine/protocol';

export type Notice = { id: number; kind: 'error' | 'info'; text: string };

export interface GpuSlice {
  gpu: GpuStatus | { state: 'probing' };
  selfTest: SelfTestResult | { error: string } | null;
  setGpu(status: GpuStatus): void;
  setSelfTest(result: SelfTestResult | { error: string }): void;
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

export type StudioState = GpuSlice & ModelsSlice & UiSlice;

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
  create<StudioState>()((...a) => ({ ...gpuSlice(...a), ...modelsSlice(...a), ...uiSlice(...a) }));

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
