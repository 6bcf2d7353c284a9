/**
 * The workspace: the prompt, generation and trace controls (`side`, framed as the "generate"
 * panel) and the selection panels (the PanelFrames passed as children) tiled in 1–3 columns side
 * by side. Between two columns a split moves with the mouse (drag) or, focused, the keyboard
 * (ArrowLeft / ArrowRight, Shift for larger steps, Home / End). Each frame's header moves it up,
 * down or to the neighbouring column (buttons), or anywhere (drag its grip ⠿; Escape cancels); a
 * toolbar picks the number of columns and resets the layout. The tiling lives in the store's
 * layout slice with the panels' heights, remembered in localStorage (layout.ts).
 */
import { Children, Fragment, isValidElement, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent, type ReactElement, type ReactNode } from 'react';
import { selectPanelLayout, useStudio } from '../store';
import { GENERATE_PANEL, MAX_COLUMNS, arrangePanels, canMovePanel, keySplit, movePanel, moveSplit, placePanel, setColumnCount, tilingOf, type MoveDirection, type Tiling } from './layout';
import { PanelFrame } from './PanelFrame';
import { WorkspaceContext, type WorkspaceMoves } from './workspace-context';

/** Width of the split between two columns, in CSS pixels. */
const SPLIT_PX = 8;
/** Vertical gap between two panels of a column, in CSS pixels. */
const GAP_PX = 8;

type FrameElement = ReactElement<{ id: string; title: string }>;

/** The PanelFrame-like elements (those with a string `id` prop) among `children`, fragments opened. */
function framesOf(children: ReactNode): FrameElement[] {
  const out: FrameElement[] = [];
  Children.forEach(children, (child) => {
    if (!isValidElement(child)) return;
    if (child.type === Fragment) out.push(...framesOf((child.props as { children?: ReactNode }).children));
    else if (typeof (child.props as { id?: unknown }).id === 'string') out.push(child as FrameElement);
  });
  return out;
}

/** The split between columns `index` and `index + 1`: its aria-valuenow is where it sits, in percent of the row from the left. */
function ColumnSplit({ index, tiling, onDrag, onCommit }: { index: number; tiling: Tiling; onDrag(t: Tiling | null): void; onCommit(t: Tiling): void }) {
  const drag = useRef<{ x: number; row: number; tiling: Tiling; last: Tiling } | null>(null);
  const position = Math.round(100 * tiling.widths.slice(0, index + 1).reduce((a, b) => a + b, 0));
  const onKeyDown = (event: KeyboardEvent) => {
    const next = keySplit(tiling, index, event.key, event.shiftKey);
    if (!next) return;
    event.preventDefault();
    onCommit(next);
  };
  const onPointerDown = (event: PointerEvent<HTMLDivElement>) => {
    const grid = event.currentTarget.parentElement;
    if (!grid) return;
    const row = grid.getBoundingClientRect().width - SPLIT_PX * (tiling.widths.length - 1);
    drag.current = { x: event.clientX, row, tiling, last: tiling };
    event.currentTarget.setPointerCapture(event.pointerId);
  };
  const onPointerMove = (event: PointerEvent<HTMLDivElement>) => {
    const d = drag.current;
    if (!d || d.row <= 0) return;
    d.last = moveSplit(d.tiling, index, (event.clientX - d.x) / d.row);
    onDrag(d.last);
  };
  const endDrag = () => {
    const d = drag.current;
    drag.current = null;
    onDrag(null);
    if (d && d.last !== d.tiling) onCommit(d.last);
  };
  return (
    <div
      role="separator"
      aria-orientation="vertical"
      aria-label={`Resize columns ${index + 1} and ${index + 2}`}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={position}
      aria-valuetext={`column ${index + 1} ends at ${position}% of the width`}
      tabIndex={0}
      className="workspace-split"
      style={{ left: `calc(${columnBox(tiling.widths, index + 1).left} - ${SPLIT_PX}px)`, width: SPLIT_PX }}
      data-testid={`workspace-split-${index}`}
      title="Drag, or use the arrow keys (Shift: larger steps, Home / End: as far as it goes), to resize the columns"
      onKeyDown={onKeyDown}
      onPointerDown={onPointerDown}
      onPointerMove={onPointerMove}
      onPointerUp={endDrag}
      onPointerCancel={endDrag}
    />
  );
}

/** Column `c`'s left edge and width as CSS lengths: the row less the splits is shared by the widths; a column also skips the splits left of it. */
function columnBox(widths: readonly number[], c: number): { left: string; width: string } {
  const row = `(100% - ${(widths.length - 1) * SPLIT_PX}px)`;
  const before = widths.slice(0, c).reduce((a, b) => a + b, 0);
  return { left: `calc(${row} * ${before.toFixed(5)} + ${c * SPLIT_PX}px)`, width: `calc(${row} * ${(widths[c] ?? 0).toFixed(5)})` };
}

/** Where each panel sits: its column's box and its top (px), the heights of the panels above it in its column stacked with GAP_PX between them. */
function placements(columns: string[][], widths: readonly number[], heights: ReadonlyMap<string, number>) {
  const cells: { id: string; column: number; left: string; width: string; top: number }[] = [];
  const columnHeights: number[] = [];
  columns.forEach((col, c) => {
    const { left, width } = columnBox(widths, c);
    let top = 0;
    for (const id of col) {
      cells.push({ id, column: c, left, width, top });
      top += (heights.get(id) ?? 0) + GAP_PX;
    }
    columnHeights.push(Math.max(0, top - GAP_PX));
  });
  return { cells, columnHeights };
}

export function Workspace({ side, sideTitle, empty, children }: { side: ReactNode; sideTitle: string; empty?: ReactNode; children?: ReactNode }) {
  const layout = useStudio(selectPanelLayout);
  const stored = tilingOf(layout);
  const [dragging, setDragging] = useState<Tiling | null>(null);
  const tiling = dragging ?? stored;
  const frames = framesOf(children);
  const byId = new Map<string, ReactNode>(frames.map((f) => [f.props.id, f]));
  byId.set(
    GENERATE_PANEL,
    <PanelFrame key={GENERATE_PANEL} id={GENERATE_PANEL} title={sideTitle}>
      {side}
    </PanelFrame>,
  );
  const present = [...byId.keys()];
  const presentKey = present.join(' ');
  const columns = arrangePanels(tiling, present);
  const grid = useRef<HTMLDivElement>(null);
  // A panel being dragged by its grip: where it would land (column, index among that column's other panels) and the drop line's top.
  const [drop, setDrop] = useState<{ id: string; column: number; index: number; y: number } | null>(null);
  const moves = useMemo<WorkspaceMoves>(() => {
    const ids = presentKey.split(' ');
    const shown = arrangePanels(stored, ids);
    /** Where a drop at (x, y) (client pixels) puts panel `id`. */
    const target = (id: string, x: number, y: number) => {
      const box = grid.current?.getBoundingClientRect();
      if (!box) return null;
      const row = box.width - SPLIT_PX * (stored.widths.length - 1);
      let column = 0;
      let right = 0;
      for (let c = 0; c < stored.widths.length; c++) {
        right += (stored.widths[c] ?? 0) * row + (c > 0 ? SPLIT_PX : 0);
        column = c;
        if (x - box.left < right + SPLIT_PX / 2) break;
      }
      const rects = (shown[column] ?? []).filter((p) => p !== id).map((p) => cellsRef.current.get(p)?.getBoundingClientRect()).filter((r): r is DOMRect => r !== undefined);
      const index = rects.filter((r) => (r.top + r.bottom) / 2 < y).length;
      const next = rects[index];
      const last = rects[rects.length - 1];
      const lineY = next ? next.top - GAP_PX / 2 : last ? last.bottom + GAP_PX / 2 : box.top;
      return { id, column, index, y: lineY - box.top };
    };
    return {
      canMove: (id, direction: MoveDirection) => canMovePanel(stored, id, direction, ids),
      move: (id, direction: MoveDirection) => useStudio.getState().setPanelTiling(movePanel(stored, id, direction, ids)),
      startDrag: (id, x, y) => {
        setDrop(target(id, x, y));
        const onMove = (e: globalThis.PointerEvent) => setDrop(target(id, e.clientX, e.clientY));
        const end = (e: globalThis.PointerEvent | null) => {
          window.removeEventListener('pointermove', onMove);
          window.removeEventListener('pointerup', end);
          window.removeEventListener('keydown', onKey);
          setDrop(null);
          const t = e ? target(id, e.clientX, e.clientY) : null;
          if (t) useStudio.getState().setPanelTiling(placePanel(stored, id, t.column, t.index, ids));
        };
        const onKey = (e: globalThis.KeyboardEvent) => {
          if (e.key === 'Escape') end(null);
        };
        window.addEventListener('pointermove', onMove);
        window.addEventListener('pointerup', end);
        window.addEventListener('keydown', onKey);
      },
    };
  }, [stored, presentKey]);
  const commit = (t: Tiling) => useStudio.getState().setPanelTiling(t);

  // The panels' heights, measured: after every render (before paint) and whenever one resizes.
  const [heights, setHeights] = useState<ReadonlyMap<string, number>>(new Map());
  const cellsRef = useRef(new Map<string, HTMLDivElement>());
  const measure = useCallback(() => {
    setHeights((old) => {
      let changed = old.size !== cellsRef.current.size;
      const next = new Map<string, number>();
      for (const [id, el] of cellsRef.current) {
        const h = el.offsetHeight;
        next.set(id, h);
        if (old.get(id) !== h) changed = true;
      }
      return changed ? next : old;
    });
  }, []);
  useLayoutEffect(measure);
  const observer = useRef<ResizeObserver | null>(null);
  useEffect(() => {
    if (typeof ResizeObserver === 'undefined') return;
    const o = new ResizeObserver(measure);
    observer.current = o;
    for (const el of cellsRef.current.values()) o.observe(el);
    return () => {
      o.disconnect();
      observer.current = null;
    };
  }, [measure]);
  // One ref callback per panel for the component's life: a new one each render would detach and re-attach every cell.
  const refCallbacks = useRef(new Map<string, (el: HTMLDivElement | null) => void>());
  const cellRef = (id: string) => {
    let callback = refCallbacks.current.get(id);
    if (!callback) {
      callback = (el) => {
        const old = cellsRef.current.get(id);
        if (old && old !== el) observer.current?.unobserve(old);
        if (el) {
          cellsRef.current.set(id, el);
          observer.current?.observe(el);
        } else cellsRef.current.delete(id);
      };
      refCallbacks.current.set(id, callback);
    }
    return callback;
  };

  const { cells, columnHeights } = placements(columns, tiling.widths, heights);
  const height = Math.max(80, ...columnHeights);
  return (
    <WorkspaceContext.Provider value={moves}>
      <section className="workspace" aria-label="Workspace" data-testid="selection-panels">
        <div className="workspace-toolbar" role="toolbar" aria-label="Layout">
          <span className="workspace-toolbar-group" role="group" aria-label="Columns">
            <span className="muted">Columns</span>
            {Array.from({ length: MAX_COLUMNS }, (_, i) => i + 1).map((n) => (
              <button key={n} type="button" aria-pressed={columns.length === n} onClick={() => commit(setColumnCount(stored, n, present))} title={`Arrange the panels in ${n} column${n === 1 ? '' : 's'}`}>
                {n}
              </button>
            ))}
          </span>
          <button type="button" onClick={() => useStudio.getState().resetPanelLayout()} title="Every panel back to its place, natural height and expanded">
            Reset layout
          </button>
        </div>
        {/* One flat list of panels keyed by id, in reading order (column by column), placed absolutely: moving a panel to
            another column moves its element and keeps its state (results, zoom), where separate column elements would remount it. */}
        <div ref={grid} className="workspace-grid" data-testid="workspace-grid" data-columns={columns.length} data-dragging={drop?.id} style={{ height }}>
          {cells.map(({ id, column, left, width, top }) => (
            <div key={id} ref={cellRef(id)} className="workspace-cell" data-testid={`workspace-cell-${id}`} data-column={column} data-dragged={drop?.id === id || undefined} style={{ left, width, top }}>
              {byId.get(id)}
            </div>
          ))}
          {columns.map((col, c) =>
            col.length === 0 ? (
              <p key={`empty-${c}`} className="muted workspace-empty" style={columnBox(tiling.widths, c)}>
                {frames.length === 0 && empty ? empty : 'Move panels here with their ◂ ▸ buttons.'}
              </p>
            ) : null,
          )}
          {drop && <div className="workspace-drop" aria-hidden data-testid="workspace-drop" style={{ ...columnBox(tiling.widths, drop.column), top: drop.y }} />}
          {columns.slice(1).map((_, i) => (
            <ColumnSplit key={`split-${i}`} index={i} tiling={tiling} onDrag={setDragging} onCommit={commit} />
          ))}
        </div>
      </section>
    </WorkspaceContext.Provider>
  );
}
