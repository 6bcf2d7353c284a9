/**
 * The Δ heatmap: tokens (left → right) × channels (d_inner, top → bottom) of the selected layer,
 * drawn by WebGL2 from textures uploaded once per trace; above it, a layers × tokens overview of
 * ‖Δ_t‖ (rows labelled "layer 0"…, the selected layer marked) that selects the layer on click.
 * Both have axes and a colour bar with values (chart-axes.tsx). Log or linear scale, colormap
 * choice, zoom (wheel: tokens, Shift + wheel: channels, buttons) and pan (drag, buttons) on both
 * axes (token-view.tsx, shared with the B/C panel), a hover readout (token, channel, value); the
 * heatmap is focusable: arrow keys move a cursor cell (the readout follows), + / − zoom. The
 * hovered token is highlighted in both panels and the token strip. Exports: NPY of the layer's Δ
 * [T, width], and SVG / PNG figures of the shown view for publication (publish-ui.tsx). The
 * heatmap grows with its panel's height (PanelFrame).
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent, type PointerEvent, type RefObject } from 'react';
import { useElementSize } from './use-element-size';
import type { TraceResult } from '../../../app/engine/protocol';
import { windowSuffix, type TraceView } from './long-trace';
import { selectTraceHoverToken, useStudio } from '../store';
import { type ColormapName } from './colormaps';
import { downloadNpy } from './csv';
import { HeatmapRenderer } from './heatmap-gl';
import { cellAt, fullView, readoutAt, valueRange, type Readout } from './selection';
import { heatmapKey, useTokenView, ViewControls, type Cell } from './token-view';
import { ColormapSelect } from './ColormapSelect';
import { CellOutline, HeatmapAxes, PLOT_CANVAS_STYLE } from './chart-axes';
import { cellAt2d, layerOverviewHeight } from './chart-scale';
import { wholeCells } from './publish';
import { PublishControls } from './publish-ui';

const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);

/**
 * Keeps one HeatmapRenderer on a canvas with the given matrices uploaded (none while `layers` is null); `size` changes when the
 * canvas's CSS size does (a panel resized), so a draw effect that depends on it redraws sharp.
 */
export function useRenderer(canvas: RefObject<HTMLCanvasElement | null>, layers: readonly Float32Array[] | null, tokens: number, channels: number) {
  const [renderer, setRenderer] = useState<HeatmapRenderer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const size = useElementSize(canvas);
  useEffect(() => {
    const el = canvas.current;
    if (!el || !layers) return; // null: nothing to show yet
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
  return { renderer, error, size };
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
  /** A trace, or a window of a long one (its token i is token tokenOffset + i: axes, readout and exports say so). */
  trace: TraceView;
  layerIndex: number;
  texts: readonly string[];
  onLayer(index: number): void;
}

export function DeltaHeatmap({ trace, layerIndex, texts, onLayer }: DeltaHeatmapProps) {
  const T = trace.ids.length;
  const Di = trace.deltaWidth;
  const L = trace.layers.length;
  const offset = trace.tokenOffset ?? 0;
  const hover = useStudio(selectTraceHoverToken);
  const [colormap, setColormap] = useState<ColormapName>('viridis');
  const [log, setLog] = useState(true);
  const [readout, setReadout] = useState<Readout | null>(null);
  const [cursor, setCursor] = useState<Cell | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const overview = useRef<HTMLCanvasElement>(null);
  const zoomables = useMemo(() => [canvas], []);
  const control = useTokenView(T, zoomables, Di, 'delta');
  const { view, channelView } = control;
  const main = useRenderer(canvas, trace.delta, T, Di);
  const overviewData = useMemo(() => [overviewMatrix(trace)], [trace]);
  const over = useRenderer(overview, overviewData, T, L);
  const delta = trace.delta[layerIndex];
  const range = useMemo(() => valueRange(delta ?? [], log), [delta, log]);
  const overviewRange = useMemo(() => valueRange(overviewData[0] ?? [], log), [overviewData, log]);
  const layerNames = useMemo(() => trace.layers.map((l) => `layer ${l}`), [trace.layers]);

  useEffect(() => {
    const id = requestAnimationFrame(() => {
      main.renderer?.resize();
      main.renderer?.draw({ layer: layerIndex, view, channelView, range, log, colormap, highlightToken: hover });
      over.renderer?.resize();
      over.renderer?.draw({ layer: 0, view, range: overviewRange, log, colormap, highlightToken: hover });
    });
    return () => cancelAnimationFrame(id);
  }, [main.renderer, over.renderer, main.size, over.size, layerIndex, view, channelView, range, overviewRange, log, colormap, hover]);

  const cellOf = (event: MouseEvent<HTMLCanvasElement>, channels: number) => {
    const box = event.currentTarget.getBoundingClientRect();
    return cellAt(view, channels, event.clientX - box.left, event.clientY - box.top, box.width, box.height);
  };

  const show = (cell: Cell | null) => {
    const r = cell ? readoutAt(trace, layerIndex, cell.token, cell.channel, texts) : null;
    setReadout(r);
    setHover(r ? r.token : null);
  };

  const onMove = (event: PointerEvent<HTMLCanvasElement>) => {
    if (control.dragMove(event)) return;
    const box = event.currentTarget.getBoundingClientRect();
    show(cellAt2d({ x: view, y: channelView }, event.clientX - box.left, event.clientY - box.top, box.width, box.height));
  };

  const onKey = (event: KeyboardEvent<HTMLCanvasElement>) => {
    const next = heatmapKey(control, event.key, cursor, T, Di);
    if (next === undefined) return;
    event.preventDefault();
    setCursor(next);
    show(next);
  };

  const figure = () =>
    delta
      ? {
          spec: {
            title: `Δ of layer ${layer}: tokens × ${trace.deltaUnit}s`,
            width: 900,
            height: 520,
            view: { x: wholeCells(view, T), y: wholeCells(channelView, Di) },
            tokens: T,
            channels: Di,
            texts,
            tokenOffset: offset,
            xLabel: 'token (position in the prompt)',
            yLabel: `${trace.deltaUnit} (index)`,
            range,
            log,
            colormap,
            colorbarLabel: `Δ, discretization step (${log ? 'log' : 'linear'} scale)`,
          },
          data: delta,
        }
      : null;

  const error = main.error ?? over.error;
  const layer = trace.layers[layerIndex];
  return (
    <section aria-label="Δ heatmap" data-testid="delta-heatmap" data-hover-token={hover ?? undefined} style={{ display: 'flex', flexDirection: 'column', flex: '1 1 auto', minHeight: 0 }}>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <ColormapSelect label="Colormap" value={colormap} onChange={setColormap} />
        <label className="setting">
          <span>Scale</span>
          <select aria-label="Scale" value={log ? 'log' : 'linear'} onChange={(e) => setLog(e.target.value === 'log')}>
            <option value="log">log</option>
            <option value="linear">linear</option>
          </select>
        </label>
        <ViewControls control={control} tokens={T} label="Δ heatmap" channels={Di} channelName={`${trace.deltaUnit}s`} />
        <button type="button" onClick={() => delta && downloadNpy({ dtype: '<f4', shape: [T, Di], data: delta }, `delta-layer${layer}${windowSuffix(trace)}.npy`)}>
          Export Δ NPY
        </button>
        <PublishControls label="Δ" name={`delta-layer${layer}${windowSuffix(trace)}`} build={figure} />
        <span data-testid="heatmap-view" data-x-start={view.start} data-x-count={view.count} data-y-start={channelView.start} data-y-count={channelView.count}>
          tokens {offset + Math.floor(view.start)}–{offset + Math.ceil(view.start + view.count) - 1} of {trace.tokenOffset !== undefined ? `the window ${offset}–${offset + T - 1}` : T} · {trace.deltaUnit}s {Math.floor(channelView.start)}–{Math.ceil(channelView.start + channelView.count) - 1} of {Di} · Δ {range.min.toPrecision(3)}…
          {range.max.toPrecision(3)} ({log ? 'log' : 'linear'})
        </span>
      </div>
      {error && <p className="error">{error}</p>}
      <div style={{ fontSize: 12 }} className="muted">
        ‖Δ_t‖ per layer (click a row to select the layer)
      </div>
      <HeatmapAxes
        testId="layer-overview"
        plotHeight={layerOverviewHeight(L)}
        x={{ view, total: T, texts, offset }}
        y={{ label: 'layer', view: fullView(L), total: L, names: layerNames, selected: layerIndex }}
        colorbar={{ label: '‖Δ_t‖', range: overviewRange, log, colormap }}
        style={{ flexShrink: 0 }}
      >
        <canvas
          ref={overview}
          data-testid="layer-overview"
          aria-label="Layers × tokens overview of ‖Δ_t‖"
          style={{ ...PLOT_CANVAS_STYLE, cursor: 'pointer' }}
          onClick={(event) => {
            const cell = cellOf(event, L);
            if (cell) onLayer(cell.channel);
          }}
          onMouseMove={(event) => setHover(cellOf(event, L)?.token ?? null)}
        />
        <CellOutline x={view} y={fullView(L)} token={null} channel={layerIndex} colour="#ffb000" testId="layer-overview-selected" />
      </HeatmapAxes>
      <HeatmapAxes
        testId="heatmap"
        x={{ label: 'token', view, total: T, texts, offset }}
        y={{ label: trace.deltaUnit, view: channelView, total: Di }}
        colorbar={{ label: 'Δ', range, log, colormap }}
        style={{ flex: '1 1 286px', minHeight: 78, marginTop: 4 }}
      >
        <canvas
          ref={canvas}
          tabIndex={0}
          data-testid="heatmap-canvas"
          aria-label={`Δ of layer ${trace.layers[layerIndex]}: tokens × ${trace.deltaUnit}s. Arrow keys move the cursor, + and − zoom.`}
          aria-describedby="heatmap-readout"
          style={{ ...PLOT_CANVAS_STYLE, cursor: 'crosshair', touchAction: 'none' }}
          {...control.dragHandlers}
          onPointerMove={onMove}
          onPointerLeave={() => {
            setReadout(null);
          }}
          onKeyDown={onKey}
          onBlur={() => setCursor(null)}
        />
        {cursor && <CellOutline x={view} y={channelView} token={cursor.token} channel={cursor.channel} testId="heatmap-cursor" />}
      </HeatmapAxes>
      <div id="heatmap-readout" data-testid="heatmap-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, lineHeight: '18px', flexShrink: 0, marginTop: 4, fontFamily: 'ui-monospace, monospace' }}>
        {readout ? (
          <span data-token={offset + readout.token} data-channel={readout.channel} data-layer={readout.layer} data-value={String(readout.value)}>
            token {offset + readout.token} “{readout.text}” (id {readout.id}) · {trace.deltaUnit} {readout.channel} · layer {readout.layer} · Δ = {readout.value.toPrecision(6)}
          </span>
        ) : (
          <span className="muted">Hover the heatmap for values, or focus it and use the arrow keys; drag or use the wheel (Shift: {trace.deltaUnit}s) to pan and zoom.</span>
        )}
      </div>
    </section>
  );
}
