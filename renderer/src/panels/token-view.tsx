/**
 * Zoom and pan along tokens, shared by the Δ heatmap and the B/C heatmaps: the view (selection.ts
 * TokenView), the mouse wheel over the given canvases (zoom about the pointer), dragging (pan)
 * and the buttons (zoom in / out, pan left / right, reset).
 */
import { useEffect, useRef, useState, type PointerEvent, type RefObject } from 'react';
import { fullView, panView, zoomView, type TokenView } from './selection';

export interface TokenViewControl {
  view: TokenView;
  setView(update: TokenView | ((v: TokenView) => TokenView)): void;
  /** Spread on each canvas that pans by dragging. */
  dragHandlers: {
    onPointerDown(event: PointerEvent<HTMLCanvasElement>): void;
    onPointerUp(): void;
    onPointerCancel(): void;
  };
  /** For the canvas's pointermove: pans and returns true while a drag is on (the hover readout waits). */
  dragMove(event: PointerEvent<HTMLCanvasElement>): boolean;
}

/** The view over `tokens` tokens, reset when the count changes; wheel zoom on `canvases` (stable refs). */
export function useTokenView(tokens: number, canvases: readonly RefObject<HTMLCanvasElement | null>[]): TokenViewControl {
  const [state, setState] = useState<{ tokens: number; view: TokenView }>(() => ({ tokens, view: fullView(tokens) }));
  // A new token count starts from the whole sequence.
  const view = state.tokens === tokens ? state.view : fullView(tokens);
  const drag = useRef<{ x: number; view: TokenView } | null>(null);
  const setView = (update: TokenView | ((v: TokenView) => TokenView)) =>
    setState((s) => {
      const from = s.tokens === tokens ? s.view : fullView(tokens);
      return { tokens, view: typeof update === 'function' ? update(from) : update };
    });

  // Wheel zoom needs a non-passive listener to keep the page from scrolling.
  useEffect(() => {
    const cleanups = canvases.map((ref) => {
      const el = ref.current;
      if (!el) return () => undefined;
      const onWheel = (event: WheelEvent) => {
        event.preventDefault();
        const box = el.getBoundingClientRect();
        const anchor = (event.clientX - box.left) / box.width;
        setState((s) => ({ tokens, view: zoomView(s.tokens === tokens ? s.view : fullView(tokens), event.deltaY < 0 ? 1.25 : 0.8, anchor, tokens) }));
      };
      el.addEventListener('wheel', onWheel, { passive: false });
      return () => el.removeEventListener('wheel', onWheel);
    });
    return () => cleanups.forEach((c) => c());
  }, [tokens, canvases]);

  return {
    view,
    setView,
    dragHandlers: {
      onPointerDown: (event) => {
        drag.current = { x: event.clientX, view };
        event.currentTarget.setPointerCapture(event.pointerId);
      },
      onPointerUp: () => (drag.current = null),
      onPointerCancel: () => (drag.current = null),
    },
    dragMove: (event) => {
      const d = drag.current;
      if (!d) return false;
      const width = event.currentTarget.getBoundingClientRect().width;
      setView(panView(d.view, -(event.clientX - d.x) / width, tokens));
      return true;
    },
  };
}

/** The zoom / pan buttons and the shown token range. */
export function ViewControls({ control, tokens, label }: { control: TokenViewControl; tokens: number; label: string }) {
  const { setView } = control;
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
      <button type="button" aria-label={`${label}: reset view`} onClick={() => setView(fullView(tokens))}>
        Reset view
      </button>
    </>
  );
}
