/**
 * The renderer's session logic (renderer/src/session/session-io.ts): what a session saves of the
 * store (the trace's model, both prompt boxes, the view with moved thresholds, tokens clamped to
 * the trace), finding the model a session names (bundled by id; user by path, else by name, size
 * and files), telling a session or trace from a model by its header, and applying an opened
 * session to a fresh store — which then saves back to the same state; the Δ and B/C heatmaps'
 * zoom and pan round-trip, and a garbled or misfitting heatmap view opens as the full view.
 */
import { describe, expect, it } from 'vitest';
import type { ModelEntry } from '../../app/contract';
import type { TraceResult } from '../../app/analysis/types';
import { traceResultToSafetensors } from '../../app/analysis/export';
import { bytesToSession, encodeSession } from '../../app/analysis/session';
import { encodeSafetensors } from '../../app/formats/safetensors-write';
import { createStudioStore } from '../../renderer/src/store';
import { applyOpenedFile, findModel, modelRef, sessionFileKind, sessionFileName, sessionStateOf } from '../../renderer/src/session/session-io';
import { viewsFor } from '../../renderer/src/panels/token-view';
import type { SessionState } from '../../app/analysis/session';

const entry = (over: Partial<ModelEntry>): ModelEntry => ({
  id: 'x',
  name: 'x',
  source: 'user',
  format: 'safetensors',
  architecture: 'mamba',
  files: ['config.json', 'model.safetensors'],
  baseUrl: '',
  sizeBytes: 100,
  ...over,
});
const bundled = entry({ id: 'bundled:selective-copy', name: 'Selective copying', source: 'bundled' });
const user = entry({ id: 'web:3', name: 'my-mamba', sizeBytes: 555 });
const desktop = entry({ id: 'user:abc', name: 'm', path: '/models/m' });

function trace(T: number): TraceResult {
  const f = (n: number) => Float32Array.from({ length: n }, (_, i) => i / 10);
  return {
    traceId: 't', modelId: 'bundled:selective-copy', architecture: 'mamba', ids: Array.from({ length: T }, (_, i) => i), tokens: Array.from({ length: T }, (_, i) => `t${i}`),
    layers: [0, 1], deltaWidth: 3, deltaUnit: 'channel', delta: [f(T * 3), f(T * 3)], deltaNorm: [f(T), f(T)], writeGate: [f(T), f(T)], dState: 2, nGroups: 1,
    B: [f(T * 2), f(T * 2)], C: [f(T * 2), f(T * 2)], A: [f(6), f(6)], aStates: 2, stateNorm: [f(T), f(T)], topNext: { k: 0, ids: new Int32Array(0), probs: new Float32Array(0) },
  };
}

describe('finding a session’s model', () => {
  const models = [bundled, user, desktop];
  it('finds bundled models by id, user models by path or by name, size and files', () => {
    expect(findModel(models, modelRef(bundled))).toBe(bundled);
    expect(findModel(models, { ...modelRef(user), id: 'web:1' })).toBe(user); // web ids change across reloads
    expect(findModel(models, { id: 'user:zzz', name: 'other', source: 'user', path: '/models/m' })).toBe(desktop);
    expect(findModel(models, { ...modelRef(user), sizeBytes: 556 })).toBeNull();
    expect(findModel(models, { ...modelRef(user), files: ['model.gguf'] })).toBeNull();
    expect(findModel(models, { id: 'bundled:gone', name: 'Gone', source: 'bundled' })).toBeNull();
    expect(findModel(models, null)).toBeNull();
  });

  it('names the file after the model, safely', () => {
    expect(sessionFileName(modelRef(bundled))).toBe('Selective_copying.mamba-session');
    expect(sessionFileName({ id: 'a', name: '../../etc', source: 'user' })).toBe('.._.._etc.mamba-session');
    expect(sessionFileName(null)).toBe('untitled.mamba-session');
  });
});

describe('session state and the store', () => {
  it('saves the trace’s model, prompts and view, clamps tokens to the trace, and restores into a fresh store', async () => {
    const store = createStudioStore();
    const s = store.getState();
    s.setModels([bundled, user]);
    s.selectModel(user.id);
    s.setTrace({ state: 'done', modelId: bundled.id, result: trace(6), prompt: { ids: [0, 1, 2, 3, 4, 5] } });
    s.setTraceLayer(1);
    s.setTraceHoverToken(4);
    s.setTraceMemoryToken(99); // outside the trace: not saved
    s.setTraceScoreMode('focus');
    s.setTraceThresholds({ key: '1|score', low: 0.1, high: 0.4 });
    s.setPromptDraft('trace', '0, 1, 2');
    s.setPromptDraft('generate', 'hello');
    const state = sessionStateOf(store.getState());
    expect(state).toEqual({
      model: modelRef(bundled),
      prompts: { trace: '0, 1, 2', generate: 'hello' },
      view: { layer: 1, hoverToken: 4, memoryToken: null, scoreMode: 'focus', thresholds: { key: '1|score', low: 0.1, high: 0.4 } },
    });
    const t = store.getState().trace;
    const bytes = encodeSession(state, t?.state === 'done' ? { result: t.result, prompt: t.prompt! } : null);
    const session = await bytesToSession(bytes, 's.mamba-session');

    const fresh = createStudioStore();
    fresh.getState().setModels([user, bundled]);
    const { model } = applyOpenedFile(fresh.getState(), { kind: 'session', file: 's.mamba-session', session });
    expect(model).toBe(bundled);
    expect(fresh.getState().selectedModelId).toBe(bundled.id);
    const opened = fresh.getState().trace;
    expect(opened?.state === 'done' && opened.opened).toEqual({ file: 's.mamba-session', model: modelRef(bundled) });
    expect(sessionStateOf(fresh.getState())).toEqual(state);
  });

  it('a session without a trace saves and restores the prompts and the selected model', async () => {
    const store = createStudioStore();
    store.getState().setModels([bundled, user]);
    store.getState().selectModel(user.id);
    store.getState().setPromptDraft('generate', 'x');
    const state = sessionStateOf(store.getState());
    expect(state.model).toEqual(modelRef(user));
    const session = await bytesToSession(encodeSession(state, null));
    const fresh = createStudioStore();
    fresh.getState().setModels([bundled, { ...user, id: 'web:9' }]);
    applyOpenedFile(fresh.getState(), { kind: 'session', file: 'a', session });
    expect(fresh.getState().selectedModelId).toBe('web:9');
    expect(fresh.getState().promptDrafts).toEqual({ trace: null, generate: 'x' });
    expect(fresh.getState().trace).toBeNull();
  });
});

describe('heatmap zoom in sessions', () => {
  const saveWith = (views: (s: ReturnType<ReturnType<typeof createStudioStore>['getState']>) => void) => {
    const store = createStudioStore();
    store.getState().setModels([bundled]);
    store.getState().setTrace({ state: 'done', modelId: bundled.id, result: trace(6), prompt: { ids: [0, 1, 2, 3, 4, 5] } });
    views(store.getState());
    return store;
  };
  const encode = (state: SessionState) => encodeSession(state, { result: trace(6), prompt: { ids: [0, 1, 2, 3, 4, 5] } });

  it('saves the Δ and B/C views when zoomed and restores them into a fresh store', async () => {
    const delta = { tokens: 6, channels: 3, x: { start: 1, count: 2.5 }, y: { start: 1, count: 2 } };
    const bc = { tokens: 6, channels: 2, x: { start: 2, count: 4 }, y: { start: 1, count: 1 } };
    const store = saveWith((s) => {
      s.setTraceView('delta', delta);
      s.setTraceView('bc', bc);
    });
    const state = sessionStateOf(store.getState());
    expect(state.view.heatmaps).toEqual({ delta, bc });
    const session = await bytesToSession(encode(state), 'z.mamba-session');
    expect(session.view.heatmaps).toEqual({ delta, bc });
    const fresh = createStudioStore();
    fresh.getState().setModels([bundled]);
    applyOpenedFile(fresh.getState(), { kind: 'session', file: 'z.mamba-session', session });
    expect(fresh.getState().traceViews).toEqual({ delta, bc });
    // What the Δ heatmap (6 tokens × 3 channels) then shows: the zoomed view, not the whole trace.
    expect(viewsFor(fresh.getState().traceViews.delta, 6, 3)).toEqual({ view: { start: 1, count: 2.5 }, channelView: { start: 1, count: 2 } });
    expect(sessionStateOf(fresh.getState())).toEqual(state);
  });

  it('a garbled or misfitting heatmap view opens as the full view, never refuses the session', async () => {
    const base = sessionStateOf(saveWith(() => undefined).getState());
    const garbled: unknown[] = [
      'garbage',
      42,
      null,
      { delta: 'x', bc: [1, 2] },
      { delta: { tokens: 6, channels: 3, x: { start: 5, count: 4 }, y: { start: 0, count: 3 } } }, // past the last token
      { delta: { tokens: 7, channels: 3, x: { start: 0, count: 2 }, y: { start: 0, count: 3 } } }, // made for another trace
      { delta: { tokens: 6, channels: 3, x: { start: -1, count: 2 }, y: { start: 0, count: 3 } } },
      { delta: { tokens: 6, channels: 3, x: { start: 0, count: 0 }, y: { start: 0, count: 3 } } },
      { delta: { tokens: 6, channels: 3, x: { start: '0', count: 2 }, y: { start: 0, count: 3 } } },
      { delta: { tokens: 6, channels: 0.5, x: { start: 0, count: 2 }, y: { start: 0, count: 0.25 } } },
      { bc: { tokens: 6, channels: 2, x: { start: 0, count: 2 } } },
    ];
    for (const heatmaps of garbled) {
      const state = { ...base, view: { ...base.view, heatmaps } } as unknown as SessionState;
      const session = await bytesToSession(encode(state), 'g.mamba-session');
      expect(session.view.heatmaps, JSON.stringify(heatmaps)).toBeUndefined();
      // A store that was zoomed before goes back to the full views.
      const fresh = saveWith((s) => s.setTraceView('delta', { tokens: 6, channels: 3, x: { start: 2, count: 2 }, y: { start: 0, count: 1 } }));
      applyOpenedFile(fresh.getState(), { kind: 'session', file: 'g.mamba-session', session });
      expect(fresh.getState().traceViews).toEqual({ delta: null, bc: null });
      expect(viewsFor(fresh.getState().traceViews.delta, 6, 3)).toEqual({ view: { start: 0, count: 6 }, channelView: { start: 0, count: 3 } });
    }
    // One good view among bad ones is kept.
    const mixed = { ...base, view: { ...base.view, heatmaps: { delta: 'x', bc: { tokens: 6, channels: 2, x: { start: 0, count: 3 }, y: { start: 0, count: 2 } } } } } as unknown as SessionState;
    expect((await bytesToSession(encode(mixed))).view.heatmaps).toEqual({ bc: { tokens: 6, channels: 2, x: { start: 0, count: 3 }, y: { start: 0, count: 2 } } });
  });

  it('a view made for another token count is neither shown nor saved', () => {
    const store = saveWith((s) => s.setTraceView('delta', { tokens: 9, channels: 3, x: { start: 2, count: 2 }, y: { start: 0, count: 1 } }));
    expect(sessionStateOf(store.getState()).view.heatmaps).toBeUndefined();
    expect(viewsFor(store.getState().traceViews.delta, 6, 3)).toEqual({ view: { start: 0, count: 6 }, channelView: { start: 0, count: 3 } });
  });
});

describe('telling sessions and traces from models', () => {
  it('reads the header of a single .safetensors; a .mamba-session by its name', async () => {
    const traceFile = new File([traceResultToSafetensors(trace(3), { text: 'a' }) as BlobPart], 'x.safetensors');
    const modelFile = new File([encodeSafetensors({}, { format: 'pt' }) as BlobPart], 'model.safetensors');
    expect(await sessionFileKind([traceFile])).toBe('trace');
    expect(await sessionFileKind([modelFile])).toBeNull();
    expect(await sessionFileKind([new File(['garbage'], 'broken.safetensors')])).toBeNull();
    expect(await sessionFileKind([new File(['x'], 'a.mamba-session')])).toBe('session');
    expect(await sessionFileKind([traceFile, modelFile])).toBeNull();
  });
});
