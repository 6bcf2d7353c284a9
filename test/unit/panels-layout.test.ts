/**
 * The panels' remembered layout (renderer/src/panels/layout.ts): parsing what localStorage gives
 * back (garbage → defaults, bad entries dropped, heights clamped), resizing, collapsing, the
 * handle's keys, load / save through a storage that may throw, and the workspace's tiling
 * (columns, moves, splits, column counts, validation of a stored tiling).
 */
import { describe, expect, it } from 'vitest';
import {
  GENERATE_PANEL,
  LAYOUT_STORAGE_KEY,
  MIN_COLUMN_FRACTION,
  SPLIT_KEY_STEP,
  arrangePanels,
  canMovePanel,
  defaultTiling,
  keySplit,
  moveSplit,
  movePanel,
  normalizeWidths,
  placePanel,
  setColumnCount,
  tilingOf,
  withTiling,
  type Tiling,
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

describe('workspace tiling', () => {
  const ALL = ['generate', 'overview', 'tokens', 'delta', 'bc', 'memory', 'hidden-attention', 'compare', 'knockout', 'receptive-field', 'logit-lens', 'attribution', 'patching', 'steering'];
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

  it('starts with the prompt and generation in the left column, the selection panels beside them', () => {
    const t = defaultTiling();
    expect(t.columns).toHaveLength(2);
    expect(t.columns[0]![0]).toBe(GENERATE_PANEL);
    expect(t.columns[1]).toContain('delta');
    expect(sum(t.widths)).toBeCloseTo(1, 12);
    // Every panel placed exactly once, in every default column count.
    for (const n of [1, 2, 3]) expect([...defaultTiling(n).columns.flat()].sort()).toEqual([...ALL].sort());
    expect(tilingOf(defaultLayout())).toEqual(defaultTiling());
  });

  it('shows only the present panels, and places a panel it does not know in the column holding the fewest', () => {
    const t = defaultTiling(2);
    expect(arrangePanels(t, [GENERATE_PANEL])).toEqual([[GENERATE_PANEL], []]);
    const cols = arrangePanels(t, [...ALL, 'chat']);
    expect(cols.flat().filter((id) => id === 'chat')).toHaveLength(1);
    // 3 and 5 panels: the left column.
    expect(cols[0]!.at(-1)).toBe('chat');
    expect(arrangePanels({ columns: [['a'], ['b', 'c']], widths: [0.5, 0.5] }, ['b', 'c', 'new'])).toEqual([['new'], ['b', 'c']]);
  });

  it('moves a panel up and down past the present panels only, and left / right to the end of the neighbouring column', () => {
    const t: Tiling = { columns: [['generate', 'tokens', 'gone', 'knockout'], ['delta', 'bc']], widths: [0.4, 0.6] };
    const present = ['generate', 'tokens', 'knockout', 'delta', 'bc'];
    // 'gone' is not on screen: one press moves knockout above tokens, past it.
    const up = movePanel(t, 'knockout', 'up', present);
    expect(arrangePanels(up, present)[0]).toEqual(['generate', 'knockout', 'tokens']);
    expect(up.columns[0]).toContain('gone');
    expect(arrangePanels(movePanel(t, 'tokens', 'down', present), present)[0]).toEqual(['generate', 'knockout', 'tokens']);
    const right = movePanel(t, 'tokens', 'right', present);
    expect(arrangePanels(right, present)).toEqual([['generate', 'knockout'], ['delta', 'bc', 'tokens']]);
    expect(right.widths).toEqual([0.4, 0.6]);
    expect(arrangePanels(movePanel(right, 'tokens', 'left', present), present)).toEqual([['generate', 'knockout', 'tokens'], ['delta', 'bc']]);
    // Impossible moves leave the tiling as it was.
    for (const [id, dir] of [['generate', 'up'], ['knockout', 'down'], ['generate', 'left'], ['bc', 'right'], ['nowhere', 'up']] as const) {
      expect(canMovePanel(t, id, dir, present), `${id} ${dir}`).toBe(false);
      expect(movePanel(t, id, dir, present)).toBe(t);
    }
    expect(canMovePanel(t, 'delta', 'left', present)).toBe(true);
    // A panel the tiling did not know is placed first, then moved.
    const known = movePanel(t, 'chat', 'up', [...present, 'chat']);
    expect(known.columns.flat().filter((id) => id === 'chat')).toHaveLength(1);
  });

  it('changes the number of columns without losing a panel', () => {
    const t = defaultTiling(2);
    const one = setColumnCount(t, 1, ALL);
    expect(one.columns).toHaveLength(1);
    expect(one.columns[0]).toEqual([...t.columns[0]!, ...t.columns[1]!]);
    expect(one.widths).toEqual([1]);
    const three = setColumnCount(t, 3, ALL);
    expect(three.columns).toHaveLength(3);
    expect([...three.columns.flat()].sort()).toEqual([...ALL].sort());
    // The new column takes the last panel of the fullest column (the right one: 8 panels, with the long-trace overview, against 6).
    expect(t.columns.map((c) => c.length)).toEqual([6, 8]);
    expect(three.columns[2]).toEqual([t.columns[1]!.at(-1)]);
    expect(sum(three.widths)).toBeCloseTo(1, 12);
    // From one column with a single visible panel: the new columns start empty.
    const lone = setColumnCount({ columns: [['generate']], widths: [1] }, 3, ['generate']);
    expect(lone.columns).toEqual([['generate'], [], []]);
    expect(setColumnCount(t, 2, ALL)).toBe(t);
    expect(setColumnCount(t, 7, ALL).columns).toHaveLength(3);
    expect(setColumnCount(t, 0, ALL).columns).toHaveLength(1);
    expect(setColumnCount(t, NaN, ALL)).toBe(t);
  });

  it('moves a split within the narrowest column width, by mouse deltas and keys', () => {
    const t: Tiling = { columns: [['a'], ['b'], ['c']], widths: [0.3, 0.4, 0.3] };
    const moved = moveSplit(t, 0, 0.05);
    expect(moved.widths[0]).toBeCloseTo(0.35, 12);
    expect(moved.widths[1]).toBeCloseTo(0.35, 12);
    expect(moved.widths[2]).toBe(0.3);
    expect(moveSplit(t, 0, 1).widths[1]).toBeCloseTo(MIN_COLUMN_FRACTION, 12);
    expect(moveSplit(t, 1, -1).widths[1]).toBeCloseTo(MIN_COLUMN_FRACTION, 12);
    expect(moveSplit(t, 2, 0.1)).toBe(t);
    expect(moveSplit(t, 0, NaN)).toBe(t);
    expect(keySplit(t, 0, 'ArrowRight', false)!.widths[0]).toBeCloseTo(0.3 + SPLIT_KEY_STEP, 12);
    expect(keySplit(t, 0, 'ArrowLeft', true)!.widths[0]).toBeCloseTo(0.3 - 4 * SPLIT_KEY_STEP, 12);
    expect(keySplit(t, 0, 'Home', false)!.widths[0]).toBeCloseTo(MIN_COLUMN_FRACTION, 12);
    expect(keySplit(t, 0, 'End', false)!.widths[0]).toBeCloseTo(0.7 - MIN_COLUMN_FRACTION, 12);
    expect(keySplit(t, 0, 'ArrowUp', false)).toBeNull();
    for (const w of [moved, keySplit(t, 1, 'End', true)!].map((x) => x.widths)) expect(sum(w)).toBeCloseTo(1, 12);
  });

  it('normalizes widths: positive, at least the minimum, summing to 1; equal when unusable', () => {
    expect(normalizeWidths([2, 2], 2)).toEqual([0.5, 0.5]);
    expect(normalizeWidths([1, NaN], 2)).toEqual([0.5, 0.5]);
    expect(normalizeWidths([1, 1], 3)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(normalizeWidths([0.5, -1], 2)).toEqual([0.5, 0.5]);
    const w = normalizeWidths([0.98, 0.01, 0.01], 3);
    expect(sum(w)).toBeCloseTo(1, 12);
    for (const x of w) expect(x).toBeGreaterThanOrEqual(MIN_COLUMN_FRACTION - 1e-9);
  });

  it('persists the tiling with the panels, and reads a bad stored tiling as the default one', () => {
    const tiling = moveSplit(movePanel(defaultTiling(), 'tokens', 'left', ALL), 0, 0.1);
    const layout = withTiling(resizePanel(defaultLayout(), 'delta', 300), tiling);
    const back = parseLayout(serializeLayout(layout));
    expect(back.tiling!.columns).toEqual(tiling.columns);
    back.tiling!.widths.forEach((w, i) => expect(w).toBeCloseTo(tiling.widths[i]!, 12));
    expect(back.panels.delta).toEqual({ height: 300, collapsed: false });
    // Still a version-1 layout: one stored before tilings existed reads with the default tiling.
    expect(tilingOf(parseLayout('{"version":1,"panels":{"delta":{"height":200,"collapsed":false}}}'))).toEqual(defaultTiling());
    const bad = (tilingJson: unknown) => parseLayout(JSON.stringify({ version: 1, panels: { bc: { height: null, collapsed: true } }, tiling: tilingJson }));
    for (const t of [null, 5, 'x', [], {}, { columns: [] , widths: [] }, { columns: [['a'], ['b'], ['c'], ['d']], widths: [1, 1, 1, 1] }, { columns: 'a', widths: [1] }, { columns: [['a'], 'b'], widths: [1, 1] }, { columns: [['a']] }]) {
      const l = bad(t);
      expect(l.tiling, JSON.stringify(t)).toBeUndefined();
      expect(tilingOf(l)).toEqual(defaultTiling());
      expect(l.panels.bc).toEqual({ height: null, collapsed: true });
    }
    // Invalid and repeated ids are dropped; widths that do not fit are made equal or brought to the minimum.
    const odd = bad({ columns: [['generate', 'Bad Id', 7, 'tokens'], ['tokens', 'delta', '__proto__']], widths: [5, 'wide'] });
    expect(odd.tiling).toEqual({ columns: [['generate', 'tokens'], ['delta']], widths: [0.5, 0.5] });
    expect(bad({ columns: [['a'], ['b']], widths: [0.99, 0.01] }).tiling!.widths[1]).toBeCloseTo(MIN_COLUMN_FRACTION, 12);
  });

  it('is in the store: the tiling and a reset are stored and read back by a new store', () => {
    const storage = memoryStorage();
    const previous = Object.getOwnPropertyDescriptor(globalThis, 'localStorage');
    Object.defineProperty(globalThis, 'localStorage', { value: storage, configurable: true });
    try {
      const store = createStudioStore();
      const tiling = setColumnCount(defaultTiling(), 3, ALL);
      store.getState().setPanelTiling(tiling);
      store.getState().setPanelHeight('bc', 250);
      expect(tilingOf(createStudioStore().getState().panelLayout)).toEqual(tiling);
      store.getState().resetPanelLayout();
      const again = createStudioStore().getState().panelLayout;
      expect(again).toEqual(defaultLayout());
      expect(tilingOf(again)).toEqual(defaultTiling());
    } finally {
      if (previous) Object.defineProperty(globalThis, 'localStorage', previous);
      else delete (globalThis as { localStorage?: Storage }).localStorage;
    }
  });
});

describe('dropping a dragged panel', () => {
  const present = ['generate', 'tokens', 'knockout', 'delta', 'bc'];
  const t: Tiling = { columns: [['generate', 'tokens', 'gone', 'knockout'], ['delta', 'bc']], widths: [0.5, 0.5] };

  it('puts it at the drop position among the panels on screen, in any column', () => {
    expect(arrangePanels(placePanel(t, 'knockout', 1, 0, present), present)).toEqual([['generate', 'tokens'], ['knockout', 'delta', 'bc']]);
    expect(arrangePanels(placePanel(t, 'knockout', 1, 1, present), present)).toEqual([['generate', 'tokens'], ['delta', 'knockout', 'bc']]);
    expect(arrangePanels(placePanel(t, 'knockout', 1, 99, present), present)).toEqual([['generate', 'tokens'], ['delta', 'bc', 'knockout']]);
    // Within its own column: index among the others (itself left out).
    expect(arrangePanels(placePanel(t, 'knockout', 0, 0, present), present)).toEqual([['knockout', 'generate', 'tokens'], ['delta', 'bc']]);
    expect(arrangePanels(placePanel(t, 'generate', 0, 2, present), present)).toEqual([['tokens', 'knockout', 'generate'], ['delta', 'bc']]);
    // The absent panel stays stored; every id once.
    const moved = placePanel(t, 'tokens', 1, 1, present);
    expect(moved.columns.flat().sort()).toEqual([...t.columns.flat()].sort());
    // Into an empty column.
    const empty: Tiling = { columns: [['generate', 'tokens'], []], widths: [0.5, 0.5] };
    expect(placePanel(empty, 'tokens', 1, 0, ['generate', 'tokens']).columns).toEqual([['generate'], ['tokens']]);
  });

  it('leaves the tiling as it was for a panel not on screen or a column that does not exist', () => {
    expect(placePanel(t, 'gone', 1, 0, present)).toBe(t);
    expect(placePanel(t, 'tokens', 2, 0, present)).toBe(t);
    expect(placePanel(t, 'tokens', -1, 0, present)).toBe(t);
    expect(placePanel(t, 'tokens', 0, NaN, present)).toBe(t);
  });
});
