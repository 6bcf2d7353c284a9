import { describe, expect, it } from 'vitest';
import type { ModelEntry } from '../../app/contract';
import { createStudioStore, selectSelectedModel } from '../../renderer/src/store';

const model = (id: string): ModelEntry => ({
  id,
  name: id,
  source: 'user',
  format: 'safetensors',
  architecture: 'mamba',
  files: [],
  baseUrl: '',
  sizeBytes: 0,
});

describe('studio store', () => {
  it('keeps each model its own trace and generate boxes: switching models brings the other one back', () => {
    const store = createStudioStore();
    store.getState().setModels([model('a'), model('b')]);
    store.getState().selectModel('a');
    store.getState().setPromptDraft('trace', 'text of a');
    store.getState().setPromptDraft('generate', 'gen a');
    store.getState().selectModel('b');
    // b was never typed in: its boxes show their defaults (null), not a's text.
    expect(store.getState().promptDrafts).toEqual({ trace: null, generate: null });
    store.getState().setPromptDraft('trace', '5, 17, 3');
    store.getState().selectModel('a');
    expect(store.getState().promptDrafts).toEqual({ trace: 'text of a', generate: 'gen a' });
    store.getState().selectModel('a');
    expect(store.getState().promptDrafts).toEqual({ trace: 'text of a', generate: 'gen a' });
    store.getState().selectModel('b');
    expect(store.getState().promptDrafts).toEqual({ trace: '5, 17, 3', generate: null });
  });

  it('selects the first model, keeps a selection that still exists, and drops one that does not', () => {
    const store = createStudioStore();
    store.getState().setModels([model('a'), model('b')]);
    expect(selectSelectedModel(store.getState())?.id).toBe('a');
    store.getState().selectModel('b');
    store.getState().setModels([model('a'), model('b'), model('c')]);
    expect(selectSelectedModel(store.getState())?.id).toBe('b');
    store.getState().setModels([model('c')]);
    expect(selectSelectedModel(store.getState())?.id).toBe('c');
    store.getState().setModels([]);
    expect(selectSelectedModel(store.getState())).toBeNull();
  });

  it('keeps at most five notices and dismisses by id', () => {
    const store = createStudioStore();
    for (let i = 0; i < 7; i++) store.getState().notify('error', `e${i}`);
    expect(store.getState().notices.map((n) => n.text)).toEqual(['e2', 'e3', 'e4', 'e5', 'e6']);
    store.getState().dismiss(store.getState().notices[0]!.id);
    expect(store.getState().notices).toHaveLength(4);
  });
});
