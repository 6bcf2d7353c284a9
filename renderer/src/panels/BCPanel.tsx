/**
 * B and C of the selected layer: tokens (left → right) × states (N, top → bottom) heatmaps drawn
 * by WebGL2 (heatmap-gl, every layer uploaded once per trace) on a diverging colour map centred
 * on 0 (range symmetric about 0), each with a token axis, a state axis and a colour bar
 * (chart-axes.tsx); ‖B_t‖ and ‖C_t‖ as a line chart; a hover readout (token, state, value), also
 * from the keyboard (each heatmap is focusable: arrow keys move a cursor cell, + / − zoom); zoom
 * (wheel: tokens, Shift + wheel: states, buttons) and pan (drag, buttons) on both axes shared by
 * both heatmaps (token-view.tsx, as in the Δ heatmap), and exports: CSV of the numbers behind the
 * panel (token, id, text, ‖B_t‖, ‖C_t‖, B[n], C[n]), NPY of B or C [T, groups·N] and SVG / PNG
 * figures of either heatmap for publication (publish-ui.tsx).
 */
import { useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
import { windowSuffix, type TraceView } from './long-trace';
import { selectTraceHoverToken, useStudio } from '../store';
import { type ColormapName } from './colormaps';
import { downloadCsv, downloadNpy, toCsv, type CsvColumn } from './csv';
import { useRenderer } from './DeltaHeatmap';
import { LineChart } from './LineChart';
import { rowNorms } from './memory';
import { valueRange } from './selection';
import { heatmapKey, useTokenView, ViewControls, type Cell } from './token-view';
import { ColormapSelect } from './ColormapSelect';
import { CellOutline, HeatmapAxes, PLOT_CANVAS_STYLE } from './chart-axes';
import { cellAt2d, symmetricRange } from './chart-scale';
import { wholeCells } from './publish';
import { PublishControls } from './publish-ui';

type Which = 'B' | 'C';

interface BCReadout {
  which: Which;
  token: number;
  state: number;
  value: number;
}

/** The CSV behind the panel: one row per token. */
export function bcColumns(trace: TraceView, layerIndex: number, texts: readonly string[]): CsvColumn[] {
  const N = trace.nGroups * trace.dState; // columns: groups in order, N states each
  const T = trace.ids.length;
  const B = trace.B[layerIndex] ?? new Float32Array(T * N);
  const C = trace.C[layerIndex] ?? new Float32Array(T * N);
  const column = (data: Float32Array, n: number) => Float32Array.from({ length: T }, (_, t) => data[t * N + n] as number);
  return [
    { name: 'token', values: Array.from({ length: T }, (_, t) => (trace.tokenOffset ?? 0) + t) },
    { name: 'id', values: trace.ids },
    { name: 'text', values: texts },
    { name: '|B_t|', values: rowNorms(B, N) },
    { name: '|C_t|', values: rowNorms(C, N) },
    ...Array.from({ length: N }, (_, n) => ({ name: `B[${n}]`, values: column(B, n) })),
    ...Array.from({ length: N }, (_, n) => ({ name: `C[${n}]`, values: column(C, n) })),
  ];
}

/** `trace`: a trace, or a window of a long one (token i is token tokenOffset + i: axes, readout and exports say so). */
export function BCPanel({ trace, layerIndex, texts }: { trace: TraceView; layerIndex: number; texts: readonly string[] }) {
  const T = trace.ids.length;
  const offset = trace.tokenOffset ?? 0;
  const suffix = windowSuffix(trace);
  const N = trace.nGroups * trace.dState; // columns: groups in order, N states each
  const layer = trace.layers[layerIndex];
  const hover = useStudio(selectTraceHoverToken);
  const [colormap, setColormap] = useState<ColormapName>('diverging');
  const [readout, setReadout] = useState<BCReadout | null>(null);
  const [cursor, setCursor] = useState<{ which: Which; cell: Cell } | null>(null);
  const canvasB = useRef<HTMLCanvasElement>(null);
  const canvasC = useRef<HTMLCanvasElement>(null);
  const b = useRenderer(canvasB, trace.B, T, N);
  const c = useRenderer(canvasC, trace.C, T, N);
  const B = trace.B[layerIndex];
  const C = trace.C[layerIndex];
  // Signed values: the range is symmetric about 0 so that 0 is the diverging map's white.
  const rangeB = useMemo(() => symmetricRange(valueRange(B ?? [], false)), [B]);
  const rangeC = useMemo(() => symmetricRange(valueRange(C ?? [], false)), [C]);
  const normB = useMemo(() => rowNorms(B ?? new Float32Array(T * N), N), [B, T, N]);
  const normC = useMemo(() => rowNorms(C ?? new Float32Array(T * N), N), [C, T, N]);
  const zoomables = useMemo(() => [canvasB, canvasC], []);
  const control = useTokenView(T, zoomables, N, 'bc');
  const { view, channelView } = control;
  const stateName = trace.nGroups > 1 ? 'state (group × N + n)' : 'state n';

  useEffect(() => {
    const id = requestAnimationFrame(() => {
      for (const [r, range] of [
        [b.renderer, rangeB],
        [c.renderer, rangeC],
      ] as const) {
        r?.resize();
        r?.draw({ layer: layerIndex, view, channelView, range, log: false, colormap, highlightToken: hover });
      }
    });
    return () => cancelAnimationFrame(id);
  }, [b.renderer, c.renderer, b.size, c.size, layerIndex, view, channelView, rangeB, rangeC, colormap, hover]);

  const show = (which: Which, cell: Cell | null) => {
    const data = which === 'B' ? B : C;
    if (!cell || !data || cell.token >= T || cell.channel >= N) {
      setReadout(null);
      return;
    }
    setReadout({ which, token: cell.token, state: cell.channel, value: data[cell.token * N + cell.channel] as number });
    useStudio.getState().setTraceHoverToken(cell.token);
  };

  const onMove = (which: Which) => (event: PointerEvent<HTMLCanvasElement>) => {
    if (control.dragMove(event)) return;
    const box = event.currentTarget.getBoundingClientRect();
    show(which, cellAt2d({ x: view, y: channelView }, event.clientX - box.left, event.clientY - box.top, box.width, box.height));
  };

  const onKey = (which: Which) => (event: KeyboardEvent<HTMLCanvasElement>) => {
    const next = heatmapKey(control, event.key, cursor?.which === which ? cursor.cell : null, T, N);
    if (next === undefined) return;
    event.preventDefault();
    setCursor({ which, cell: next });
    show(which, next);
  };

  const figure = (which: Which, range: { min: number; max: number }) => () => {
    const data = which === 'B' ? B : C;
    return data
      ? {
          spec: {
            title: `${which} of layer ${layer}: ${which === 'B' ? 'what each token writes into the state' : 'what each token reads out'}`,
            width: 900,
            height: 520,
            view: { x: wholeCells(view, T), y: wholeCells(channelView, N) },
            tokens: T,
            channels: N,
            texts,
            tokenOffset: offset,
            xLabel: 'token (position in the prompt)',
            yLabel: stateName,
            range,
            log: false,
            colormap,
            colorbarLabel: `${which}_t[n] (linear, centred on 0)`,
          },
          data,
        }
      : null;
  };

  const heatmap = (which: Which, ref: typeof canvasB, range: { min: number; max: number }) => (
    <div style={{ display: 'flex', flexDirection: 'column', flex: '1 1 auto', minHeight: 0 }}>
      <div className="muted" style={{ fontSize: 12, display: 'flex', gap: 8, alignItems: 'center', flexWrap: 'wrap' }}>
        <span>
          {which}_t: tokens × {trace.nGroups > 1 ? `${trace.nGroups} groups × ${trace.dState}` : N} states · {range.min.toPrecision(3)}…{range.max.toPrecision(3)}
        </span>
        <PublishControls label={which} name={`${which}-layer${layer}${suffix}`} build={figure(which, range)} />
        <button
          type="button"
          onClick={() => {
            const data = which === 'B' ? B : C;
            if (data) downloadNpy({ dtype: '<f4', shape: [T, N], data }, `${which}-layer${layer}${suffix}.npy`);
          }}
        >
          Export {which} NPY
        </button>
      </div>
      <HeatmapAxes
        testId={`bc-${which}`}
        x={{ label: 'token', view, total: T, texts, offset }}
        y={{ label: stateName, view: channelView, total: N, groups: { count: trace.nGroups, size: trace.dState } }}
        colorbar={{ label: which, range, log: false, colormap }}
        style={{ flex: `1 1 ${Math.min(160, Math.max(64, 6 * N)) + 30}px`, minHeight: 54 }}
      >
        <canvas
          ref={ref}
          tabIndex={0}
          data-testid={`bc-heatmap-${which}`}
          aria-label={`${which} of layer ${layer}: tokens × states. Arrow keys move the cursor, + and − zoom.`}
          aria-describedby="bc-readout"
          style={{ ...PLOT_CANVAS_STYLE, cursor: 'crosshair', touchAction: 'none' }}
          {...control.dragHandlers}
          onPointerMove={onMove(which)}
          onPointerLeave={() => setReadout(null)}
          onKeyDown={onKey(which)}
          onBlur={() => setCursor((c) => (c?.which === which ? null : c))}
        />
        {cursor?.which === which && <CellOutline x={view} y={channelView} token={cursor.cell.token} channel={cursor.cell.channel} colour="#000000" testId={`bc-cursor-${which}`} />}
      </HeatmapAxes>
    </div>
  );

  const error = b.error ?? c.error;
  return (
    <section aria-label="B and C" data-testid="bc-panel" data-hover-token={hover ?? undefined} style={{ display: 'flex', flexDirection: 'column', gap: 4, flex: '1 1 auto', minHeight: 0 }}>
      <h4 style={{ margin: '8px 0 0' }}>B and C: what each token writes into the state and reads out (layer {layer})</h4>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <ColormapSelect label="B/C colormap" value={colormap} onChange={setColormap} />
        <button type="button" onClick={() => downloadCsv(toCsv(bcColumns(trace, layerIndex, texts)), `bc-layer${layer}${suffix}.csv`)}>
          Export B/C CSV
        </button>
        <ViewControls control={control} tokens={T} label="B/C" channels={N} channelName="states" />
        <span data-testid="bc-view">
          tokens {offset + Math.floor(view.start)}–{offset + Math.ceil(view.start + view.count) - 1} of {trace.tokenOffset !== undefined ? `the window ${offset}–${offset + T - 1}` : T}
        </span>
      </div>
      {error && <p className="error">{error}</p>}
      {heatmap('B', canvasB, rangeB)}
      {heatmap('C', canvasC, rangeC)}
      <div id="bc-readout" data-testid="bc-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, lineHeight: '18px', flexShrink: 0, marginTop: 4, fontFamily: 'ui-monospace, monospace' }}>
        {readout ? (
          <span data-which={readout.which} data-token={offset + readout.token} data-state={readout.state} data-layer={layer} data-value={String(readout.value)}>
            token {offset + readout.token} “{texts[readout.token] ?? ''}” · {trace.nGroups > 1 ? `group ${Math.floor(readout.state / trace.dState)} state ${readout.state % trace.dState}` : `state ${readout.state}`} · layer {layer} · {readout.which} = {readout.value.toPrecision(6)}
          </span>
        ) : (
          <span className="muted">Hover B or C for values, or focus either and use the arrow keys.</span>
        )}
      </div>
      <LineChart
        label={`‖B_t‖ and ‖C_t‖ of layer ${layer}`}
        testId="bc-norms"
        xLabel="token"
        yLabel="L2 norm"
        series={[
          { name: '‖B_t‖', values: normB, colour: '#4fc3f7' },
          { name: '‖C_t‖', values: normC, colour: '#ff8a65' },
        ]}
        figure={{ label: '‖B‖, ‖C‖', name: `bc-norms-layer${layer}${suffix}` }}
        xOffset={offset}
        marker={hover}
      />
    </section>
  );
}
