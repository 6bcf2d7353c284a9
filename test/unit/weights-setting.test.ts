import { describe, expect, it } from 'vitest';
import { loadPrefillChoice, loadWeightChoice, PREFILL_STORAGE_KEY, savePrefillChoice, saveWeightChoice, WEIGHTS_STORAGE_KEY } from '../../renderer/src/weights-setting';

/** A Storage stand-in (Node has no localStorage). */
function memoryStorage(initial: Record<string, string> = {}, refuse = false) {
  const items = new Map(Object.entries(initial));
  return {
    getItem: (key: string) => items.get(key) ?? null,
    setItem: (key: string, value: string) => {
      if (refuse) throw new Error('QuotaExceededError');
      items.set(key, value);
    },
    items,
  };
}

describe('the GPU weights setting is remembered', () => {
  it('what was saved is what loads next time, for each choice', () => {
    for (const choice of ['f32', 'f16', 'auto'] as const) {
      const storage = memoryStorage();
      expect(saveWeightChoice(storage, choice)).toBe(true);
      expect(storage.items.get(WEIGHTS_STORAGE_KEY)).toBe(choice);
      expect(loadWeightChoice(storage)).toBe(choice);
    }
  });

  it("nothing stored, garbage, a format the setting does not offer, or no storage at all: 'auto'", () => {
    expect(loadWeightChoice(memoryStorage())).toBe('auto');
    expect(loadWeightChoice(memoryStorage({ [WEIGHTS_STORAGE_KEY]: '{"not":"a choice"}' }))).toBe('auto');
    expect(loadWeightChoice(memoryStorage({ [WEIGHTS_STORAGE_KEY]: 'q4_k' }))).toBe('auto');
    expect(loadWeightChoice(null)).toBe('auto');
    expect(loadWeightChoice({ getItem: () => { throw new Error('SecurityError'); } })).toBe('auto');
  });

  it('a storage that refuses (full, private mode) is reported, not thrown', () => {
    expect(saveWeightChoice(memoryStorage({}, true), 'f16')).toBe(false);
    expect(saveWeightChoice(null, 'f16')).toBe(false);
  });
});

describe('the prefill setting is remembered', () => {
  it("what was saved loads next time; anything else, or no storage, is 'fp32'", () => {
    for (const choice of ['int8', 'fp32'] as const) {
      const storage = memoryStorage();
      expect(savePrefillChoice(storage, choice)).toBe(true);
      expect(storage.items.get(PREFILL_STORAGE_KEY)).toBe(choice);
      expect(loadPrefillChoice(storage)).toBe(choice);
    }
    expect(loadPrefillChoice(memoryStorage())).toBe('fp32');
    expect(loadPrefillChoice(memoryStorage({ [PREFILL_STORAGE_KEY]: 'int4' }))).toBe('fp32');
    expect(loadPrefillChoice(memoryStorage({ [WEIGHTS_STORAGE_KEY]: 'int8' }))).toBe('fp32');
    expect(loadPrefillChoice(null)).toBe('fp32');
    expect(savePrefillChoice(memoryStorage({}, true), 'int8')).toBe(false);
  });
});
