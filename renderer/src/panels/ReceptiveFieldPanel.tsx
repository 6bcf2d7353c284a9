/**
 * Receptive field per channel (head): from the trace's Δ (app/analysis/receptive-field.ts — the
 * definition is stated there), how many tokens back from the last one each channel of the selected
 * layer still holds at least ε of a token's write, with its slowest state. Bars of reach in rank
 * order (longest first), green where the channel reads the whole window (global), grey where it
 * does not (local); the model's focus channels (studio.json) in orange with a mark above. A row per
 * traced layer summarises global / local counts and the focus channels' mean reach against the
 * others'. Hover or keyboard (←/→, PageUp/PageDown, Home/End on the focused chart) reads one bar
 * out; CSV of the selected layer; SVG / PNG figure. A long trace's window: over the window's tokens.
 */
import { AnalysisSection, Controls } from './analysis-section';
import { useMemo, useRef, useState } from 'react';
import { useElementSize } from './chart-axes';
import { niceTicks } from './chart-scale';
import { BarChart } from './bar-axes';
import { LayerSelect } from './TraceViewControls';
import type { Blocks } from './blocks';
import { downloadCsv, toCsv } from './csv';
import { windowSuffix, type TraceView } from './long-trace';
import { LinePublishControls } from './publish-lines-ui';
import { fieldColumns, fieldFigure, fieldSummary, layerField } from './receptive-field-view';

const THRESHOLDS = [0.5, 0.1, 0.01] as const;
const COLOUR = { global: '#66bb6a', local: '#8b93a5', focus: '#ff8a65' };
const M = { left: 52, right: 10, top: 10, bottom: 30 };
const H = 140;
/** Per-layer summaries for every layer only while that costs at most this many Δ values. */
const SUMMARY_ALL_MAX = 5e7;

export interface ReceptiveFieldPanelProps {
  trace: TraceView;
  layerIndex: number;
  focusChannels: readonly number[];
  focusLayer?: number | undefined;
  /** A hybrid's blocks: the layer selector names them by kind. */
  blocks?: Blocks | undefined;
}

const num = (v: number, digits = 3) => (Number.isFinite(v) ? v.toPrecision(digits) : '—');

export function ReceptiveFieldPanel({ trace, layerIndex, focusChannels, focusLayer, blocks }: ReceptiveFieldPanelProps) {
  const [threshold, setThreshold] = useState<number>(0.1);
  const [cursor, setCursor] = useState<number | null>(null);
  // The section, always there, is as wide as the chart (measured from the first render on).
  const box = useRef<HTMLElement>(null);
  const measured = useElementSize(box).width;
  const W = measured > 0 ? measured : 600;
  const unit = trace.deltaUnit;
  const layer = trace.layers[layerIndex] ?? 0;
  const focus = useMemo(() => (unit === 'channel' && (focusLayer === undefined || focusLayer === layer) ? focusChannels.filter((c) => c < trace.deltaWidth) : []), [unit, focusLayer, layer, focusChannels, trace.deltaWidth]);
  const rf = useMemo(() => layerField(trace, layerIndex, threshold), [trace, layerIndex, threshold]);
  const summaries = useMemo(() => {
    const cheap = trace.ids.length * trace.deltaWidth * trace.layers.length <= SUMMARY_ALL_MAX;
    return trace.layers.map((l, i) => {
      if (!cheap && i !== layerIndex) return null;
      const field = i === layerIndex ? rf : layerField(trace, i, threshold);
      const chosen = unit === 'channel' && (focusLayer === undefined || focusLayer === l) ? focusChannels.filter((c) => c < trace.deltaWidth) : [];
      return field ? fieldSummary(field, l, chosen) : null;
    });
  }, [trace, layerIndex, rf, threshold, unit, focusLayer, focusChannels]);
  const focusSet = useMemo(() => new Set(focus), [focus]);
  const summary = summaries[layerIndex] ?? null;
  const suffix = windowSuffix(trace);

  const plotW = Math.max(10, W - M.left - M.right);
  const count = rf?.width ?? 0;
  const T = trace.ids.length;
  const cell = count > 0 ? plotW / count : plotW;
  const y = (v: number) => M.top + H - (v / Math.max(1, T)) * H;
  const bars = useMemo(() => {
    if (!rf) return { global: '', local: '', focus: '' };
    const paths = { global: [] as string[], local: [] as string[], focus: [] as string[] };
    const w = Math.max(0.5, cell * 0.9);
    rf.order.forEach((d, rank) => {
      const top = M.top + H - ((rf.reach[d] as number) / Math.max(1, T)) * H;
      const kind = focusSet.has(d) ? 'focus' : rf.global[d] ? 'global' : 'local';
      paths[kind].push(`M${(M.left + rank * cell).toFixed(2)},${(M.top + H).toFixed(2)}V${top.toFixed(2)}h${w.toFixed(2)}V${(M.top + H).toFixed(2)}z`);
    });
    return { global: paths.global.join(''), local: paths.local.join(''), focus: paths.focus.join('') };
  }, [rf, cell, focusSet, T]);
  const focusRanks = useMemo(() => (rf ? [...rf.order].map((d, rank) => ({ d, rank })).filter((e) => focusSet.has(e.d)) : []), [rf, focusSet]);
  const yTicks = niceTicks(0, Math.max(1, T), 5, true);
  const shownRank = cursor !== null && cursor < count ? cursor : null;
  const shownUnit = rf && shownRank !== null ? (rf.order[shownRank] as number) : null;


  const name = `receptive-field-layer${layer}-eps${threshold}${suffix}`;
  return (
    <AnalysisSection boxRef={box} label="Receptive field" testId="receptive-field-panel" title={<>Receptive field: how far back each {unit} reads (from Δ summed over the window)</>}>
      <Controls>
        <LayerSelect layers={trace.layers} layerIndex={layerIndex} focusLayer={focusLayer} label="Receptive field layer" blocks={blocks} />
        <label className="setting" title="A token counts as read while the slowest state still holds at least this fraction of its write at the last token">
          <span>Retention ε ≥</span>
          <select aria-label="Receptive field threshold" value={threshold} onChange={(e) => setThreshold(Number(e.target.value))}>
            {THRESHOLDS.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={!rf} onClick={() => rf && downloadCsv(toCsv(fieldColumns(rf, unit, focus)), `${name}.csv`)}>
          Export receptive field CSV
        </button>
        <LinePublishControls label="receptive field" name={name} disabled={!rf} build={() => (rf ? fieldFigure(rf, layer, unit, focus) : null)} />
      </Controls>
      {!rf ? (
        <p className="muted" data-testid="receptive-field-missing">
          The view holds no Δ of layer {layer} yet (a long trace: its window of this layer is being fetched).
        </p>
      ) : (
        <>
          <div
            data-testid="receptive-field-summary"
            data-layer={layer}
            data-tokens={T}
            data-threshold={threshold}
            data-global={rf.globalCount}
            data-local={rf.width - rf.globalCount}
            data-focus-reach={summary ? String(summary.focusReach) : ''}
            data-other-reach={summary ? String(summary.otherReach) : ''}
          >
            Layer {layer}, {T} tokens{suffix ? ` (tokens ${trace.tokenOffset} … ${(trace.tokenOffset ?? 0) + T - 1})` : ''}: {rf.globalCount} global {unit}s (read the whole window), {rf.width - rf.globalCount} local · median reach {summary ? num(summary.medianReach) : '—'} tokens
            {focus.length > 0 && summary && (
              <>
                {' '}
                · focus {unit}s {num(summary.focusReach)} tokens on average, the others {num(summary.otherReach)}
              </>
            )}
          </div>
          <div>
            <BarChart
              testId="receptive-field-chart"
              label={`Reach per ${unit} of layer ${layer}, sorted; arrow keys move the readout`}
              width={W}
              margin={M}
              height={H}
              count={count}
              cursor={shownRank}
              onCursor={setCursor}
              yTicks={yTicks}
              y={y}
              yLabel="reach (tokens)"
              xLabel={`${unit}s, sorted by reach (rank)`}
            >
              <line x1={M.left} x2={M.left + plotW} y1={y(T)} y2={y(T)} stroke="#666" strokeDasharray="6 4" />
              <path d={bars.global} fill={COLOUR.global} data-series="global" />
              <path d={bars.local} fill={COLOUR.local} data-series="local" />
              <path d={bars.focus} fill={COLOUR.focus} data-series="focus" />
              {focusRanks.map(({ d, rank }) => (
                <path key={d} data-focus-unit={d} data-rank={rank} d={`M${M.left + (rank + 0.5) * cell - 4},${M.top - 8}h8l-4,6z`} fill={COLOUR.focus} />
              ))}
            </BarChart>
          </div>
          <div className="muted">
            <span style={{ color: COLOUR.global }}>■</span> global <span style={{ color: COLOUR.local }}>■</span> local {focus.length > 0 && <><span style={{ color: COLOUR.focus }}>▼</span> focus {unit}s (studio.json)</>} · dashed: the whole window ({T} tokens)
          </div>
          <div data-testid="receptive-field-readout" data-unit={shownUnit ?? ''} aria-live="polite" style={{ minHeight: 16 }}>
            {rf && shownUnit !== null && shownRank !== null
              ? `rank ${shownRank}: ${unit} ${shownUnit}${focusSet.has(shownUnit) ? ' (focus)' : ''} — reach ${rf.reach[shownUnit]} tokens (${rf.global[shownUnit] ? 'global' : 'local'}) · retention over the window ${num(Math.exp(rf.logRetention[shownUnit] as number))} · Σ Δ ${num(rf.deltaSum[shownUnit] as number)} · slowest |A| ${num(rf.decayRate[shownUnit] as number)}`
              : 'Point at a bar, or focus the chart and use the arrow keys.'}
          </div>
          <table className="config" data-testid="receptive-field-layers">
            <thead>
              <tr>
                <th>layer</th>
                <th>global</th>
                <th>local</th>
                <th>median reach (tokens)</th>
                <th>focus / other mean reach</th>
              </tr>
            </thead>
            <tbody>
              {summaries.map((s, i) =>
                s ? (
                  <tr key={s.layer} data-layer={s.layer} data-global={s.global} data-local={s.local} data-median={s.medianReach} aria-selected={i === layerIndex}>
                    <td>{s.layer === focusLayer ? `${s.layer} (focus)` : s.layer}</td>
                    <td>{s.global}</td>
                    <td>{s.local}</td>
                    <td>{num(s.medianReach)}</td>
                    <td>{Number.isFinite(s.focusReach) ? `${num(s.focusReach)} / ${num(s.otherReach)}` : '—'}</td>
                  </tr>
                ) : null,
              )}
            </tbody>
          </table>
        </>
      )}
    </AnalysisSection>
  );
}
