/**
 * Hidden attention of a long trace (detail 'windows', issue 18 item 4): one row α[i, j], j = 0 … i,
 * over the whole context, never the T × T matrix. The engine recomputes it from the state
 * checkpoints (`hiddenAttention` with `row`, app/analysis/hidden-attention-long.ts), a long request
 * run through the long-work runner (progress, Cancel, Escape). The row token i is typed as an
 * absolute token index (default: the last token of the detail window; "Use picked token" takes the
 * token picked in the strip), the unit is the mean over channels (heads) or one, the layer is the
 * panels' selected layer. The chart draws |α[i, j]| over every j ≤ i, one bin per pixel column
 * holding its largest |α| (attention-row.ts absMaxBins); hovering a column (or focusing the chart
 * and using ←/→, PageUp/PageDown, Home/End) reads out the token where that max is and its exact α.
 * "Export row CSV": token, id, text, α for j = 0 … i.
 */
import { useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { UnitPicker, unitText, type Unit } from './UnitPicker';
import type { TraceResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { selectTraceMemoryToken, useStudio } from '../store';
import { absMaxBins, binAtX, longRowColumns, moveBin } from './attention-row';
import { useElementSize } from './chart-axes';
import { niceTicks, scaleTicks } from './chart-scale';
import { downloadCsv, toCsv } from './csv';
import { useLongWork, WorkProgressBar } from './LongWork';
import { normalize, tokenTexts } from './selection';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

interface RowResult {
  traceId: string;
  layer: number;
  unit: Unit;
  row: number;
  alpha: Float32Array;
}

export interface LongAttentionRowProps {
  modelId: string;
  engine: EngineClient;
  /** The long trace (every token's id and text; Δ, B, C only for windows). */
  trace: TraceResult;
  layerIndex: number;
  /** The detail window on screen (absolute tokens [from, to)): its last token is the default row. */
  window: { from: number; to: number } | null;
  labels?: readonly string[] | undefined;
}

const M = { left: 60, right: 12, top: 8, bottom: 34 };
const H = 180;

export function LongAttentionRow({ modelId, engine, trace, layerIndex, window, labels }: LongAttentionRowProps) {
  const T = trace.ids.length;
  const layer = trace.layers[layerIndex] ?? 0;
  const unitName = trace.deltaUnit;
  const [unitKind, setUnitKind] = useState<'mean' | 'one'>('mean');
  const [unitIndex, setUnitIndex] = useState(0);
  const unit: Unit = unitKind === 'mean' ? 'mean' : Math.min(unitIndex, trace.deltaWidth - 1);
  // The typed row; until the user types one, the last token of the detail window.
  const [typed, setTyped] = useState<string | null>(null);
  const defaultRow = window ? window.to - 1 : T - 1;
  const rowText = typed ?? String(defaultRow);
  const [result, setResult] = useState<RowResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [hoverBin, setHoverBin] = useState<number | null>(null);
  const [log, setLog] = useState(false);
  // What the running request computes (the boxes may change meanwhile).
  const [asking, setAsking] = useState<{ row: number; layer: number; unit: Unit } | null>(null);
  const work = useLongWork(engine);
  // The token picked in the strip (a local index of the detail window).
  const picked = useStudio(selectTraceMemoryToken);
  const pickedAbs = picked !== null && window ? window.from + picked : null;

  const box = useRef<HTMLElement>(null);
  const measured = useElementSize(box).width;
  const W = measured > 0 ? measured : 640;
  const plotW = Math.max(10, Math.floor(W - M.left - M.right));

  const current = result && result.traceId === trace.traceId ? result : null;
  const stale = current !== null && (current.layer !== layer || current.unit !== unit);
  const bins = useMemo(() => (current ? absMaxBins(current.alpha, current.row + 1, plotW) : null), [current, plotW]);
  // The y range: 0 … max |α| (linear), or the smallest positive column max (at least max · 1e-12) … max (log).
  const yRange = useMemo(() => {
    let m = 0;
    let pos = Infinity;
    if (bins)
      for (const v of bins.max) {
        if (v > m) m = v;
        if (v > 0 && v < pos) pos = v;
      }
    const max = m > 0 ? m : 1;
    return log ? { min: Math.max(pos < Infinity ? pos : max / 10, max * 1e-12), max } : { min: 0, max };
  }, [bins, log]);
  const yMax = yRange.max;
  const texts = useMemo(() => tokenTexts(trace, labels), [trace, labels]);

  const compute = () => {
    if (work.running) return;
    const text = rowText.trim();
    const i = text === '' ? NaN : Number(text);
    if (!(Number.isInteger(i) && i >= 0 && i < T)) {
      setError(`Row “${rowText}” is not a token of this trace: type a whole number 0 … ${T - 1}.`);
      return;
    }
    setError(null);
    const asked = { layer, unit, row: i };
    setAsking(asked);
    work.run('hiddenAttention', { modelId, traceId: trace.traceId, ...asked }).then(
      (r) => {
        if (!r) return; // cancelled: the last row stays
        if (r.tokens !== T || r.alpha.length !== T) {
          setError(`The engine's hidden attention row has ${r.alpha.length} values, not the ${T} tokens of the trace on screen: trace again.`);
          return;
        }
        setHoverBin(null);
        setResult({ traceId: trace.traceId, ...asked, alpha: r.alpha });
      },
      (e: unknown) => setError(`Hidden attention row ${i} (layer ${layer}) failed: ${message(e)}`),
    );
  };

  const n = bins?.lo.length ?? 0;
  const colW = n > 0 ? plotW / n : plotW;
  const y = (v: number) => M.top + H - normalize(v, yRange, log) * H;
  const count = current ? current.row + 1 : 0;
  const xOf = (token: number) => M.left + (count > 0 ? (token / count) * plotW : 0);
  const xTicks = count > 0 ? niceTicks(0, count - 1, Math.max(2, Math.floor(plotW / 80)), true) : [];
  const yTicks = scaleTicks(yRange, log, 5);
  const area = useMemo(() => {
    if (!bins || bins.lo.length === 0) return '';
    const parts = [`M${M.left} ${M.top + H}`];
    for (let k = 0; k < bins.lo.length; k++) {
      const v = bins.max[k] as number;
      const yy = (M.top + H - (Number.isFinite(v) ? normalize(v, yRange, log) * H : 0)).toFixed(2);
      parts.push(`V${yy}H${(M.left + (k + 1) * colW).toFixed(2)}`);
    }
    parts.push(`V${M.top + H}Z`);
    return parts.join('');
  }, [bins, yRange, log, colW]);

  const hovered = bins && hoverBin !== null && hoverBin < n ? { bin: hoverBin, lo: bins.lo[hoverBin] as number, hi: bins.hi[hoverBin] as number, token: bins.at[hoverBin] as number } : null;
  const hoveredAlpha = hovered && current ? (current.alpha[hovered.token] as number) : null;

  const onKey = (event: KeyboardEvent<SVGSVGElement>) => {
    const next = moveBin(hoverBin, event.key, n);
    if (next !== null) {
      setHoverBin(next);
      event.preventDefault();
    }
  };

  const exportCsv = () => {
    if (!current) return;
    try {
      const csv = toCsv(longRowColumns(current.alpha, current.row, trace.ids, texts));
      downloadCsv(csv, `hidden-attention-layer${current.layer}-${current.unit}-row${current.row}.csv`);
    } catch (e) {
      setError(`Export failed: ${message(e)}`);
    }
  };

  return (
    <section ref={box} aria-label="Hidden attention row" data-testid="long-attention-row" aria-busy={work.running} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Hidden attention over the whole context: which earlier tokens token i reads (layer {layer})</h4>
      <div className="muted" style={{ fontSize: 12 }}>
        One row α[i, j] = Σₙ C_i[n]·exp(A·(S_i − S_j))·Δ_j·B_j[n] for j ≤ i, recomputed on the GPU from the trace&apos;s state checkpoints (a long trace keeps no T × T matrix).
      </div>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Row i (token)</span>
          <input
            type="number"
            aria-label="Hidden attention row token"
            min={0}
            max={T - 1}
            step={1}
            value={rowText}
            onChange={(e) => setTyped(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') compute();
            }}
            style={{ width: 100 }}
          />
        </label>
        <button type="button" onClick={() => pickedAbs !== null && setTyped(String(pickedAbs))} disabled={pickedAbs === null} title="The token picked in the token strip (click a token, or Enter on it)">
          Use picked token{pickedAbs !== null ? ` (${pickedAbs})` : ''}
        </button>
        <UnitPicker label="Hidden attention row" unitName={unitName} width={trace.deltaWidth} kind={unitKind} index={unitIndex} onKind={setUnitKind} onIndex={setUnitIndex} />
        <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
          <input type="checkbox" aria-label="Hidden attention row log scale" checked={log} onChange={(e) => setLog(e.target.checked)} />
          log scale
        </label>
        <button type="button" className="primary" onClick={compute} disabled={work.running}>
          Compute row
        </button>
        <button type="button" onClick={exportCsv} disabled={!current} title="token, id, text, α for j = 0 … i">
          Export row CSV
        </button>
      </div>
      {work.running && asking && (
        <WorkProgressBar label={`Computing row ${asking.row} of layer ${asking.layer}'s hidden attention (${unitText(asking.unit, unitName)})`} progress={work.progress ? { ...work.progress, unit: 'tokens' } : undefined} onCancel={work.cancel} testId="long-attention-row" />
      )}
      {error && (
        <p className="error" role="alert" data-testid="long-attention-row-error">
          {error}
        </p>
      )}
      {current && bins ? (
        <div
          data-testid="long-attention-row-result"
          data-row={current.row}
          data-layer={current.layer}
          data-unit={String(current.unit)}
          data-bins={n}
          data-stale={stale ? 'true' : 'false'}
          className={stale ? 'stale-result' : undefined}
          style={{ fontSize: 11 }}
        >
          <div style={{ fontSize: 12 }}>
            Row {current.row} “{texts[current.row] ?? ''}”, layer {current.layer}, {unitText(current.unit, unitName)}: |α[{current.row}, j]| for j = 0 … {current.row}, each column the largest |α| of its {count > n ? `≈${Math.round(count / n)} tokens` : 'token'} · max |α| {yMax.toPrecision(4)}
            {stale ? ` (not the selected layer and ${unitName}: compute again)` : ''}
          </div>
          <svg
            width="100%"
            height={H + M.top + M.bottom}
            role="img"
            tabIndex={0}
            aria-label={`Hidden attention row ${current.row} of layer ${current.layer}: |α| over source tokens 0 to ${current.row}. Arrow keys, PageUp, PageDown, Home and End move the readout.`}
            aria-describedby="long-attention-row-readout"
            data-testid="long-attention-row-chart"
            data-plot-left={M.left}
            data-plot-width={plotW}
            style={{ display: 'block', background: '#11141a', fontSize: 10, cursor: 'crosshair' }}
            onKeyDown={onKey}
            onPointerMove={(event) => {
              const r = event.currentTarget.getBoundingClientRect();
              const k = binAtX(event.clientX - r.left - M.left, plotW, n);
              if (k !== null) setHoverBin(k);
            }}
          >
            <g data-testid="long-attention-row-y-axis" data-label="|α|" fill="#8b93a5" stroke="#8b93a5">
              <line x1={M.left} x2={M.left} y1={M.top} y2={M.top + H} strokeOpacity={0.6} />
              {yTicks.map((k) => (
                <g key={k.label}>
                  <line x1={M.left - 4} x2={M.left} y1={y(k.value)} y2={y(k.value)} strokeOpacity={0.6} />
                  <text x={M.left - 6} y={y(k.value)} dominantBaseline="middle" textAnchor="end" stroke="none">
                    {k.label}
                  </text>
                </g>
              ))}
              <text x={12} y={M.top + H / 2} transform={`rotate(-90 12 ${M.top + H / 2})`} textAnchor="middle" dominantBaseline="middle" stroke="none">
                |α| (max per column{log ? ', log' : ''})
              </text>
            </g>
            <g data-testid="long-attention-row-x-axis" data-label="source token j" fill="#8b93a5" stroke="#8b93a5">
              <line x1={M.left} x2={M.left + plotW} y1={M.top + H} y2={M.top + H} strokeOpacity={0.6} />
              {xTicks.map((t) => (
                <g key={t}>
                  <line x1={xOf(t + 0.5)} x2={xOf(t + 0.5)} y1={M.top + H} y2={M.top + H + 4} strokeOpacity={0.6} />
                  <text x={xOf(t + 0.5)} y={M.top + H + 14} textAnchor="middle" stroke="none">
                    {t}
                  </text>
                </g>
              ))}
              <text x={M.left + plotW / 2} y={H + M.top + M.bottom - 4} textAnchor="middle" stroke="none">
                source token j (absolute index)
              </text>
            </g>
            <path d={area} fill="#ff8a65" fillOpacity={0.85} stroke="none" data-testid="long-attention-row-area" />
            {hovered && <rect x={M.left + hovered.bin * colW} y={M.top} width={Math.max(1, colW)} height={H} fill="#ffffff" fillOpacity={0.25} />}
          </svg>
          <div id="long-attention-row-readout" data-testid="long-attention-row-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
            {hovered && hoveredAlpha !== null ? (
              <span data-token={hovered.token} data-alpha={String(hoveredAlpha)} data-bin-from={hovered.lo} data-bin-to={hovered.hi}>
                token {hovered.token} “{texts[hovered.token] ?? ''}”: α[{current.row}, {hovered.token}] = {hoveredAlpha.toPrecision(6)} (the largest |α| of tokens {hovered.lo}–{hovered.hi - 1})
              </span>
            ) : (
              <span className="muted">Hover the chart (or focus it and use the arrow keys) for the exact α at each column&apos;s peak.</span>
            )}
          </div>
        </div>
      ) : (
        !work.running && (
          <div className="muted" style={{ fontSize: 12 }}>
            Pick a row token and compute its row of layer {layer} ({unitText(unit, unitName)}): the engine recomputes tokens 0 … i of the layer from the checkpoints.
          </div>
        )
      )}
    </section>
  );
}
