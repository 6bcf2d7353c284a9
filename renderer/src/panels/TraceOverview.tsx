/**
 * The overview of a long trace (detail 'windows', issue 18): layers × tokens of one per-token
 * summary (‖Δ_t‖, focus score, write gate, ‖state_t‖) over the whole trace, drawn on a 2-D canvas
 * from min/max/mean pyramids (long-trace.ts: each pixel column the min, max or mean of its tokens,
 * never a pass over the T values per frame), with axes and a colour bar (chart-axes.tsx). The
 * detail window — the tokens whose Δ, B and C the other panels show, fetched from the engine — is
 * the outlined rectangle: a click or a drag moves it there, the keyboard moves it (←/→ a tenth of
 * it, PageUp/PageDown a whole one, Home/End to the ends), the wheel zooms the overview about the
 * pointer (buttons too). The hover readout gives the exact value of the token under the pointer
 * (the summaries are exact) and its column's min / mean / max. Clicking a row selects the layer.
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { useElementSize } from './use-element-size';
import type { TraceResult } from '../../../app/engine/protocol';
import { TRACE_WINDOW_MAX } from '../../../app/analysis/trace-window';
import { type ColormapName } from './colormaps';
import { ColormapSelect } from './ColormapSelect';
import { PanelStatus } from './PanelStatus';
import { HeatmapAxes, PLOT_CANVAS_STYLE } from './chart-axes';
import { layerOverviewHeight } from './chart-scale';
import { binRanges, binStats, buildPyramid, clampWindow, moveWindowKey, overviewPixels, SUMMARY_LABELS, summariesOf, type BinAggregate, type OverviewSummary, type Pyramid } from './long-trace';
import { clampView, fullView, zoomView, type TokenView } from './selection';

export interface TraceOverviewProps {
  trace: TraceResult;
  layerIndex: number;
  onLayer(index: number): void;
  /** The detail window, tokens [from, to). */
  window: { from: number; to: number };
  onWindow(window: { from: number; to: number }): void;
  /** The window of the selected layer the engine is computing, and why the last one failed. */
  loading?: { layer: number; from: number; to: number } | null;
  error?: string | null;
  /** Why no detail window is asked for now (e.g. while a generation runs). */
  note?: string | null;
}

interface Hovered {
  token: number;
  row: number;
  value: number;
  bin: { from: number; to: number; min: number; max: number; mean: number };
}

/** Whole tokens of a (possibly fractional) overview view: what binStats reads. */
function wholeRange(view: TokenView, T: number): { start: number; count: number } {
  const start = Math.max(0, Math.min(T - 1, Math.floor(view.start)));
  return { start, count: Math.max(1, Math.min(T - start, Math.round(view.count))) };
}

export function TraceOverview({ trace, layerIndex, onLayer, window: win, onWindow, loading = null, error = null, note = null }: TraceOverviewProps) {
  const T = trace.ids.length;
  const L = trace.layers.length;
  const available = useMemo(() => summariesOf(trace), [trace]);
  const [wanted, setSummary] = useState<OverviewSummary>('deltaNorm');
  const summary = available.includes(wanted) ? wanted : (available[0] ?? 'deltaNorm');
  const [aggregate, setAggregate] = useState<BinAggregate>('max');
  const [log, setLog] = useState(false);
  const [colormap, setColormap] = useState<ColormapName>('viridis');
  const [view, setView] = useState<TokenView>(() => fullView(T));
  const [hovered, setHovered] = useState<Hovered | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ pointer: number } | null>(null);
  // A new trace starts whole.
  useEffect(() => setView(fullView(T)), [trace.traceId, T]);

  // Built once per trace and summary shown (O(T) per layer; only the shown summary's are kept).
  const rows = useMemo<Pyramid[]>(() => (trace[summary] ?? []).map((values) => buildPyramid(values)), [trace, summary]);
  const range = useMemo(() => {
    const max = Math.max(0, ...rows.map((p) => p.max));
    if (log) {
      const positive = rows.map((p) => p.minPositive).filter((v) => v > 0);
      const min = positive.length > 0 ? Math.min(...positive) : 1e-6;
      return { min, max: Math.max(max, min) };
    }
    return { min: Math.min(0, ...rows.map((p) => p.min)), max };
  }, [rows, log]);
  const shown = wholeRange(view, T);

  // The frame: pixels from the pyramids (one row per layer), scaled up without smoothing.
  const scratch = useRef<{ pixels?: Uint8ClampedArray<ArrayBuffer>; offscreen?: HTMLCanvasElement }>({});
  const size = useElementSize(canvas);
  useEffect(() => {
    const id = requestAnimationFrame(() => {
      const el = canvas.current;
      if (!el || rows.length === 0 || T === 0) return;
      // One bin per CSS pixel column (a high-DPI screen scales the image up: the same cost on every
      // screen, and the hover readout's bins are the ones drawn).
      const width = Math.max(1, Math.round(el.clientWidth));
      const height = Math.max(1, Math.round(el.clientHeight));
      if (el.width !== width || el.height !== height) {
        el.width = width;
        el.height = height;
      }
      const s = scratch.current;
      const pixels = overviewPixels({ rows, start: shown.start, count: shown.count, width, aggregate, range, log, colormap }, s.pixels);
      s.pixels = pixels;
      const off = (s.offscreen ??= document.createElement('canvas'));
      if (off.width !== width || off.height !== rows.length) {
        off.width = width;
        off.height = rows.length;
      }
      off.getContext('2d')?.putImageData(new ImageData(pixels, width, rows.length), 0, 0);
      const g = el.getContext('2d');
      if (!g) return;
      g.imageSmoothingEnabled = false;
      g.drawImage(off, 0, 0, width, rows.length, 0, 0, width, height);
    });
    return () => cancelAnimationFrame(id);
  }, [rows, shown.start, shown.count, aggregate, range, log, colormap, size, T]);

  // Wheel: zoom about the pointer (non-passive, so the page does not scroll).
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

  const size1 = win.to - win.from;
  const tokenAt = (event: PointerEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    const x = event.clientX - box.left;
    const y = event.clientY - box.top;
    if (!(x >= 0 && x < box.width && y >= 0 && y < box.height)) return null;
    return { token: Math.min(T - 1, Math.floor(shown.start + (x / box.width) * shown.count)), row: Math.min(L - 1, Math.floor((y / box.height) * L)), column: Math.floor((x / box.width) * Math.max(1, Math.round(box.width))), columns: Math.max(1, Math.round(box.width)) };
  };
  const centreOn = (token: number) => onWindow(clampWindow(token - Math.floor(size1 / 2), size1, T));

  const onPointerDown = (event: PointerEvent<HTMLCanvasElement>) => {
    const at = tokenAt(event);
    if (!at) return;
    drag.current = { pointer: event.pointerId };
    event.currentTarget.setPointerCapture(event.pointerId);
    centreOn(at.token);
    if (at.row !== layerIndex) onLayer(at.row);
  };
  const onPointerMove = (event: PointerEvent<HTMLCanvasElement>) => {
    const at = tokenAt(event);
    if (drag.current && at) centreOn(at.token);
    const p = at ? rows[at.row] : undefined;
    if (!at || !p) {
      setHovered(null);
      return;
    }
    // The column's bin as drawn; the token is the one under the pointer, inside it.
    const bins = binStats(p, shown.start, shown.count, at.columns);
    const ranges = binRanges(shown.start, shown.count, at.columns, p.leaf);
    const lo = ranges.lo[at.column] ?? at.token;
    const hi = ranges.hi[at.column] ?? at.token + 1;
    const token = Math.min(hi - 1, Math.max(lo, at.token));
    setHovered({
      token,
      row: at.row,
      value: p.values[token] as number,
      bin: { from: lo, to: hi, min: bins.min[at.column] as number, max: bins.max[at.column] as number, mean: bins.mean[at.column] as number },
    });
  };
  const endDrag = () => (drag.current = null);

  const onKey = (event: KeyboardEvent<HTMLCanvasElement>) => {
    if (event.key === '+' || event.key === '=' || event.key === '-') {
      event.preventDefault();
      setView((v) => zoomView(v, event.key === '-' ? 0.8 : 1.25, 0.5, T));
      return;
    }
    const next = moveWindowKey(win, event.key, T);
    if (!next) return;
    event.preventDefault();
    onWindow(next);
    // Keep the window in sight.
    setView((v) => (next.from < v.start || next.to > v.start + v.count ? clampView({ start: next.from + (next.to - next.from) / 2 - v.count / 2, count: v.count }, T) : v));
  };

  const label = SUMMARY_LABELS[summary];
  const layerNames = useMemo(() => trace.layers.map((l) => `layer ${l}`), [trace.layers]);
  const left = ((win.from - view.start) / view.count) * 100;
  const width = (size1 / view.count) * 100;
  return (
    <section aria-label="Trace overview" data-testid="trace-overview" data-window-from={win.from} data-window-to={win.to} data-view-start={shown.start} data-view-count={shown.count} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Summary</span>
          <select aria-label="Overview summary" value={summary} onChange={(e) => setSummary(e.target.value as OverviewSummary)}>
            {available.map((s) => (
              <option key={s} value={s}>
                {SUMMARY_LABELS[s].name}
              </option>
            ))}
          </select>
        </label>
        <label className="setting" title="What each pixel column shows of its tokens">
          <span>Column</span>
          <select aria-label="Overview column statistic" value={aggregate} onChange={(e) => setAggregate(e.target.value as BinAggregate)}>
            <option value="max">max</option>
            <option value="mean">mean</option>
            <option value="min">min</option>
          </select>
        </label>
        <label className="setting">
          <span>Scale</span>
          <select aria-label="Overview scale" value={log ? 'log' : 'linear'} onChange={(e) => setLog(e.target.value === 'log')}>
            <option value="linear">linear</option>
            <option value="log">log</option>
          </select>
        </label>
        <ColormapSelect label="Overview colormap" value={colormap} onChange={setColormap} />
        <label className="setting" title={`Tokens whose Δ, B and C the panels show (at most ${Math.min(T, TRACE_WINDOW_MAX)})`}>
          <span>Window</span>
          <input
            type="number"
            aria-label="Window size (tokens)"
            min={1}
            max={Math.min(T, TRACE_WINDOW_MAX)}
            step={256}
            value={size1}
            onChange={(e) => {
              const v = Number(e.target.value);
              if (Number.isFinite(v) && v >= 1) onWindow(clampWindow(win.from, v, T));
            }}
            style={{ width: 72 }}
          />
        </label>
        <button type="button" onClick={() => setView((v) => zoomView(v, 1.25, 0.5, T))} title="Zoom the overview in (wheel, +)">
          Zoom in
        </button>
        <button type="button" onClick={() => setView((v) => zoomView(v, 0.8, 0.5, T))} title="Zoom the overview out (wheel, −)">
          Zoom out
        </button>
        <button type="button" onClick={() => setView(fullView(T))}>
          Whole trace
        </button>
        <span data-testid="trace-overview-view">
          showing tokens {shown.start}–{shown.start + shown.count - 1} of {T} · window {win.from}–{win.to - 1} ({size1} tokens, at most {Math.min(T, TRACE_WINDOW_MAX)})
        </span>
      </div>
      <HeatmapAxes
        testId="trace-overview"
        plotHeight={layerOverviewHeight(L) + 24}
        x={{ label: 'token (position in the whole trace)', view: shown, total: T, texts: null }}
        y={{ label: 'layer', view: fullView(L), total: L, names: layerNames, selected: layerIndex }}
        colorbar={{ label: `${label.name}: ${label.unit}`, range, log, colormap }}
      >
        <canvas
          ref={canvas}
          tabIndex={0}
          data-testid="trace-overview-canvas"
          aria-label={`Layers × tokens of ${label.name} over the whole trace (${aggregate} per column). Click or drag to move the detail window; ←/→ move it by a tenth, PageUp/PageDown by a window, Home/End to the ends; wheel or + / − zoom.`}
          aria-describedby="trace-overview-readout"
          style={{ ...PLOT_CANVAS_STYLE, cursor: 'crosshair', touchAction: 'none' }}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={endDrag}
          onPointerCancel={endDrag}
          onPointerLeave={() => setHovered(null)}
          onKeyDown={onKey}
        />
        {left + width >= 0 && left <= 100 && (
          <div
            aria-hidden
            data-testid="trace-overview-window"
            style={{ position: 'absolute', top: 0, bottom: 0, left: `${Math.max(0, left)}%`, width: `max(3px, ${Math.min(100, left + width) - Math.max(0, left)}%)`, outline: '2px solid #ffb000', background: 'rgba(255, 176, 0, 0.12)', pointerEvents: 'none' }}
          />
        )}
      </HeatmapAxes>
      <PanelStatus busy={loading ? `loading window ${loading.from}–${loading.to - 1} of layer ${loading.layer}…` : null} error={error} testId="trace-window" />
      {note && (
        <p className="muted" role="status" data-testid="trace-window-paused" style={{ fontSize: 12, margin: 0 }}>
          {note}
        </p>
      )}
      <div id="trace-overview-readout" data-testid="trace-overview-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, lineHeight: '18px', fontFamily: 'ui-monospace, monospace' }}>
        {hovered ? (
          <span data-token={hovered.token} data-layer={trace.layers[hovered.row]} data-value={String(hovered.value)}>
            token {hovered.token} “{trace.tokens[hovered.token] ?? ''}” · layer {trace.layers[hovered.row]} · {label.name} = {hovered.value.toPrecision(6)} · column tokens {hovered.bin.from}–{hovered.bin.to - 1}: min {hovered.bin.min.toPrecision(4)} mean {hovered.bin.mean.toPrecision(4)} max {hovered.bin.max.toPrecision(4)}
          </span>
        ) : (
          <span className="muted">Hover for exact values; click or drag to move the detail window (the outlined tokens), which the panels below show in full.</span>
        )}
      </div>
    </section>
  );
}

/** In place of a panel that needs every token's Δ, B and C (hidden attention, compare, knockout) on a long trace. */
export function NeedsFullTrace({ what, testId }: { what: string; testId: string }) {
  return (
    <p className="muted" data-testid={testId} role="note">
      {what} needs a trace that keeps every token (detail “every token”, up to the full-detail size); this long trace keeps summaries and windows only. Trace a shorter input to use it.
    </p>
  );
}
