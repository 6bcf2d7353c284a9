/**
 * The selection panels' arrangement — each panel's height (null: its natural height) and whether
 * it is collapsed — as pure functions, and its persistence in localStorage (the same in Electron's
 * app://studio origin and in web mode). What is read back is validated entry by entry: unknown
 * versions, garbage JSON or a storage that throws give the defaults; bad entries are dropped.
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
  return { version: LAYOUT_VERSION, panels };
}

export const serializeLayout = (layout: PanelLayout): string => JSON.stringify(layout);

const withPanel = (layout: PanelLayout, id: string, patch: Partial<PanelState>): PanelLayout => {
  if (!ID.test(id)) throw new RangeError(`panel id "${id}" is not a lowercase slug`);
  return { version: LAYOUT_VERSION, panels: { ...layout.panels, [id]: { ...panelState(layout, id), ...patch } } };
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
