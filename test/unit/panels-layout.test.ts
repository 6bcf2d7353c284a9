/**
 * The panels' remembered layout (renderer/src/panels/layout.ts): parsing what localStorage gives
 * back (garbage → defaults, bad entries dropped, heights clamped), resizing, collapsing, the
 * handle's keys, and load / save through a storage that may throw.
 */
import { describe, expect, it } from 'vitest';
import {
  LAYOUT_STORAGE_KEY,
  PANEL_KEY_STEP,
  PANEL_MAX_HEIGHT,
  PANEL_MIN_HEIGHT,
  defaultLayout,
  keyResize,
  loadLayout,
  panelState,
  parseLayout,
  resetPanelHeight,
  resizePanel,
  saveLayout,
  serializeLayout,
  setPanelCollapsed,
} from '../../renderer/src/panels/layout';
import { createStudioStore } from '../../renderer/src/store';

/** An in-memory Storage (Node has no localStorage). */
function memoryStorage(): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get length() {
      return data.size;
    },
    clear: () => data.clear(),
    getItem: (k) => data.get(k) ?? null,
    key: (i) => [...data.keys()][i] ?? null,
    removeItem: (k) => void data.delete(k),
    setItem: (k, v) => void data.set(k, String(v)),
  };
}

describe('panel layout', () => {
  it('round-trips through its serialized form', () => {
    let layout = defaultLayout();
    layout = resizePanel(layout, 'delta', 420);
    layout = setPanelCollapsed(layout, 'memory', true);
    layout = resizePanel(layout, 'bc', 333.6);
    expect(parseLayout(serializeLayout(layout))).toEqual(layout);
    expect(panelState(layout, 'delta')).toEqual({ height: 420, collapsed: false });
    expect(panelState(layout, 'memory')).toEqual({ height: null, collapsed: true });
    expect(panelState(layout, 'bc').height).toBe(334);
    expect(panelState(layout, 'tokens')).toEqual({ height: null, collapsed: false });
    expect(panelState(resetPanelHeight(layout, 'delta'), 'delta')).toEqual({ height: null, collapsed: false });
  });

  it('gives the defaults for anything that is not a stored layout', () => {
    for (const text of [null, undefined, '', 'not json', '{', '[]', '42', 'null', '"x"', '{"version":2,"panels":{}}', '{"version":1}', '{"version":1,"panels":[]}', '{"version":"1","panels":{}}']) {
      expect(parseLayout(text), String(text)).toEqual(defaultLayout());
    }
  });

  it('keeps valid entries, drops invalid ones and clamps heights', () => {
    const text = JSON.stringify({
      version: 1,
      panels: {
        delta: { height: 500, collapsed: false },
        bc: { height: 1e9, collapsed: true },
        memory: { height: -5, collapsed: false },
        tokens: { height: null, collapsed: true },
        bad1: { height: 'tall', collapsed: false },
        bad2: { height: 100 },
        bad3: { height: 100, collapsed: 'yes' },
        bad4: [100, false],
        bad5: null,
        'Not A Slug!': { height: 100, collapsed: false },
        __proto__x: { height: 100, collapsed: false },
      },
    });
    const layout = parseLayout(text);
    expect(Object.keys(layout.panels).sort()).toEqual(['bc', 'delta', 'memory', 'tokens']);
    expect(layout.panels.delta).toEqual({ height: 500, collapsed: false });
    expect(layout.panels.bc).toEqual({ height: PANEL_MAX_HEIGHT, collapsed: true });
    expect(layout.panels.memory).toEqual({ height: PANEL_MIN_HEIGHT, collapsed: false });
    expect(layout.panels.tokens).toEqual({ height: null, collapsed: true });
    // NaN / Infinity do not survive JSON; a non-finite resize leaves the layout as it was.
    expect(resizePanel(layout, 'delta', NaN)).toBe(layout);
    expect(() => resizePanel(layout, 'Bad Id', 100)).toThrow(RangeError);
  });

  it('resizes with the handle keys within the allowed range', () => {
    expect(keyResize(300, 'ArrowDown', false)).toBe(300 + PANEL_KEY_STEP);
    expect(keyResize(300, 'ArrowUp', false)).toBe(300 - PANEL_KEY_STEP);
    expect(keyResize(300, 'ArrowDown', true)).toBe(300 + 4 * PANEL_KEY_STEP);
    expect(keyResize(300, 'PageUp', false)).toBe(300 - 10 * PANEL_KEY_STEP);
    expect(keyResize(300, 'Home', false)).toBe(PANEL_MIN_HEIGHT);
    expect(keyResize(300, 'End', false)).toBe(PANEL_MAX_HEIGHT);
    expect(keyResize(PANEL_MIN_HEIGHT + 3, 'ArrowUp', false)).toBe(PANEL_MIN_HEIGHT);
    expect(keyResize(300, 'a', false)).toBeNull();
    expect(keyResize(300, 'ArrowLeft', false)).toBeNull();
  });

  it('loads and saves through a storage, surviving one that throws or holds garbage', () => {
    const storage = memoryStorage();
    expect(loadLayout(storage)).toEqual(defaultLayout());
    const layout = setPanelCollapsed(resizePanel(defaultLayout(), 'delta', 480), 'bc', true);
    expect(saveLayout(storage, layout)).toBe(true);
    expect(JSON.parse(storage.data.get(LAYOUT_STORAGE_KEY)!)).toEqual(layout);
    expect(loadLayout(storage)).toEqual(layout);
    storage.setItem(LAYOUT_STORAGE_KEY, '{"version":1,"panels":{"delta":');
    expect(loadLayout(storage)).toEqual(defaultLayout());
    const throwing = { getItem: () => { throw new Error('SecurityError'); }, setItem: () => { throw new Error('QuotaExceededError'); } };
    expect(loadLayout(throwing)).toEqual(defaultLayout());
    expect(saveLayout(throwing, layout)).toBe(false);
    expect(loadLayout(null)).toEqual(defaultLayout());
    expect(saveLayout(null, layout)).toBe(false);
  });

  it('is a store slice whose changes are stored (and read back by a new store)', () => {
    const storage = memoryStorage();
    const previous = Object.getOwnPropertyDescriptor(globalThis, 'localStorage');
    Object.defineProperty(globalThis, 'localStorage', { value: storage, configurable: true });
    try {
      const store = createStudioStore();
      expect(store.getState().panelLayout).toEqual(defaultLayout());
      store.getState().setPanelHeight('delta', 512);
      store.getState().setPanelCollapsed('memory', true);
      expect(parseLayout(storage.getItem(LAYOUT_STORAGE_KEY))).toEqual(store.getState().panelLayout);
      const again = createStudioStore();
      expect(panelState(again.getState().panelLayout, 'delta')).toEqual({ height: 512, collapsed: false });
      expect(panelState(again.getState().panelLayout, 'memory')).toEqual({ height: null, collapsed: true });
      again.getState().setPanelHeight('delta', null);
      expect(panelState(createStudioStore().getState().panelLayout, 'delta').height).toBeNull();
    } finally {
      if (previous) Object.defineProperty(globalThis, 'localStorage', previous);
      else delete (globalThis as { localStorage?: Storage }).localStorage;
    }
  });
});
