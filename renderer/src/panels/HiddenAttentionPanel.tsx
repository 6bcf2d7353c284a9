/**
 * Hidden attention (Ali et al. 2024): the implicit attention matrix of the selected layer,
 * α[i, j] = Σ_n C_i[n]·exp(A[d, n]·(S_i − S_j))·Δ_j[d]·B_j[n] (S the prefix sum of Δ), for one
 * channel (Mamba-1; a head for Mamba-2) or the mean over all of them. The engine computes it on
 * the GPU on demand (`hiddenAttention` request, of the trace on screen by its id); the panel shows |α|, min-max
 * scaled over the causal entries j ≤ i, on a log or linear scale (WebGL2 heatmap: row i, the token
 * that reads, top → bottom; column j, the token read, left → right). Hovering (or moving the
 * keyboard cursor over) a cell shows α there; clicking a row (or Enter, or typing a row) asks the
 * engine for that row and shows which earlier tokens token i reads, as a line chart over the whole
 * context with axes. The matrix has axes (token text on the j axis when zoomed in enough) and a
 * colour bar (chart-axes.tsx), and zooms and pans on both axes (wheel: columns, Shift + wheel:
 * rows, drag, buttons, + / − on the focused matrix: token-view.tsx), so long inputs can be read.
 * Exports: SVG / PNG figures of the shown part for publication (publish-ui.tsx), CSV of the
 * matrix (raw α) and of the row.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import { UnitPicker, unitText, type Unit } from './UnitPicker';
import type { HiddenAttentionResult, TraceResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { selectTraceHoverToken, useStudio } from '../store';
import {
  absRange,
  attentionMatrixColumns,
  attentionRowColumns,
  attentionTexture,
  causalAbsRange,
  causalAbsRow,
  moveCell,
  scaledAbs,
  topSources,
} from './analysis';
import { type ColormapName } from './colormaps';
import { downloadCsv, toCsv } from './csv';
import { LineChart } from './LineChart';
import { CellOutline, HeatmapAxes, PLOT_CANVAS_STYLE } from './chart-axes';
import { cellAt2d, keepVisible } from './chart-scale';
import { wholeCells } from './publish';
import { PublishControls } from './publish-ui';
import { useTokenView, ViewControls } from './token-view';
import { zoomView } from './selection';
import { ColormapSelect } from './ColormapSelect';
import { useRenderer } from './DeltaHeatmap';
import { PanelStatus } from './PanelStatus';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

interface Computed {
  trace: TraceResult;
  layer: number;
  unit: Unit;
  alpha: Float32Array;
}

interface RowComputed extends Computed {
  row: number;
}

/** Asks the engine for hidden attention of `trace` (by its id). Checks the answer has the trace's shape. */
export async function requestHiddenAttention(engine: EngineClient, modelId: string, trace: TraceResult, layer: number, unit: Unit, row?: number): Promise<HiddenAttentionResult> {
  const result = await engine.request('hiddenAttention', { modelId, traceId: trace.traceId, layer, unit, ...(row !== undefined ? { row } : {}) });
  return checkedHiddenAttention(result, trace, row);
}

/** Checks the engine's hidden attention has the shape of `trace` (the matrix, or one row). */
export function checkedHiddenAttention(result: HiddenAttentionResult, trace: TraceResult, row?: number): HiddenAttentionResult {
  const T = trace.ids.length;
  const want = row === undefined ? T * T : T;
  if (result.tokens !== T || result.alpha.length !== want) {
    throw new Error(`The engine's hidden attention has ${result.tokens} tokens (${result.alpha.length} values), not the ${T} of the trace on screen: trace again.`);
  }
  return result;
}

export interface HiddenAttentionPanelProps {
  modelId: string;
  engine: EngineClient;
  trace: TraceResult;
  layerIndex: number;
  texts: readonly string[];
}

export function HiddenAttentionPanel({ modelId, engine, trace, layerIndex, texts }: HiddenAttentionPanelProps) {
  const T = trace.ids.length;
  const layer = trace.layers[layerIndex] ?? 0;
  const unitName = trace.deltaUnit;
  const [unitKind, setUnitKind] = useState<'mean' | 'one'>('mean');
  const [unitIndex, setUnitIndex] = useState(0);
  const unit: Unit = unitKind === 'mean' ? 'mean' : Math.min(unitIndex, trace.deltaWidth - 1);
  const [log, setLog] = useState(false);
  const [colormap, setColormap] = useState<ColormapName>('magma');
  const [matrix, setMatrix] = useState<Computed | null>(null);
  const [row, setRow] = useState<RowComputed | null>(null);
  const [rowInput, setRowInput] = useState<string>(String(T - 1));
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cursor, setCursor] = useState<{ row: number; col: number } | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const work = useLongWork(engine);
  // The token hovered in any panel: its column (the token read) is lit in the matrix.
  const hover = useStudio(selectTraceHoverToken);

  const exact = matrix && matrix.trace === trace && matrix.layer === layer && matrix.unit === unit ? matrix : null;
  // The last matrix of this trace stays on screen (labelled with its own layer and unit), dimmed
  // while a new one is computed or when it is not of the selected layer and unit.
  const current = exact ?? (matrix && matrix.trace === trace ? matrix : null);
  const stale = current !== null && (work.running || current !== exact);
  const staleLabel = work.running ? 'updating…' : `layer ${current?.layer ?? ''}, ${unitText(current?.unit ?? 'mean', unitName)}: compute again for the selected layer and ${unitName}`;
  const currentRow = row && row.trace === trace && row.layer === layer && row.unit === unit ? row : null;
  const texture = useMemo(() => (current ? attentionTexture(current.alpha, T) : null), [current, T]);
  const range = useMemo(() => (current ? causalAbsRange(current.alpha, T, log) : currentRow ? absRange(currentRow.alpha.subarray(0, currentRow.row + 1), log) : { min: 0, max: 1 }), [current, currentRow, T, log]);
  const matrices = useMemo(() => (texture ? [texture] : null), [texture]);
  const gl = useRenderer(canvas, matrices, T, T);
  // Columns j along x (the token view), rows i along y (the channel view).
  const zoomables = useMemo(() => [canvas], []);
  const control = useTokenView(T, zoomables, T);
  const { view, channelView } = control;

  useEffect(() => {
    if (!gl.renderer) return;
    const id = requestAnimationFrame(() => {
      gl.renderer?.resize();
      gl.renderer?.draw({ layer: 0, view, channelView, range, log, colormap, highlightToken: hover });
    });
    return () => cancelAnimationFrame(id);
  }, [gl.renderer, gl.size, T, view, channelView, range, log, colormap, hover]);

  const computeMatrix = useCallback(() => {
    if (busy || work.running) return;
    setError(null);
    work.run('hiddenAttention', { modelId, traceId: trace.traceId, layer, unit }).then(
      (result) => {
        // null: cancelled, the last matrix stays.
        if (result) setMatrix({ trace, layer, unit, alpha: checkedHiddenAttention(result, trace).alpha });
      },
      (e: unknown) => setError(`Hidden attention failed: ${message(e)}`),
    );
  }, [busy, work, layer, unit, modelId, trace]);

  const showRow = useCallback(
    (i: number) => {
      if (busy || work.running) return;
      // The engine checks the row is a token of its trace (and says so when it is not).
      if (!(Number.isInteger(i) && i >= 0)) {
        setError(`Row “${i}” is not a token: type a whole number 0 … ${T - 1}.`);
        return;
      }
      setRowInput(String(i));
      setBusy(`Computing row ${i} of layer ${layer}'s hidden attention on the GPU…`);
      setError(null);
      requestHiddenAttention(engine, modelId, trace, layer, unit, i).then(
        (result) => {
          setRow({ trace, layer, unit, row: i, alpha: result.alpha });
          setBusy(null);
        },
        (e: unknown) => {
          setError(`Hidden attention (row ${i}) failed: ${message(e)}`);
          setBusy(null);
        },
      );
    },
    [busy, work.running, T, layer, unit, engine, modelId, trace],
  );

  const cellFromEvent = (event: MouseEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    const cell = cellAt2d({ x: view, y: channelView }, event.clientX - box.left, event.clientY - box.top, box.width, box.height);
    return cell ? { row: cell.channel, col: cell.token } : null;
  };

  const onKey = (event: KeyboardEvent<HTMLCanvasElement>) => {
    if (event.key === 'Enter' || event.key === ' ') {
      if (cursor) showRow(cursor.row);
      event.preventDefault();
      return;
    }
    if (event.key === '+' || event.key === '=' || event.key === '-' || event.key === '_') {
      const factor = event.key === '+' || event.key === '=' ? 2 : 0.5;
      const at = (index: number, v: { start: number; count: number }) => Math.min(1, Math.max(0, (index + 0.5 - v.start) / v.count));
      control.setView(zoomView(view, factor, cursor ? at(cursor.col, view) : 0.5, T));
      control.setChannelView(zoomView(channelView, factor, cursor ? at(cursor.row, channelView) : 0.5, T));
      event.preventDefault();
      return;
    }
    const next = moveCell(cursor, event.key, T);
    if (next) {
      setCursor(next);
      control.setView(keepVisible(view, next.col, T));
      control.setChannelView(keepVisible(channelView, next.row, T));
      useStudio.getState().setTraceHoverToken(next.col);
      event.preventDefault();
    }
  };

  const at = current && cursor ? { ...cursor, alpha: current.alpha[cursor.row * T + cursor.col] as number } : null;
  const sources = useMemo(() => (currentRow ? topSources(currentRow.alpha, currentRow.row, 8) : []), [currentRow]);
  const rowCurve = useMemo(() => (currentRow ? causalAbsRow(currentRow.alpha, currentRow.row) : null), [currentRow]);
  const rangeText = `${range.min.toPrecision(3)} … ${range.max.toPrecision(3)}`;

  return (
    <section aria-label="Hidden attention" data-testid="hidden-attention-panel" data-hover-token={hover ?? undefined} aria-busy={busy !== null || work.running} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Hidden attention: which earlier tokens each token reads (layer {layer})</h4>
      <div className="muted" style={{ fontSize: 12 }}>
        α[i, j] = Σₙ C_i[n]·exp(A·(S_i − S_j))·Δ_j·B_j[n] (Ali et al. 2024), S the prefix sum of Δ; shown as |α| scaled min-max over j ≤ i.
      </div>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <UnitPicker label="Hidden attention" unitName={unitName} width={trace.deltaWidth} kind={unitKind} index={unitIndex} onKind={setUnitKind} onIndex={setUnitIndex} />
        <ColormapSelect label="Hidden attention colormap" value={colormap} onChange={setColormap} />
        <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
          <input type="checkbox" aria-label="Hidden attention log scale" checked={log} onChange={(e) => setLog(e.target.checked)} />
          log scale
        </label>
        <button type="button" className="primary" onClick={computeMatrix} disabled={busy !== null || work.running}>
          Compute hidden attention
        </button>
        <label className="setting">
          <span>Row i</span>
          <input
            type="number"
            aria-label="Hidden attention row"
            min={0}
            max={T - 1}
            step={1}
            value={rowInput}
            onChange={(e) => setRowInput(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') showRow(rowInput.trim() === '' ? NaN : Number(rowInput));
            }}
            style={{ width: 80 }}
          />
        </label>
        <button type="button" onClick={() => showRow(rowInput.trim() === '' ? NaN : Number(rowInput))} disabled={busy !== null || work.running}>
          Show row
        </button>
        <PublishControls
          label="attention"
          name={`hidden-attention-layer${layer}-${unit}`}
          build={() =>
            current && texture
              ? {
                  spec: {
                    title: `Hidden attention of layer ${layer}, ${unitText(unit, unitName)}: |α[i, j]|`,
                    width: 900,
                    height: 520,
                    view: { x: wholeCells(view, T), y: wholeCells(channelView, T) },
                    tokens: T,
                    channels: T,
                    texts,
                    xLabel: 'token j (the token read)',
                    yLabel: 'token i (the reader)',
                    range,
                    log,
                    colormap,
                    colorbarLabel: `|α| (${log ? 'log' : 'linear'}, min–max over j ≤ i)`,
                  },
                  data: texture,
                }
              : null
          }
        />
        <button
          type="button"
          disabled={!current}
          onClick={() => current && downloadCsv(toCsv(attentionMatrixColumns(current.alpha, T, trace.ids, texts)), `hidden-attention-layer${current.layer}-${current.unit}.csv`)}
        >
          Export attention CSV
        </button>
      </div>
      {work.running && (
        <WorkProgressBar
          label={`Computing the ${T} × ${T} hidden attention of layer ${layer} (${unitText(unit, unitName)})`}
          progress={work.progress}
          onCancel={work.cancel}
          testId="hidden-attention"
        />
      )}
      <PanelStatus busy={busy} error={error ?? gl.error} testId="hidden-attention" />
      {current ? (
        <Stale stale={stale} label={staleLabel} testId="hidden-attention-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div className="muted" style={{ fontSize: 12 }} data-testid="hidden-attention-range" data-min={String(range.min)} data-max={String(range.max)}>
            layer {current.layer}, {unitText(current.unit, unitName)} · |α| {rangeText} ({log ? 'log' : 'linear'}) · rows i (reader) top → bottom, columns j (read) left → right · click a row, or focus the matrix and use the arrow keys and Enter
          </div>
          <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
            <ViewControls control={control} tokens={T} label="Hidden attention" channels={T} channelName="rows" />
            <span data-testid="hidden-attention-view">
              columns j {Math.floor(view.start)}–{Math.ceil(view.start + view.count) - 1} · rows i {Math.floor(channelView.start)}–{Math.ceil(channelView.start + channelView.count) - 1} of {T}
            </span>
          </div>
          <HeatmapAxes
            testId="hidden-attention"
            plotHeight={420}
            x={{ label: 'token j (the token read)', view, total: T, texts }}
            y={{ label: 'token i (the reader)', view: channelView, total: T, texts }}
            colorbar={{ label: '|α|', range, log, colormap }}
            style={{ width: 'min(100%, 568px)' }}
          >
            <canvas
              ref={canvas}
              tabIndex={0}
              data-testid="hidden-attention-canvas"
              aria-label={`Hidden attention of layer ${current.layer}, ${unitText(current.unit, unitName)}: ${T} × ${T}`}
              aria-describedby="hidden-attention-readout"
              style={{ ...PLOT_CANVAS_STYLE, cursor: 'crosshair', touchAction: 'none' }}
              {...control.dragHandlers}
              onPointerMove={(event) => {
                if (control.dragMove(event)) return;
                const cell = cellFromEvent(event);
                setCursor(cell);
                if (cell) useStudio.getState().setTraceHoverToken(cell.col);
              }}
              onClick={(event) => {
                if (control.dragged()) return; // the end of a pan
                const cell = cellFromEvent(event);
                if (cell) showRow(cell.row);
              }}
              onKeyDown={onKey}
            />
            {currentRow && <CellOutline x={view} y={channelView} token={null} channel={currentRow.row} colour="#ffb000" />}
            {cursor && <CellOutline x={view} y={channelView} token={cursor.col} channel={cursor.row} />}
          </HeatmapAxes>
          <div id="hidden-attention-readout" data-testid="hidden-attention-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
            {at ? (
              <span data-row={at.row} data-col={at.col} data-layer={current.layer} data-unit={String(current.unit)} data-alpha={String(at.alpha)} data-scaled={String(scaledAbs(at.alpha, range, log))}>
                token {at.row} “{texts[at.row] ?? ''}” reads token {at.col} “{texts[at.col] ?? ''}”: α = {at.alpha.toPrecision(6)} · scaled |α| {scaledAbs(at.alpha, range, log).toFixed(3)}
                {at.col > at.row ? ' (above the diagonal: a token cannot read later tokens)' : ''}
              </span>
            ) : (
              <span className="muted">Hover the matrix (or focus it and use the arrow keys) for α; click a row to see what that token reads.</span>
            )}
          </div>
        </Stale>
      ) : (
        !busy &&
        !work.running && (
          <div className="muted" style={{ fontSize: 12 }}>
            Compute the matrix of layer {layer} ({unitText(unit, unitName)}), or show one row without it.
          </div>
        )
      )}
      {currentRow && rowCurve && (
        <div data-testid="hidden-attention-row" data-row={currentRow.row} data-layer={layer} data-unit={String(unit)} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div style={{ fontSize: 12 }}>
            Row {currentRow.row} “{texts[currentRow.row] ?? ''}”: what it reads, |α[{currentRow.row}, j]| for j ≤ {currentRow.row}
          </div>
          <LineChart label={`Hidden attention row ${currentRow.row}, layer ${layer}`} testId="hidden-attention-row-chart" xLabel="token j (the token read)" yLabel={`|α[${currentRow.row}, j]|`} series={[{ name: `|α[${currentRow.row}, j]|`, values: rowCurve, colour: '#ff8a65' }]} marker={currentRow.row} figure={{ label: 'row', name: `hidden-attention-row${currentRow.row}-layer${layer}` }} />
          <ol data-testid="hidden-attention-sources" style={{ margin: 0, paddingLeft: 20, fontSize: 12, fontFamily: 'ui-monospace, monospace' }}>
            {sources.map((s) => (
              <li key={s.token} data-token={s.token} data-alpha={String(s.alpha)}>
                token {s.token} “{texts[s.token] ?? ''}”: α = {s.alpha.toPrecision(6)}
              </li>
            ))}
          </ol>
          <div className="actions" style={{ fontSize: 12 }}>
            <button
              type="button"
              onClick={() => downloadCsv(toCsv(attentionRowColumns(currentRow.alpha, trace.ids, texts, range, log)), `hidden-attention-layer${layer}-${unit}-row${currentRow.row}.csv`)}
            >
              Export row CSV
            </button>
          </div>
        </div>
      )}
    </section>
  );
}
