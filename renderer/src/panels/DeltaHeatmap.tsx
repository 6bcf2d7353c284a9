/**
 * The Δ heatmap: tokens (left → right) × channels (d_inner, top → bottom) of the selected layer,
 * drawn by WebGL2 from textures uploaded once per trace; above it, a layers × tokens overview of
 * ‖Δ_t‖ that selects the layer on click. Log or linear scale, colormap choice, zoom (wheel,
 * buttons) and pan (drag, buttons) along tokens, a hover readout (token, channel, value) and the
 * hovered token highlighted in both panels and the token strip.
 */
import { useEffect, useMemo, useRef, useState, type MouseEvent, type PointerEvent, type RefObject } from 'react';
import type { TraceResult } from '../../../app/engine/protocol';
import { selectTraceHoverToken, useStudio } from '../store';
import { COLORMAPS, type ColormapName } from './colormaps';
import { HeatmapRenderer } from './heatmap-gl';
import { cellAt, fullView, panView, readoutAt, valueRange, zoomView, type Readout, type TokenView } from './selection';

const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);

/** Keeps one HeatmapRenderer on a canvas with the given matrices uploaded. */
export function useRenderer(canvas: RefObject<HTMLCanvasElement | null>, layers: readonly Float32Array[], tokens: number, channels: number) {
  const [renderer, setRenderer] = useState<HeatmapRenderer | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    try {
      const r = new HeatmapRenderer(el);
      r.setData(layers, tokens, channels);
      setRenderer(r);
      setError(null);
      return () => {
        r.destroy();
        setRenderer(null);
      };
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
      return undefined;
    }
  }, [canvas, layers, tokens, channels]);
  return { renderer, error };
}

/** [tokens, layers] row-major ‖Δ_t‖ of every layer, for the overview. */
function overviewMatrix(trace: TraceResult): Float32Array {
  const T = trace.ids.length;
  const L = trace.layers.length;
  const out = new Float32Array(T * L);
  trace.deltaNorm.forEach((norms, l) => {
    for (let t = 0; t < T; t++) out[t * L + l] = norms[t] ?? 0;
  });
  return out;
}

export interface DeltaHeatmapProps {
  trace: TraceResult;
  layerIndex: number;
  texts: readonly string[];
  onLayer(index: number): void;
}

export function DeltaHeatmap({ trace, layerIndex, texts, onLayer }: DeltaHeatmapProps) {
  const T = trace.ids.length;
  const Di = trace.dInner;
  const L = trace.layers.length;
  const hover = useStudio(selectTraceHoverToken);
  const [view, setView] = useState<TokenView>(() => fullView(T));
  const [colormap, setColormap] = useState<ColormapName>('viridis');
  const [log, setLog] = useState(true);
  const [readout, setReadout] = useState<Readout | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const overview = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; view: TokenView } | null>(null);

  useEffect(() => setView(fullView(T)), [T]);
  const main = useRenderer(canvas, trace.delta, T, Di);
  const overviewData = useMemo(() => [overviewMatrix(trace)], [trace]);
  const over = useRenderer(overview, overviewData, T, L);
  const delta = trace.delta[layerIndex];
  const range = useMemo(() => valueRange(delta ?? [], log), [delta, log]);
  const overviewRange = useMemo(() => valueRange(overviewData[0] ?? [], log), [overviewData, log]);

  useEffect(() => {
    const id = requestAnimationFrame(() => {
      main.renderer?.resize();
      main.renderer?.draw({ layer: layerIndex, view, range, log, colormap, highlightToken: hover });
      over.renderer?.resize();
      over.renderer?.draw({ layer: 0, view, range: overviewRange, log, colormap, highlightToken: hover });
    });
    return () => cancelAnimationFrame(id);
  }, [main.renderer, over.renderer, layerIndex, view, range, overviewRange, log, colormap, hover]);

  // Wheel zoom needs a non-passive listener to keep the page from scrolling.
  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    const onWheel = (event: WheelEvent) => {
      event.preventDefault();
      const box = el.getBoundingClientRect();
      const anchor = (event.clientX - box.left) / box.width;
      setView((v) => zoomView(v, event.deltaY < 0 ? 1.25 : 0.8, anchor, T));
    };
    el.addEventListener('wheel', onWheel, { passive: false });
    return () => el.removeEventListener('wheel', onWheel);
  }, [T]);

  const cellOf = (event: MouseEvent<HTMLCanvasElement>, channels: number) => {
    const box = event.currentTarget.getBoundingClientRect();
    return cellAt(view, channels, event.clientX - box.left, event.clientY - box.top, box.width, box.height);
  };

  const onMove = (event: PointerEvent<HTMLCanvasElement>) => {
    const d = drag.current;
    if (d) {
      const width = event.currentTarget.getBoundingClientRect().width;
      setView(panView(d.view, -(event.clientX - d.x) / width, T));
      return;
    }
    const cell = cellOf(event, Di);
    const r = cell ? readoutAt(trace, layerIndex, cell.token, cell.channel, texts) : null;
    setReadout(r);
    setHover(r ? r.token : null);
  };

  const error = main.error ?? over.error;
  return (
    <section aria-label="Δ heatmap" data-testid="delta-heatmap">
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Colormap</span>
          <select aria-label="Colormap" value={colormap} onChange={(e) => setColormap(e.target.value as ColormapName)}>
            {COLORMAPS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label className="setting">
          <span>Scale</span>
          <select aria-label="Scale" value={log ? 'log' : 'linear'} onChange={(e) => setLog(e.target.value === 'log')}>
            <option value="log">log</option>
            <option value="linear">linear</option>
          </select>
        </label>
        <button type="button" onClick={() => setView((v) => zoomView(v, 2, 0.5, T))}>
          Zoom in
        </button>
        <button type="button" onClick={() => setView((v) => zoomView(v, 0.5, 0.5, T))}>
          Zoom out
        </button>
        <button type="button" onClick={() => setView((v) => panView(v, -0.25, T))} aria-label="Pan left">
          ◀
        </button>
        <button type="button" onClick={() => setView((v) => panView(v, 0.25, T))} aria-label="Pan right">
          ▶
        </button>
        <button type="button" onClick={() => setView(fullView(T))}>
          Reset view
        </button>
        <span data-testid="heatmap-view">
          tokens {Math.floor(view.start)}–{Math.ceil(view.start + view.count) - 1} of {T} · Δ {range.min.toPrecision(3)}…{range.max.toPrecision(3)} ({log ? 'log' : 'linear'})
        </span>
      </div>
      {error && <p className="error">{error}</p>}
      <div style={{ fontSize: 12 }} className="muted">
        ‖Δ_t‖ per layer (click a row to select the layer)
      </div>
      <canvas
        ref={overview}
        data-testid="layer-overview"
        aria-label="Layers × tokens overview of ‖Δ_t‖"
        style={{ width: '100%', height: Math.max(24, 12 * L), display: 'block', cursor: 'pointer' }}
        onClick={(event) => {
          const cell = cellOf(event, L);
          if (cell) onLayer(cell.channel);
        }}
        onMouseMove={(event) => setHover(cellOf(event, L)?.token ?? null)}
      />
      <canvas
        ref={canvas}
        data-testid="heatmap-canvas"
        aria-label={`Δ of layer ${trace.layers[layerIndex]}: tokens × channels`}
        style={{ width: '100%', height: 256, display: 'block', marginTop: 4, cursor: 'crosshair', touchAction: 'none' }}
        onPointerDown={(event) => {
          drag.current = { x: event.clientX, view };
          event.currentTarget.setPointerCapture(event.pointerId);
        }}
        onPointerUp={() => (drag.current = null)}
        onPointerCancel={() => (drag.current = null)}
        onPointerMove={onMove}
        onPointerLeave={() => {
          setReadout(null);
        }}
      />
      <div data-testid="heatmap-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
        {readout ? (
          <span data-token={readout.token} data-channel={readout.channel} data-layer={readout.layer} data-value={String(readout.value)}>
            token {readout.token} “{readout.text}” (id {readout.id}) · channel {readout.channel} · layer {readout.layer} · Δ = {readout.value.toPrecision(6)}
          </span>
        ) : (
          <span className="muted">Hover the heatmap for values; drag or use the wheel to pan and zoom along tokens.</span>
        )}
      </div>
    </section>
  );
}
