/**
 * Zoom and pan on both axes, shared by the Δ heatmap and the B/C heatmaps: the token view and the
 * channel view (selection.ts TokenView each), the mouse wheel over the given canvases (zoom along
 * tokens about the pointer; with Shift, along channels), dragging (pan both), the keyboard
 * (+ / − zoom both axes about the cursor, chart-scale.ts) and the buttons (zoom tokens in / out,
 * zoom channels in / out, pan left / right, reset).
 */
import { useEffect, useRef, useState, type PointerEvent, type RefObject } from 'react';
import type { SessionHeatmapView } from '../../../app/analysis/session';
import { useStudio } from '../store';
import { keepVisible, moveCursor2d } from './chart-scale';
import { clampView, fullView, panView, zoomView, type TokenView } from './selection';

/**
 * The views a saved view (the store's, or a session's) gives a heatmap of `tokens` × `channels`:
 * its own when it was made for these counts, else the full views (a new trace starts whole).
 */
export function viewsFor(saved: SessionHeatmapView | null, tokens: number, channels: number): { view: TokenView; channelView: TokenView } {
  if (!saved || saved.tokens !== tokens || saved.channels !== channels) return { view: fullView(tokens), channelView: fullView(channels) };
  return { view: clampView(saved.x, tokens, 1), channelView: clampView(saved.y, channels, 1) };
}

export interface TokenViewControl {
  view: TokenView;
  setView(update: TokenView | ((v: TokenView) => TokenView)): void;
  /** The channels (states, rows) shown, top to bottom. */
  channelView: TokenView;
  setChannelView(update: TokenView | ((v: TokenView) => TokenView)): void;
  /** Spread on each canvas that pans by dragging. */
  dragHandlers: {
    onPointerDown(event: PointerEvent<HTMLCanvasElement>): void;
    onPointerUp(): void;
    onPointerCancel(): void;
  };
  /** For the canvas's pointermove: pans and returns true while a drag is on (the hover readout waits). */
  dragMove(event: PointerEvent<HTMLCanvasElement>): boolean;
  /** Whether the last press panned the view (a click after a drag is not a click on a cell). */
  dragged(): boolean;
}

/**
 * The view over `tokens` tokens and `channels` channels, reset when a count changes; wheel zoom on
 * `canvases` (stable refs). With `key`, the view lives in the store (traceViews, saved in sessions).
 */
export function useTokenView(tokens: number, canvases: readonly RefObject<HTMLCanvasElement | null>[], channels = 1, key?: 'delta' | 'bc'): TokenViewControl {
  const [local, setLocal] = useState<SessionHeatmapView | null>(null);
  const stored = useStudio((s) => (key ? s.traceViews[key] : null));
  // A new token (or channel) count starts from the whole sequence.
  const { view, channelView } = viewsFor(key ? stored : local, tokens, channels);
  const drag = useRef<{ x: number; y: number; view: TokenView; channelView: TokenView } | null>(null);
  const moved = useRef(false);
  const update = (next: (from: { view: TokenView; channelView: TokenView }) => { view: TokenView; channelView: TokenView }) => {
    const make = (saved: SessionHeatmapView | null): SessionHeatmapView => {
      const v = next(viewsFor(saved, tokens, channels));
      return { tokens, channels, x: v.view, y: v.channelView };
    };
    if (key) {
      const store = useStudio.getState();
      store.setTraceView(key, make(store.traceViews[key]));
    } else setLocal(make);
  };
  const setView = (u: TokenView | ((v: TokenView) => TokenView)) => update((from) => ({ ...from, view: typeof u === 'function' ? u(from.view) : u }));
  const setChannelView = (u: TokenView | ((v: TokenView) => TokenView)) => update((from) => ({ ...from, channelView: typeof u === 'function' ? u(from.channelView) : u }));

  // Wheel zoom needs a non-passive listener to keep the page from scrolling.
  useEffect(() => {
    const cleanups = canvases.map((ref) => {
      const el = ref.current;
      if (!el) return () => undefined;
      const onWheel = (event: WheelEvent) => {
        event.preventDefault();
        const box = el.getBoundingClientRect();
        if (event.shiftKey) {
          const at = (event.clientY - box.top) / box.height;
          const delta = event.deltaY || event.deltaX; // Shift turns some wheels horizontal
          setChannelView((v) => zoomView(v, delta < 0 ? 1.25 : 0.8, at, channels));
          return;
        }
        const anchor = (event.clientX - box.left) / box.width;
        setView((v) => zoomView(v, event.deltaY < 0 ? 1.25 : 0.8, anchor, tokens));
      };
      el.addEventListener('wheel', onWheel, { passive: false });
      return () => el.removeEventListener('wheel', onWheel);
    });
    return () => cleanups.forEach((c) => c());
    // setView / setChannelView change with tokens, channels and key only.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [tokens, channels, canvases, key]);

  return {
    view,
    setView,
    channelView,
    setChannelView,
    dragHandlers: {
      onPointerDown: (event) => {
        drag.current = { x: event.clientX, y: event.clientY, view, channelView };
        moved.current = false;
        event.currentTarget.setPointerCapture(event.pointerId);
      },
      onPointerUp: () => (drag.current = null),
      onPointerCancel: () => (drag.current = null),
    },
    dragMove: (event) => {
      const d = drag.current;
      if (!d) return false;
      const box = event.currentTarget.getBoundingClientRect();
      if (event.clientX !== d.x || event.clientY !== d.y) moved.current = true;
      setView(panView(d.view, -(event.clientX - d.x) / box.width, tokens));
      if (event.clientY !== d.y) setChannelView(panView(d.channelView, -(event.clientY - d.y) / box.height, channels));
      return true;
    },
    dragged: () => moved.current,
  };
}

/** The zoom / pan buttons. */
export function ViewControls({ control, tokens, label, channels, channelName = 'channels' }: { control: TokenViewControl; tokens: number; label: string; channels?: number; channelName?: string }) {
  const { setView, setChannelView } = control;
  return (
    <>
      <button type="button" aria-label={`${label}: zoom in`} onClick={() => setView((v) => zoomView(v, 2, 0.5, tokens))}>
        Zoom in
      </button>
      <button type="button" aria-label={`${label}: zoom out`} onClick={() => setView((v) => zoomView(v, 0.5, 0.5, tokens))}>
        Zoom out
      </button>
      <button type="button" onClick={() => setView((v) => panView(v, -0.25, tokens))} aria-label={`${label}: pan left`}>
        ◀
      </button>
      <button type="button" onClick={() => setView((v) => panView(v, 0.25, tokens))} aria-label={`${label}: pan right`}>
        ▶
      </button>
      {channels !== undefined && (
        <>
          <button type="button" aria-label={`${label}: zoom ${channelName} in`} title={`Zoom ${channelName} in (Shift + wheel)`} onClick={() => setChannelView((v) => zoomView(v, 2, 0.5, channels))}>
            ↕ +
          </button>
          <button type="button" aria-label={`${label}: zoom ${channelName} out`} title={`Zoom ${channelName} out (Shift + wheel)`} onClick={() => setChannelView((v) => zoomView(v, 0.5, 0.5, channels))}>
            ↕ −
          </button>
        </>
      )}
      <button
        type="button"
        aria-label={`${label}: reset view`}
        onClick={() => {
          setView(fullView(tokens));
          if (channels !== undefined) setChannelView(fullView(channels));
        }}
      >
        Reset view
      </button>
    </>
  );
}

/**
 * A key on a focused heatmap: arrows, Home / End, Page Up / Page Down move the cursor (the view
 * pans to keep it shown), + and − zoom both axes about it. The new cursor, or undefined when the
 * key is not one of these (the caller leaves the event alone).
 */
export function heatmapKey(control: TokenViewControl, key: string, cursor: Cell | null, tokens: number, channels: number): Cell | undefined {
  const { view, channelView } = control;
  if (key === '+' || key === '=' || key === '-' || key === '_') {
    const factor = key === '+' || key === '=' ? 2 : 0.5;
    const anchor = (index: number, v: TokenView) => Math.min(1, Math.max(0, (index + 0.5 - v.start) / v.count));
    control.setView(zoomView(view, factor, cursor ? anchor(cursor.token, view) : 0.5, tokens));
    control.setChannelView(zoomView(channelView, factor, cursor ? anchor(cursor.channel, channelView) : 0.5, channels));
    return cursor ?? { token: Math.floor(view.start), channel: Math.floor(channelView.start) };
  }
  // The first key shows the cursor at the top-left cell in view (Home / End: that row's first / last token).
  const first = { token: Math.min(tokens - 1, Math.ceil(view.start - 1e-9)), channel: Math.min(channels - 1, Math.ceil(channelView.start - 1e-9)) };
  const moved = moveCursor2d(cursor ?? first, key, tokens, channels);
  if (!moved) return undefined;
  const next = cursor || key === 'Home' || key === 'End' ? moved : first;
  control.setView(keepVisible(view, next.token, tokens));
  control.setChannelView(keepVisible(channelView, next.channel, channels));
  return next;
}

export interface Cell {
  token: number;
  channel: number;
}
