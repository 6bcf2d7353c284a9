/**
 * A resizable, collapsible container for one selection panel. The header's toggle collapses it
 * (aria-expanded); the handle under it changes the body's height by dragging or, focused, with the
 * arrow keys (Shift: larger steps), Page Up / Page Down, Home / End; a double click or Enter on
 * the handle goes back to the natural height. Inside the Workspace the header also moves the
 * panel up, down, or to the column left or right of it. Sizes, collapsed state and places live in
 * the store's layout slice, which remembers them in localStorage (layout.ts).
 */
import { useRef, useState, type KeyboardEvent, type PointerEvent, type ReactNode } from 'react';
import { selectPanelLayout, useStudio } from '../store';
import { PANEL_MAX_HEIGHT, PANEL_MIN_HEIGHT, clampHeight, keyResize, panelState, type MoveDirection } from './layout';
import { useWorkspaceMoves } from './workspace-context';

const MOVES: [MoveDirection, string][] = [
  ['up', '▴'],
  ['down', '▾'],
  ['left', '◂'],
  ['right', '▸'],
];

/** `stale`: the body shows a result being replaced (a new trace runs): dimmed and labelled "updating…" (LongWork.tsx). */
export function PanelFrame({ id, title, stale = false, children }: { id: string; title: string; stale?: boolean; children: ReactNode }) {
  const layout = useStudio(selectPanelLayout);
  const moves = useWorkspaceMoves();
  const { height, collapsed } = panelState(layout, id);
  const body = useRef<HTMLDivElement>(null);
  // While dragging, the height follows the pointer here and is stored once, on release.
  const [dragHeight, setDragHeight] = useState<number | null>(null);
  const drag = useRef<{ y: number; height: number } | null>(null);
  const shown = dragHeight ?? height;
  const current = () => shown ?? body.current?.getBoundingClientRect().height ?? PANEL_MIN_HEIGHT;
  const bodyId = `panel-body-${id}`;

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      useStudio.getState().setPanelHeight(id, null);
      return;
    }
    const next = keyResize(current(), event.key, event.shiftKey);
    if (next === null) return;
    event.preventDefault();
    useStudio.getState().setPanelHeight(id, next);
  };
  const onPointerDown = (event: PointerEvent<HTMLDivElement>) => {
    drag.current = { y: event.clientY, height: current() };
    event.currentTarget.setPointerCapture(event.pointerId);
  };
  const onPointerMove = (event: PointerEvent<HTMLDivElement>) => {
    const d = drag.current;
    if (d) setDragHeight(clampHeight(d.height + event.clientY - d.y));
  };
  const endDrag = () => {
    if (drag.current && dragHeight !== null) useStudio.getState().setPanelHeight(id, dragHeight);
    drag.current = null;
    setDragHeight(null);
  };

  return (
    <section className="panel-frame" data-testid={`frame-${id}`} data-collapsed={collapsed} data-height={height ?? 'auto'} style={{ borderTop: '1px solid rgba(128,128,128,0.35)' }}>
      {/* Whole-pixel header and handle heights keep the panels' canvases on whole pixels. */}
      <div className="panel-frame-header">
        {moves && (
          <span
            className="panel-grip"
            aria-hidden
            data-testid={`grip-${id}`}
            title={`Drag to move ${title} (or use the arrow buttons)`}
            onPointerDown={(event) => {
              if (event.button !== 0) return;
              event.preventDefault();
              moves.startDrag(id, event.clientX, event.clientY);
            }}
          >
            ⠿
          </span>
        )}
        <button
          type="button"
          className="panel-toggle"
          aria-expanded={!collapsed}
          aria-controls={bodyId}
          onClick={() => useStudio.getState().setPanelCollapsed(id, !collapsed)}
          style={{ background: 'none', border: 'none', color: 'inherit', font: 'inherit', fontWeight: 600, padding: '4px 0', cursor: 'pointer' }}
        >
          {collapsed ? '▸' : '▾'} {title}
        </button>
        {moves &&
          MOVES.map(([direction, arrow]) => (
            <button
              key={direction}
              type="button"
              className="panel-move"
              aria-label={`Move ${title} ${direction}`}
              title={`Move ${title} ${direction}`}
              disabled={!moves.canMove(id, direction)}
              onClick={(event) => {
                const button = event.currentTarget;
                moves.move(id, direction);
                // The panel's element moves in the page, which drops focus: keep it on the button (or the toggle, when the button is now disabled).
                requestAnimationFrame(() => (button.disabled ? button.parentElement?.querySelector<HTMLElement>('.panel-toggle') : button)?.focus());
              }}
            >
              {arrow}
            </button>
          ))}
      </div>
      <div
        id={bodyId}
        ref={body}
        hidden={collapsed}
        data-testid={`frame-body-${id}`}
        className={stale ? 'stale-result' : undefined}
        data-stale={stale ? 'true' : 'false'}
        aria-busy={stale}
        style={{ height: shown ?? undefined, overflow: shown !== null ? 'auto' : undefined, display: collapsed ? 'none' : 'flex', flexDirection: 'column' }}
      >
        {stale && <div className="stale-label">updating…</div>}
        {children}
      </div>
      {!collapsed && (
        <div
          role="separator"
          aria-orientation="horizontal"
          aria-label={`Resize ${title}`}
          aria-controls={bodyId}
          aria-valuemin={PANEL_MIN_HEIGHT}
          aria-valuemax={PANEL_MAX_HEIGHT}
          aria-valuenow={shown !== null ? Math.round(shown) : undefined}
          aria-valuetext={shown !== null ? `${Math.round(shown)} pixels` : 'natural height'}
          tabIndex={0}
          data-testid={`resize-${id}`}
          className="panel-resize"
          title="Drag or use the arrow keys to resize; double-click or Enter for the natural height"
          onKeyDown={onKeyDown}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={endDrag}
          onPointerCancel={endDrag}
          onDoubleClick={() => useStudio.getState().setPanelHeight(id, null)}
          style={{ height: 8, cursor: 'row-resize', touchAction: 'none', display: 'flex', alignItems: 'center', justifyContent: 'center' }}
        >
          <span aria-hidden style={{ width: 40, height: 3, borderRadius: 2, background: 'rgba(128,128,128,0.6)' }} />
        </div>
      )}
    </section>
  );
}
