/**
 * Hidden attention (Ali et al. 2024): the implicit attention matrix of the selected layer,
 * α[i, j] = Σ_n C_i[n]·exp(A[d, n]·(S_i − S_j))·Δ_j[d]·B_j[n] (S the prefix sum of Δ), for one
 * channel (Mamba-1; a head for Mamba-2) or the mean over all of them. The engine computes it on
 * the GPU on demand (`hiddenAttention` request, of the trace on screen by its id); the panel shows |α|, min-max
 * scaled over the causal entries j ≤ i, on a log or linear scale (WebGL2 heatmap: row i, the token
 * that reads, top → bottom; column j, the token read, left → right). Hovering (or moving the
 * keyboard cursor over) a cell shows α there; clicking a row (or Enter, or typing a row) asks the
 * engine for that row and shows which earlier tokens token i reads. Exports: PNG of the matrix,
 * CSV of the matrix (raw α) and of the row.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent } from 'react';
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
  matrixCellAt,
  moveCell,
  scaledAbs,
  topSources,
} from './analysis';
import { type ColormapName } from './colormaps';
import { downloadCanvasPng, downloadCsv, toCsv } from './csv';
import { LineChart } from './LineChart';
import { fullView } from './selection';
import { ColormapSelect } from './ColormapSelect';
import { useRenderer } from './DeltaHeatmap';
import { PanelStatus } from './PanelStatus';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

type Unit = number | 'mean';

const unitText = (u: Unit, name: string) => (u === 'mean' ? `mean over ${name}s` : `${name} ${u}`);

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
  // The token hovered in any panel: its column (the token read) is lit in the matrix.
  const hover = useStudio(selectTraceHoverToken);

  const current = matrix && matrix.trace === trace && matrix.layer === layer && matrix.unit === unit ? matrix : null;
  const currentRow = row && row.trace === trace && row.layer === layer && row.unit === unit ? row : null;
  const texture = useMemo(() => (current ? attentionTexture(current.alpha, T) : null), [current, T]);
  const range = useMemo(() => (current ? causalAbsRange(current.alpha, T, log) : currentRow ? absRange(currentRow.alpha.subarray(0, currentRow.row + 1), log) : { min: 0, max: 1 }), [current, currentRow, T, log]);
  const matrices = useMemo(() => (texture ? [texture] : null), [texture]);
  const gl = useRenderer(canvas, matrices, T, T);

  useEffect(() => {
    if (!gl.renderer) return;
    const id = requestAnimationFrame(() => {
      gl.renderer?.resize();
      gl.renderer?.draw({ layer: 0, view: fullView(T), range, log, colormap, highlightToken: hover });
    });
    return () => cancelAnimationFrame(id);
  }, [gl.renderer, gl.size, T, range, log, colormap, hover]);

  const computeMatrix = useCallback(() => {
    if (busy) return;
    setBusy(`Computing the ${T} × ${T} hidden attention of layer ${layer} (${unitText(unit, unitName)}) on the GPU…`);
    setError(null);
    requestHiddenAttention(engine, modelId, trace, layer, unit).then(
      (result) => {
        setMatrix({ trace, layer, unit, alpha: result.alpha });
        setBusy(null);
      },
      (e: unknown) => {
        setError(`Hidden attention failed: ${message(e)}`);
        setBusy(null);
      },
    );
  }, [busy, T, layer, unit, unitName, engine, modelId, trace]);

  const showRow = useCallback(
    (i: number) => {
      if (busy) return;
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
    [busy, T, layer, unit, engine, modelId, trace],
  );

  const cellFromEvent = (event: PointerEvent<HTMLCanvasElement>) => {
    const box = event.currentTarget.getBoundingClientRect();
    return matrixCellAt(T, event.clientX - box.left, event.clientY - box.top, box.width, box.height);
  };

  const onKey = (event: KeyboardEvent<HTMLCanvasElement>) => {
    if (event.key === 'Enter' || event.key === ' ') {
      if (cursor) showRow(cursor.row);
      event.preventDefault();
      return;
    }
    const next = moveCell(cursor, event.key, T);
    if (next) {
      setCursor(next);
      useStudio.getState().setTraceHoverToken(next.col);
      event.preventDefault();
    }
  };

  const at = current && cursor ? { ...cursor, alpha: current.alpha[cursor.row * T + cursor.col] as number } : null;
  const sources = useMemo(() => (currentRow ? topSources(currentRow.alpha, currentRow.row, 8) : []), [currentRow]);
  const rowCurve = useMemo(() => (currentRow ? causalAbsRow(currentRow.alpha, currentRow.row) : null), [currentRow]);
  const rangeText = `${range.min.toPrecision(3)} … ${range.max.toPrecision(3)}`;

  return (
    <section aria-label="Hidden attention" data-testid="hidden-attention-panel" data-hover-token={hover ?? undefined} aria-busy={busy !== null} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Hidden attention: which earlier tokens each token reads (layer {layer})</h4>
      <div className="muted" style={{ fontSize: 12 }}>
        α[i, j] = Σₙ C_i[n]·exp(A·(S_i − S_j))·Δ_j·B_j[n] (Ali et al. 2024), S the prefix sum of Δ; shown as |α| scaled min-max over j ≤ i.
      </div>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Over</span>
          <select aria-label="Hidden attention unit" value={unitKind} onChange={(e) => setUnitKind(e.target.value as 'mean' | 'one')}>
            <option value="mean">mean over {unitName}s</option>
            <option value="one">one {unitName}</option>
          </select>
        </label>
        <label className="setting">
          <span>{unitName === 'head' ? 'Head' : 'Channel'}</span>
          <input
            type="number"
            aria-label={`Hidden attention ${unitName}`}
            min={0}
            max={trace.deltaWidth - 1}
            step={1}
            value={unitIndex}
            disabled={unitKind === 'mean'}
            onChange={(e) => {
              const v = Number(e.target.value);
              if (Number.isInteger(v) && v >= 0 && v < trace.deltaWidth) setUnitIndex(v);
            }}
            style={{ width: 80 }}
          />
        </label>
        <ColormapSelect label="Hidden attention colormap" value={colormap} onChange={setColormap} />
        <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
          <input type="checkbox" aria-label="Hidden attention log scale" checked={log} onChange={(e) => setLog(e.target.checked)} />
          log scale
        </label>
        <button type="button" className="primary" onClick={computeMatrix} disabled={busy !== null}>
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
        <button type="button" onClick={() => showRow(rowInput.trim() === '' ? NaN : Number(rowInput))} disabled={busy !== null}>
          Show row
        </button>
        <button type="button" disabled={!current} onClick={() => downloadCanvasPng(canvas.current, `hidden-attention-layer${layer}-${unit}.png`)}>
          Export attention PNG
        </button>
        <button
          type="button"
          disabled={!current}
          onClick={() => current && downloadCsv(toCsv(attentionMatrixColumns(current.alpha, T, trace.ids, texts)), `hidden-attention-layer${layer}-${unit}.csv`)}
        >
          Export attention CSV
        </button>
      </div>
      <PanelStatus busy={busy} error={error ?? gl.error} testId="hidden-attention" />
      {current ? (
        <>
          <div className="muted" style={{ fontSize: 12 }} data-testid="hidden-attention-range" data-min={String(range.min)} data-max={String(range.max)}>
            layer {layer}, {unitText(unit, unitName)} · |α| {rangeText} ({log ? 'log' : 'linear'}) · rows i (reader) top → bottom, columns j (read) left → right · click a row, or focus the matrix and use the arrow keys and Enter
          </div>
          <div style={{ position: 'relative', width: 'min(100%, 512px)', aspectRatio: '1 / 1' }}>
            <canvas
              ref={canvas}
              tabIndex={0}
              data-testid="hidden-attention-canvas"
              aria-label={`Hidden attention of layer ${layer}, ${unitText(unit, unitName)}: ${T} × ${T}`}
              aria-describedby="hidden-attention-readout"
              style={{ width: '100%', height: '100%', display: 'block', cursor: 'crosshair' }}
              onPointerMove={(event) => {
                const cell = cellFromEvent(event);
                setCursor(cell);
                if (cell) useStudio.getState().setTraceHoverToken(cell.col);
              }}
              onClick={(event) => {
                const box = event.currentTarget.getBoundingClientRect();
                const cell = matrixCellAt(T, event.clientX - box.left, event.clientY - box.top, box.width, box.height);
                if (cell) showRow(cell.row);
              }}
              onKeyDown={onKey}
            />
            {currentRow && (
              <div
                aria-hidden
                style={{ position: 'absolute', left: 0, right: 0, top: `${(currentRow.row / T) * 100}%`, height: `max(1px, ${100 / T}%)`, outline: '1px solid #ffb000', pointerEvents: 'none' }}
              />
            )}
            {cursor && (
              <div
                aria-hidden
                style={{
                  position: 'absolute',
                  left: `${(cursor.col / T) * 100}%`,
                  top: `${(cursor.row / T) * 100}%`,
                  width: `max(3px, ${100 / T}%)`,
                  height: `max(3px, ${100 / T}%)`,
                  outline: '1px solid #fff',
                  pointerEvents: 'none',
                }}
              />
            )}
          </div>
          <div id="hidden-attention-readout" data-testid="hidden-attention-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
            {at ? (
              <span data-row={at.row} data-col={at.col} data-layer={layer} data-unit={String(unit)} data-alpha={String(at.alpha)} data-scaled={String(scaledAbs(at.alpha, range, log))}>
                token {at.row} “{texts[at.row] ?? ''}” reads token {at.col} “{texts[at.col] ?? ''}”: α = {at.alpha.toPrecision(6)} · scaled |α| {scaledAbs(at.alpha, range, log).toFixed(3)}
                {at.col > at.row ? ' (above the diagonal: a token cannot read later tokens)' : ''}
              </span>
            ) : (
              <span className="muted">Hover the matrix (or focus it and use the arrow keys) for α; click a row to see what that token reads.</span>
            )}
          </div>
        </>
      ) : (
        !busy && (
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
          <LineChart label={`Hidden attention row ${currentRow.row}, layer ${layer}`} testId="hidden-attention-row-chart" series={[{ name: `|α[${currentRow.row}, j]|`, values: rowCurve, colour: '#ff8a65' }]} marker={currentRow.row} />
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
