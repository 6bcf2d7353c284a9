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
 *
 * A hybrid (issue 22): the same viewer shows an attention block's attention pattern — softmax
 * probabilities p[i, j] of one head or the mean over heads (`attentionPattern` request) — with the
 * same axes, zoom, readout, rows and exports; its block selector lists the traced SSM blocks and
 * the attention blocks (MLP blocks named, not selectable). "Side by side" adds a second viewer
 * with its own block and unit, so an attention head and an SSM channel or head can be read for
 * the same tokens, the hovered token lit in both.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent, type ReactNode } from 'react';
import { UnitPicker, unitText, type Unit } from './UnitPicker';
import type { AttentionPatternResult, HiddenAttentionResult, TraceResult } from '../../../app/engine/protocol';
import { blockLabel, type Blocks } from './blocks';
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
  /** 'ssm': hidden attention α; 'attention': attention probabilities p. */
  kind: ViewerKind;
  unit: Unit;
  alpha: Float32Array;
}

type ViewerKind = 'ssm' | 'attention';

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

/** Checks the engine's attention pattern has the shape of `trace`: a [T, T] matrix. */
export function checkedAttentionPattern(result: AttentionPatternResult, trace: TraceResult): AttentionPatternResult {
  const T = trace.ids.length;
  if (result.tokens !== T || result.probs.length !== T * T) {
    throw new Error(`The engine's attention pattern has ${result.tokens} tokens (${result.probs.length} values), not the ${T} of the trace on screen: trace again.`);
  }
  return result;
}

export interface HiddenAttentionPanelProps {
  modelId: string;
  engine: EngineClient;
  trace: TraceResult;
  layerIndex: number;
  texts: readonly string[];
  /** The model's blocks (LoadedModelInfo.blocks): a hybrid's attention blocks can be shown too. */
  blocks?: Blocks;
  /** Query heads of each attention block. */
  attentionHeads?: number;
}

/** The blocks a viewer can show: the trace's SSM layers and the attention blocks (others listed, disabled). */
function viewerChoices(blocks: Blocks | undefined, traced: readonly number[]): { block: number; kind: ViewerKind | null }[] {
  if (!blocks) return traced.map((block) => ({ block, kind: 'ssm' }));
  return blocks.map((b, block) => ({ block, kind: b.kind === 'attention' ? 'attention' : b.kind === 'ssm' && traced.includes(block) ? 'ssm' : null }));
}

export function HiddenAttentionPanel({ modelId, engine, trace, layerIndex, texts, blocks, attentionHeads = 0 }: HiddenAttentionPanelProps) {
  const hover = useStudio(selectTraceHoverToken);
  const selected = trace.layers[layerIndex] ?? 0;
  const choices = useMemo(() => viewerChoices(blocks, trace.layers), [blocks, trace.layers]);
  const hybrid = attentionHeads > 0 && choices.some((c) => c.kind === 'attention');
  // The first viewer follows the trace's layer selector until a block is picked in it.
  const [pickA, setPickA] = useState<number | null>(null);
  useEffect(() => setPickA(null), [selected]);
  const [split, setSplit] = useState(false);
  const firstAttention = choices.find((c) => c.kind === 'attention')?.block;
  const [pickB, setPickB] = useState<number | null>(null);
  const [busy, setBusy] = useState<[boolean, boolean]>([false, false]);
  const onBusyA = useCallback((b: boolean) => setBusy((s) => (s[0] === b ? s : [b, s[1]])), []);
  const onBusyB = useCallback((b: boolean) => setBusy((s) => (s[1] === b ? s : [s[0], b])), []);
  const kindOf = (block: number): ViewerKind => choices.find((c) => c.block === block)?.kind ?? 'ssm';
  const blockA = pickA ?? selected;
  const blockB = pickB ?? firstAttention ?? selected;
  const select = (label: string, value: number, onPick: (block: number) => void) =>
    hybrid ? (
      <label className="setting">
        <span>Block</span>
        <select aria-label={`${label} block`} value={value} onChange={(e) => onPick(Number(e.target.value))}>
          {choices.map((c) => (
            <option key={c.block} value={c.block} disabled={c.kind === null}>
              {`${blockLabel(blocks, c.block)}${c.kind === null ? (blocks?.[c.block]?.kind === 'mlp' ? ' (no token mixing)' : ' (not traced)') : ''}`}
            </option>
          ))}
        </select>
      </label>
    ) : null;
  const common = { modelId, engine, trace, texts, blocks, heads: attentionHeads };
  return (
    <section aria-label="Hidden attention" data-testid="hidden-attention-panel" data-hover-token={hover ?? undefined} aria-busy={busy[0] || busy[1]} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      {hybrid && (
        <div className="actions" style={{ fontSize: 12, flexWrap: 'wrap' }}>
          <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
            <input type="checkbox" aria-label="Hidden attention side by side" checked={split} onChange={(e) => setSplit(e.target.checked)} />
            side by side: a second viewer for the same tokens (e.g. an attention head beside an SSM head)
          </label>
        </div>
      )}
      <div style={{ display: 'flex', flexWrap: 'wrap', gap: 16 }}>
        <AttentionViewer {...common} tid="hidden-attention" label="Hidden attention" block={blockA} kind={kindOf(blockA)} picker={select('Hidden attention', blockA, setPickA)} onBusy={onBusyA} />
        {hybrid && split && (
          <AttentionViewer {...common} tid="hidden-attention-b" label="Second viewer" block={blockB} kind={kindOf(blockB)} picker={select('Second viewer', blockB, setPickB)} onBusy={onBusyB} />
        )}
      </div>
    </section>
  );
}

interface ViewerProps {
  /** Test ids and element ids start with it ('hidden-attention', 'hidden-attention-b'). */
  tid: string;
  /** Accessible names of the controls start with it ("Hidden attention unit"). */
  label: string;
  modelId: string;
  engine: EngineClient;
  trace: TraceResult;
  texts: readonly string[];
  blocks: Blocks | undefined;
  heads: number;
  /** The engine block shown, and what it is. */
  block: number;
  kind: ViewerKind;
  picker: ReactNode;
  onBusy(busy: boolean): void;
}

function AttentionViewer({ tid, label, modelId, engine, trace, texts, blocks, heads, block: layer, kind, picker, onBusy }: ViewerProps) {
  const T = trace.ids.length;
  const attention = kind === 'attention';
  const unitName = attention ? 'head' : trace.deltaUnit;
  const width = attention ? heads : trace.deltaWidth;
  const sym = attention ? 'p' : 'α';
  const name = blockLabel(blocks, layer);
  const second = tid !== 'hidden-attention';
  const [unitKind, setUnitKind] = useState<'mean' | 'one'>('mean');
  const [unitIndex, setUnitIndex] = useState(0);
  const unit: Unit = unitKind === 'mean' ? 'mean' : Math.min(unitIndex, width - 1);
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
  useEffect(() => onBusy(busy !== null || work.running), [busy, work.running, onBusy]);

  const same = (c: Computed) => c.trace === trace && c.layer === layer && c.kind === kind && c.unit === unit;
  const exact = matrix && same(matrix) ? matrix : null;
  // The last matrix of this trace stays on screen (labelled with its own layer and unit), dimmed
  // while a new one is computed or when it is not of the selected layer and unit.
  const current = exact ?? (matrix && matrix.trace === trace ? matrix : null);
  const stale = current !== null && (work.running || current !== exact);
  const currentSym = current?.kind === 'attention' ? 'p' : 'α';
  const currentUnitName = current?.kind === 'attention' ? 'head' : trace.deltaUnit;
  const staleLabel = work.running ? 'updating…' : `${blockLabel(blocks, current?.layer ?? 0)}, ${unitText(current?.unit ?? 'mean', currentUnitName)}: compute again for the selected block and ${unitName}`;
  const currentRow = row && same(row) ? row : null;
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

  /** Computes the matrix of the selected block and unit; the result, or null (cancelled or failed: the error shown). */
  const computeMatrix = useCallback(async (): Promise<Computed | null> => {
    setError(null);
    const what = attention ? 'The attention pattern' : 'Hidden attention';
    try {
      const alpha = attention
        ? await work.run('attentionPattern', { modelId, traceId: trace.traceId, layer, head: unit }).then((r) => (r ? checkedAttentionPattern(r, trace).probs : null))
        : await work.run('hiddenAttention', { modelId, traceId: trace.traceId, layer, unit }).then((r) => (r ? checkedHiddenAttention(r, trace).alpha : null));
      // null: cancelled, the last matrix stays.
      if (!alpha) return null;
      const computed = { trace, layer, kind, unit, alpha };
      setMatrix(computed);
      return computed;
    } catch (e) {
      setError(`${what} failed: ${message(e)}`);
      return null;
    }
  }, [attention, work, layer, kind, unit, modelId, trace]);

  const showRow = useCallback(
    (i: number) => {
      if (busy || work.running) return;
      // The engine checks the row is a token of its trace (and says so when it is not).
      if (!(Number.isInteger(i) && i >= 0)) {
        setError(`Row “${i}” is not a token: type a whole number 0 … ${T - 1}.`);
        return;
      }
      setRowInput(String(i));
      setError(null);
      if (attention) {
        // An attention pattern's row is a row of its matrix (computed first when it is not on screen).
        if (i >= T) {
          setError(`There is no token ${i} (the trace has ${T}).`);
          return;
        }
        const take = (m: Computed) => setRow({ ...m, row: i, alpha: m.alpha.slice(i * T, (i + 1) * T) });
        if (exact) take(exact);
        else void computeMatrix().then((m) => m && take(m));
        return;
      }
      setBusy(`Computing row ${i} of layer ${layer}'s hidden attention on the GPU…`);
      requestHiddenAttention(engine, modelId, trace, layer, unit, i).then(
        (result) => {
          setRow({ trace, layer, kind, unit, row: i, alpha: result.alpha });
          setBusy(null);
        },
        (e: unknown) => {
          setError(`Hidden attention (row ${i}) failed: ${message(e)}`);
          setBusy(null);
        },
      );
    },
    [busy, work.running, T, attention, exact, computeMatrix, layer, kind, unit, engine, modelId, trace],
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
  const valueName = (k: ViewerKind | undefined) => (k === 'attention' ? 'p (attention probability)' : '|α|');
  const fileStem = attention ? `attention-pattern-layer${layer}-${unit}` : `hidden-attention-layer${layer}-${unit}`;
  const rowColumns = (r: RowComputed) => attentionRowColumns(r.alpha, trace.ids, texts, range, log).map((c) => (r.kind === 'attention' ? { ...c, name: c.name.replace('alpha', 'p') } : c));
  const compute = attention ? 'Compute attention pattern' : 'Compute hidden attention';

  return (
    <div data-testid={`${tid}-viewer`} data-layer={layer} data-kind={kind} style={{ display: 'flex', flexDirection: 'column', gap: 4, flex: '1 1 420px', minWidth: 0 }}>
      <h4 style={{ margin: '8px 0 0' }}>
        {attention ? `Attention pattern: which earlier tokens each token attends to (${name})` : `Hidden attention: which earlier tokens each token reads (${name})`}
      </h4>
      <div className="muted" style={{ fontSize: 12 }}>
        {attention
          ? 'p[i, j] = softmax over j ≤ i of q_i·k_j·scale (q, k after RoPE), one head or the mean over heads; each row sums to 1.'
          : 'α[i, j] = Σₙ C_i[n]·exp(A·(S_i − S_j))·Δ_j·B_j[n] (Ali et al. 2024), S the prefix sum of Δ; shown as |α| scaled min-max over j ≤ i.'}
      </div>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        {picker}
        <UnitPicker label={label} unitName={unitName} width={width} kind={unitKind} index={unitIndex} onKind={setUnitKind} onIndex={setUnitIndex} />
        <ColormapSelect label={`${label} colormap`} value={colormap} onChange={setColormap} />
        <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
          <input type="checkbox" aria-label={`${label} log scale`} checked={log} onChange={(e) => setLog(e.target.checked)} />
          log scale
        </label>
        <button type="button" className="primary" aria-label={second ? `${label}: ${compute.toLowerCase()}` : undefined} onClick={() => !busy && !work.running && void computeMatrix()} disabled={busy !== null || work.running}>
          {compute}
        </button>
        <label className="setting">
          <span>Row i</span>
          <input
            type="number"
            aria-label={`${label} row`}
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
        <button type="button" aria-label={second ? `${label}: show row` : undefined} onClick={() => showRow(rowInput.trim() === '' ? NaN : Number(rowInput))} disabled={busy !== null || work.running}>
          Show row
        </button>
        <PublishControls
          label={second ? 'second viewer' : 'attention'}
          name={fileStem}
          build={() =>
            current && texture
              ? {
                  spec: {
                    title: current.kind === 'attention' ? `Attention pattern of ${blockLabel(blocks, current.layer)}, ${unitText(current.unit, 'head')}: p[i, j]` : `Hidden attention of layer ${current.layer}, ${unitText(current.unit, trace.deltaUnit)}: |α[i, j]|`,
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
                    colorbarLabel: `${current.kind === 'attention' ? 'p' : '|α|'} (${log ? 'log' : 'linear'}, min–max over j ≤ i)`,
                  },
                  data: texture,
                }
              : null
          }
        />
        <button
          type="button"
          disabled={!current}
          aria-label={second ? `${label}: export CSV` : undefined}
          onClick={() => current && downloadCsv(toCsv(attentionMatrixColumns(current.alpha, T, trace.ids, texts)), `${current.kind === 'attention' ? 'attention-pattern' : 'hidden-attention'}-layer${current.layer}-${current.unit}.csv`)}
        >
          Export attention CSV
        </button>
      </div>
      {work.running && (
        <WorkProgressBar
          label={attention ? `Computing the ${T} × ${T} attention pattern of ${name} (${unitText(unit, 'head')})` : `Computing the ${T} × ${T} hidden attention of layer ${layer} (${unitText(unit, unitName)})`}
          progress={work.progress}
          onCancel={work.cancel}
          testId={tid}
        />
      )}
      <PanelStatus busy={busy} error={error ?? gl.error} testId={tid} />
      {current ? (
        <Stale stale={stale} label={staleLabel} testId={`${tid}-result`} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div className="muted" style={{ fontSize: 12 }} data-testid={`${tid}-range`} data-min={String(range.min)} data-max={String(range.max)} data-kind={current.kind}>
            {current.kind === 'attention' ? blockLabel(blocks, current.layer) : `layer ${current.layer}`}, {unitText(current.unit, currentUnitName)} · {current.kind === 'attention' ? 'p' : '|α|'} {rangeText} ({log ? 'log' : 'linear'}) · rows i (reader) top → bottom, columns j (read) left → right · click a row, or focus the matrix and use the arrow keys and Enter
          </div>
          <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
            <ViewControls control={control} tokens={T} label={label} channels={T} channelName="rows" />
            <span data-testid={`${tid}-view`}>
              columns j {Math.floor(view.start)}–{Math.ceil(view.start + view.count) - 1} · rows i {Math.floor(channelView.start)}–{Math.ceil(channelView.start + channelView.count) - 1} of {T}
            </span>
          </div>
          <HeatmapAxes
            testId={tid}
            plotHeight={420}
            x={{ label: 'token j (the token read)', view, total: T, texts }}
            y={{ label: 'token i (the reader)', view: channelView, total: T, texts }}
            colorbar={{ label: current.kind === 'attention' ? 'p' : '|α|', range, log, colormap }}
            style={{ width: 'min(100%, 568px)' }}
          >
            <canvas
              ref={canvas}
              tabIndex={0}
              data-testid={`${tid}-canvas`}
              aria-label={`${current.kind === 'attention' ? 'Attention pattern' : 'Hidden attention'} of ${blockLabel(blocks, current.layer)}, ${unitText(current.unit, currentUnitName)}: ${T} × ${T}`}
              aria-describedby={`${tid}-readout`}
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
          <div id={`${tid}-readout`} data-testid={`${tid}-readout`} aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
            {at ? (
              <span data-row={at.row} data-col={at.col} data-layer={current.layer} data-kind={current.kind} data-unit={String(current.unit)} data-alpha={String(at.alpha)} data-scaled={String(scaledAbs(at.alpha, range, log))}>
                token {at.row} “{texts[at.row] ?? ''}” {current.kind === 'attention' ? 'attends to' : 'reads'} token {at.col} “{texts[at.col] ?? ''}”: {currentSym} = {at.alpha.toPrecision(6)} · scaled {current.kind === 'attention' ? 'p' : '|α|'} {scaledAbs(at.alpha, range, log).toFixed(3)}
                {at.col > at.row ? ' (above the diagonal: a token cannot read later tokens)' : ''}
              </span>
            ) : (
              <span className="muted">Hover the matrix (or focus it and use the arrow keys) for {sym}; click a row to see what that token reads.</span>
            )}
          </div>
        </Stale>
      ) : (
        !busy &&
        !work.running && (
          <div className="muted" style={{ fontSize: 12 }}>
            {attention ? `Compute the attention pattern of ${name} (${unitText(unit, 'head')}).` : `Compute the matrix of layer ${layer} (${unitText(unit, unitName)}), or show one row without it.`}
          </div>
        )
      )}
      {currentRow && rowCurve && (
        <div data-testid={`${tid}-row`} data-row={currentRow.row} data-layer={layer} data-unit={String(unit)} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div style={{ fontSize: 12 }}>
            Row {currentRow.row} “{texts[currentRow.row] ?? ''}”: what it reads, {valueName(currentRow.kind)} [{currentRow.row}, j] for j ≤ {currentRow.row}
          </div>
          <LineChart
            label={`${attention ? 'Attention pattern' : 'Hidden attention'} row ${currentRow.row}, ${name}`}
            testId={`${tid}-row-chart`}
            xLabel="token j (the token read)"
            yLabel={attention ? `p[${currentRow.row}, j] (probability)` : `|α[${currentRow.row}, j]|`}
            series={[{ name: attention ? `p[${currentRow.row}, j]` : `|α[${currentRow.row}, j]|`, values: rowCurve, colour: '#ff8a65' }]}
            marker={currentRow.row}
            figure={{ label: second ? 'second viewer row' : 'row', name: `${fileStem}-row${currentRow.row}` }}
          />
          <ol data-testid={`${tid}-sources`} style={{ margin: 0, paddingLeft: 20, fontSize: 12, fontFamily: 'ui-monospace, monospace' }}>
            {sources.map((s) => (
              <li key={s.token} data-token={s.token} data-alpha={String(s.alpha)}>
                token {s.token} “{texts[s.token] ?? ''}”: {sym} = {s.alpha.toPrecision(6)}
              </li>
            ))}
          </ol>
          <div className="actions" style={{ fontSize: 12 }}>
            <button type="button" aria-label={second ? `${label}: export row CSV` : undefined} onClick={() => downloadCsv(toCsv(rowColumns(currentRow)), `${fileStem}-row${currentRow.row}.csv`)}>
              Export row CSV
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
