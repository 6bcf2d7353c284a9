/**
 * The workspace's arrangement as pure functions, and its persistence in localStorage (the same in
 * Electron's app://studio origin and in web mode): each panel's height (null: its natural height)
 * and whether it is collapsed, and the tiling — which panels sit in which of 1–3 columns, in what
 * order, and the columns' widths (fractions of the row). What is read back is validated entry by
 * entry: unknown versions, garbage JSON or a storage that throws give the defaults; bad entries
 * are dropped, a bad tiling gives the default tiling.
 */

export const LAYOUT_STORAGE_KEY = 'mamba-studio.panel-layout';
export const LAYOUT_VERSION = 1;
export const PANEL_MIN_HEIGHT = 64;
export const PANEL_MAX_HEIGHT = 4000;
/** One arrow key press; with Shift, four. */
export const PANEL_KEY_STEP = 16;

export interface PanelState {
  /** Height of the panel's body in CSS pixels, or null for its natural height. */
  height: number | null;
  collapsed: boolean;
}

export interface PanelLayout {
  version: typeof LAYOUT_VERSION;
  panels: Readonly<Record<string, PanelState>>;
  /** The tiling; absent: the default tiling (defaultTiling(2)). */
  tiling?: Tiling;
}

/** The panels' columns, left to right, each a list of panel ids top to bottom, and the columns' widths (fractions summing to 1). */
export interface Tiling {
  columns: readonly (readonly string[])[];
  widths: readonly number[];
}

export const defaultLayout = (): PanelLayout => ({ version: LAYOUT_VERSION, panels: {} });

const DEFAULT_PANEL: PanelState = { height: null, collapsed: false };

export const panelState = (layout: PanelLayout, id: string): PanelState => (Object.hasOwn(layout.panels, id) ? (layout.panels[id] as PanelState) : DEFAULT_PANEL);

export const clampHeight = (height: number): number => Math.round(Math.min(PANEL_MAX_HEIGHT, Math.max(PANEL_MIN_HEIGHT, height)));

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A panel's state from untrusted JSON, or null when it is not one. */
function readPanel(v: unknown): PanelState | null {
  if (!isRecord(v)) return null;
  const { height, collapsed } = v;
  if (typeof collapsed !== 'boolean') return null;
  if (height === null) return { height: null, collapsed };
  if (typeof height !== 'number' || !Number.isFinite(height)) return null;
  return { height: clampHeight(height), collapsed };
}

/** The layout from stored text: the defaults for anything unreadable, valid entries kept. */
export function parseLayout(text: string | null | undefined): PanelLayout {
  if (typeof text !== 'string') return defaultLayout();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return defaultLayout();
  }
  if (!isRecord(json) || json.version !== LAYOUT_VERSION || !isRecord(json.panels)) return defaultLayout();
  const panels: Record<string, PanelState> = {};
  for (const [id, v] of Object.entries(json.panels)) {
    const p = ID.test(id) ? readPanel(v) : null;
    if (p) panels[id] = p;
  }
  const tiling = readTiling(json.tiling);
  return tiling ? { version: LAYOUT_VERSION, panels, tiling } : { version: LAYOUT_VERSION, panels };
}

export const serializeLayout = (layout: PanelLayout): string => JSON.stringify(layout);

const withPanel = (layout: PanelLayout, id: string, patch: Partial<PanelState>): PanelLayout => {
  if (!ID.test(id)) throw new RangeError(`panel id "${id}" is not a lowercase slug`);
  return { ...layout, panels: { ...layout.panels, [id]: { ...panelState(layout, id), ...patch } } };
};

/** The layout with panel `id` at `height` CSS pixels (clamped to the allowed range, whole pixels). */
export const resizePanel = (layout: PanelLayout, id: string, height: number): PanelLayout =>
  Number.isFinite(height) ? withPanel(layout, id, { height: clampHeight(height) }) : layout;

export const setPanelCollapsed = (layout: PanelLayout, id: string, collapsed: boolean): PanelLayout => withPanel(layout, id, { collapsed });

/** The layout with panel `id` back at its natural height. */
export const resetPanelHeight = (layout: PanelLayout, id: string): PanelLayout => withPanel(layout, id, { height: null });

/**
 * The height after a key press on a panel's resize handle (the handle sits under the panel):
 * ArrowDown grows, ArrowUp shrinks (by 16 px, 64 with Shift), PageDown / PageUp by 160, Home the
 * smallest, End the largest. Null when the key does nothing.
 */
export function keyResize(height: number, key: string, shift: boolean): number | null {
  const step = shift ? 4 * PANEL_KEY_STEP : PANEL_KEY_STEP;
  switch (key) {
    case 'ArrowDown':
      return clampHeight(height + step);
    case 'ArrowUp':
      return clampHeight(height - step);
    case 'PageDown':
      return clampHeight(height + 10 * PANEL_KEY_STEP);
    case 'PageUp':
      return clampHeight(height - 10 * PANEL_KEY_STEP);
    case 'Home':
      return PANEL_MIN_HEIGHT;
    case 'End':
      return PANEL_MAX_HEIGHT;
    default:
      return null;
  }
}

type Readable = Pick<Storage, 'getItem'>;
type Writable = Pick<Storage, 'setItem'>;

/** The stored layout; the defaults when there is no storage, nothing stored, or reading throws. */
export function loadLayout(storage: Readable | null | undefined): PanelLayout {
  try {
    return parseLayout(storage?.getItem(LAYOUT_STORAGE_KEY));
  } catch {
    return defaultLayout();
  }
}

/** Stores the layout; false when there is no storage or it refuses (quota, privacy mode). */
export function saveLayout(storage: Writable | null | undefined, layout: PanelLayout): boolean {
  if (!storage) return false;
  try {
    storage.setItem(LAYOUT_STORAGE_KEY, serializeLayout(layout));
    return true;
  } catch {
    return false;
  }
}

/** localStorage when this environment has one (not in Node tests), else null. */
export function browserStorage(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The tiling: panels in 1–3 columns side by side.

export const MAX_COLUMNS = 3;
/** The narrowest a column may be, as a fraction of the row. */
export const MIN_COLUMN_FRACTION = 0.2;
/** One arrow key press on a column split; with Shift, four. */
export const SPLIT_KEY_STEP = 0.02;
/** The prompt, generation and trace controls: a panel like the others. */
export const GENERATE_PANEL = 'generate';

/** Every panel the studio shows, in the one-column order. */
const DEFAULT_ORDER = [GENERATE_PANEL, 'overview', 'tokens', 'delta', 'bc', 'memory', 'hidden-attention', 'compare', 'knockout', 'receptive-field', 'logit-lens', 'attribution', 'patching', 'steering'];
const DEFAULT_COLUMNS: Record<number, string[][]> = {
  1: [DEFAULT_ORDER],
  // Prompt, generation and the re-running tools on the left; beside them the token strip right above the heatmaps and charts (a token hovered in the strip is marked just below).
  2: [
    [GENERATE_PANEL, 'knockout', 'attribution', 'patching', 'compare', 'receptive-field'],
    ['overview', 'tokens', 'delta', 'bc', 'memory', 'hidden-attention', 'logit-lens', 'steering'],
  ],
  3: [
    [GENERATE_PANEL, 'knockout', 'attribution', 'patching', 'compare'],
    ['overview', 'tokens', 'delta', 'bc'],
    ['memory', 'hidden-attention', 'receptive-field', 'logit-lens', 'steering'],
  ],
};
const DEFAULT_WIDTHS: Record<number, number[]> = { 1: [1], 2: [0.42, 0.58], 3: [0.3, 0.38, 0.32] };

export const defaultTiling = (count = 2): Tiling => {
  const n = Math.min(MAX_COLUMNS, Math.max(1, Math.round(count)));
  return { columns: (DEFAULT_COLUMNS[n] as string[][]).map((c) => [...c]), widths: [...(DEFAULT_WIDTHS[n] as number[])] };
};

export const tilingOf = (layout: PanelLayout): Tiling => layout.tiling ?? defaultTiling();

export const withTiling = (layout: PanelLayout, tiling: Tiling): PanelLayout => ({ ...layout, tiling });

/**
 * Widths made valid for `n` columns: finite positive fractions, each at least
 * MIN_COLUMN_FRACTION, summing to 1; equal widths when `widths` cannot be used.
 */
export function normalizeWidths(widths: readonly number[], n: number): number[] {
  const equal = Array.from({ length: n }, () => 1 / n);
  if (widths.length !== n || !widths.every((w) => Number.isFinite(w) && w > 0)) return equal;
  const sum = widths.reduce((a, b) => a + b, 0);
  let out = widths.map((w) => w / sum);
  // Raise the too-narrow columns to the minimum, taking the difference from the others in proportion to their excess.
  for (let pass = 0; pass < n && out.some((w) => w < MIN_COLUMN_FRACTION - 1e-9); pass++) {
    const short = out.reduce((a, w) => a + Math.max(0, MIN_COLUMN_FRACTION - w), 0);
    const excess = out.reduce((a, w) => a + Math.max(0, w - MIN_COLUMN_FRACTION), 0);
    out = out.map((w) => (w < MIN_COLUMN_FRACTION ? MIN_COLUMN_FRACTION : w - (short * (w - MIN_COLUMN_FRACTION)) / excess));
  }
  return out;
}

/** A tiling from untrusted JSON, or null when it is not one (then the default tiling is used). Duplicate and invalid ids are dropped. */
function readTiling(v: unknown): Tiling | null {
  if (!isRecord(v) || !Array.isArray(v.columns) || !Array.isArray(v.widths)) return null;
  const { columns, widths } = v as { columns: unknown[]; widths: unknown[] };
  if (columns.length < 1 || columns.length > MAX_COLUMNS || !columns.every(Array.isArray)) return null;
  const seen = new Set<string>();
  const cols = (columns as unknown[][]).map((c) =>
    c.filter((id): id is string => {
      if (typeof id !== 'string' || !ID.test(id) || seen.has(id)) return false;
      seen.add(id);
      return true;
    }),
  );
  const ws = widths.map((w) => (typeof w === 'number' ? w : NaN));
  return { columns: cols, widths: normalizeWidths(ws, cols.length) };
}

/**
 * What is on screen: the tiling's columns with only the `present` panels, and present panels the
 * tiling does not place (a panel new to this version) added to the column holding the fewest.
 */
export function arrangePanels(tiling: Tiling, present: readonly string[]): string[][] {
  const has = new Set(present);
  const placed = new Set(tiling.columns.flat());
  const cols = tiling.columns.map((c) => c.filter((id) => has.has(id)));
  for (const id of present) {
    if (placed.has(id)) continue;
    let target = 0;
    cols.forEach((c, i) => {
      if (c.length < (cols[target] as string[]).length) target = i;
    });
    (cols[target] as string[]).push(id);
    placed.add(id);
  }
  return cols;
}

/** The tiling with the present panels it did not place placed (as arrangePanels does), absent ones kept where they were. */
function placeAll(tiling: Tiling, present: readonly string[]): string[][] {
  const arranged = arrangePanels(tiling, present);
  const placed = new Set(tiling.columns.flat());
  return tiling.columns.map((c, i) => [...c, ...(arranged[i] as string[]).filter((id) => !placed.has(id))]);
}

export type MoveDirection = 'up' | 'down' | 'left' | 'right';

/**
 * The tiling with panel `id` moved one place among the `present` panels: up / down within its
 * column (past the next present panel), left / right to the end of the neighbouring column. The
 * same tiling when the move is not possible (see canMovePanel).
 */
export function movePanel(tiling: Tiling, id: string, direction: MoveDirection, present: readonly string[]): Tiling {
  if (!canMovePanel(tiling, id, direction, present)) return tiling;
  const has = new Set(present);
  const cols = placeAll(tiling, present);
  const c = cols.findIndex((col) => col.includes(id));
  const col = cols[c] as string[];
  const i = col.indexOf(id);
  if (direction === 'up' || direction === 'down') {
    const step = direction === 'up' ? -1 : 1;
    let j = i + step;
    while (j >= 0 && j < col.length && !has.has(col[j] as string)) j += step;
    col.splice(i, 1);
    col.splice(j, 0, id);
  } else {
    col.splice(i, 1);
    (cols[c + (direction === 'left' ? -1 : 1)] as string[]).push(id);
  }
  return { columns: cols, widths: [...tiling.widths] };
}

/** Whether panel `id` (one of the `present` panels) can move that way: not off the row, not past the first or last present panel of its column. */
export function canMovePanel(tiling: Tiling, id: string, direction: MoveDirection, present: readonly string[]): boolean {
  const cols = arrangePanels(tiling, present);
  const c = cols.findIndex((col) => col.includes(id));
  if (c < 0) return false;
  const col = cols[c] as string[];
  const i = col.indexOf(id);
  switch (direction) {
    case 'up':
      return i > 0;
    case 'down':
      return i < col.length - 1;
    case 'left':
      return c > 0;
    case 'right':
      return c < cols.length - 1;
  }
}

/**
 * The tiling in `count` columns (1–3): with fewer, the dropped columns' panels join the last
 * remaining column; with more, each new column takes the last panel of the fullest column (when
 * it has more than one). Widths start over at the defaults for that count.
 */
export function setColumnCount(tiling: Tiling, count: number, present: readonly string[]): Tiling {
  const n = Math.min(MAX_COLUMNS, Math.max(1, Math.round(count)));
  if (!Number.isFinite(count) || n === tiling.columns.length) return tiling;
  const has = new Set(present);
  const cols = placeAll(tiling, present);
  while (cols.length > n) (cols[cols.length - 2] as string[]).push(...(cols.pop() as string[]));
  while (cols.length < n) {
    const visible = (col: string[]) => col.filter((id) => has.has(id)).length;
    const fullest = cols.reduce((a, col) => (visible(col) > visible(a) ? col : a), cols[0] as string[]);
    const next: string[] = [];
    if (visible(fullest) > 1) {
      const last = fullest.findLastIndex((id) => has.has(id));
      next.push(...fullest.splice(last, 1));
    }
    cols.push(next);
  }
  return { columns: cols, widths: [...(DEFAULT_WIDTHS[n] as number[])] };
}

/**
 * The tiling with the split between columns `index` and `index + 1` moved by `delta` (a fraction
 * of the row; positive: to the right), within MIN_COLUMN_FRACTION of either column's other edge.
 * The other columns keep their widths.
 */
export function moveSplit(tiling: Tiling, index: number, delta: number): Tiling {
  const widths = [...tiling.widths];
  const a = widths[index];
  const b = widths[index + 1];
  if (a === undefined || b === undefined || !Number.isFinite(delta)) return tiling;
  const left = Math.min(a + b - MIN_COLUMN_FRACTION, Math.max(MIN_COLUMN_FRACTION, a + delta));
  widths[index] = left;
  widths[index + 1] = a + b - left;
  return { columns: tiling.columns, widths };
}

/**
 * The tiling after a key press on the split between columns `index` and `index + 1`: ArrowLeft /
 * ArrowRight move it by 2% of the row (8% with Shift), Home / End as far as it goes. Null when the
 * key does nothing.
 */
export function keySplit(tiling: Tiling, index: number, key: string, shift: boolean): Tiling | null {
  const step = shift ? 4 * SPLIT_KEY_STEP : SPLIT_KEY_STEP;
  switch (key) {
    case 'ArrowLeft':
      return moveSplit(tiling, index, -step);
    case 'ArrowRight':
      return moveSplit(tiling, index, step);
    case 'Home':
      return moveSplit(tiling, index, -1);
    case 'End':
      return moveSplit(tiling, index, 1);
    default:
      return null;
  }
}

/**
 * The tiling with panel `id` (one of the `present` panels) dropped into column `column` at
 * position `index` among that column's other present panels (0: on top; past the end: at the
 * bottom). The same tiling when `id` is not present or the column does not exist.
 */
export function placePanel(tiling: Tiling, id: string, column: number, index: number, present: readonly string[]): Tiling {
  if (!present.includes(id) || !Number.isInteger(column) || column < 0 || column >= tiling.columns.length || !Number.isFinite(index)) return tiling;
  const has = new Set(present);
  const cols = placeAll(tiling, present).map((c) => c.filter((p) => p !== id));
  const col = cols[column] as string[];
  const visible = col.filter((p) => has.has(p));
  const at = Math.min(visible.length, Math.max(0, Math.floor(index)));
  // Before the `at`-th present panel, or right after the last present one.
  const before = visible[at];
  const pos = before !== undefined ? col.indexOf(before) : visible.length > 0 ? col.indexOf(visible[visible.length - 1] as string) + 1 : col.length;
  col.splice(pos, 0, id);
  return { columns: cols, widths: [...tiling.widths] };
}
