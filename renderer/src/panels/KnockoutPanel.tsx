/**
 * Knockout: "filter this token" — the engine re-runs the trace on screen (by its id) with Δ_j := 0 for one
 * token j in a chosen layer (or all layers), so token j neither writes into the state nor lets it
 * decay (the state-space analogue of attention knockout), and compares the next-token
 * distributions with and without it: KL(baseline ‖ knocked) at every position from the token on
 * (a line chart, CSV export), and after the last token total variation, the baseline's top
 * token's probability after, and the top tokens of both runs (bars on a canvas; SVG / PNG figure export drawn from the data, publish-lines.ts; CSV
 * export of both distributions). The run shows progress and can be cancelled; the last result
 * stays on screen, dimmed, until the new one replaces it.
 * A hybrid (issue 22): the block list adds every SSM and attention block by kind; knocking token j
 * out of an attention block masks key j there (no later query attends to it), of an SSM block
 * sets Δ_j := 0 (MLP blocks mix no tokens: not offered).
 */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { KnockoutResult, TraceResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { selectTraceMemoryToken, useStudio } from '../store';
import { knockoutColumns, probabilityShift, type ShiftRow } from './analysis';
import { downloadCsv, toCsv } from './csv';
import { knockoutFigure } from './publish-lines';
import { LinePublishControls } from './publish-lines-ui';
import { prepareCanvas2d } from './canvas2d';
import { niceTicks } from './chart-scale';
import { PanelStatus } from './PanelStatus';
import { LineChart } from './LineChart';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';
import { klCurve, klPeak, klPositionColumns } from './knockout-positions';
import { blockLabel, isHybrid, type Blocks } from './blocks';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

const COLOUR_BEFORE = '#4fc3f7';
const COLOUR_AFTER = '#ff8a65';
const BAR_ROW = 18;
/** The probability axis under the bars. */
const AXIS_HEIGHT = 30;

/** A probability for reading: 4 decimals down to 0.001, then 3 significant digits in exponent form. */
const prob = (p: number) => (!Number.isFinite(p) ? '—' : p >= 1e-3 || p === 0 ? p.toFixed(4) : p.toExponential(2));

/** Paired horizontal bars: per token, its probability before (top) and after (bottom) the knockout. */
function drawShift(canvas: HTMLCanvasElement, rows: readonly ShiftRow[]): void {
  const prepared = prepareCanvas2d(canvas);
  if (!prepared) return;
  const { g, width: W } = prepared;
  const label = 90;
  g.font = '11px system-ui, sans-serif';
  // The values' column is as wide as its widest text (two exponents need more than a fixed width), the bars take the rest.
  const values = rows.map((r) => `${prob(r.before)} → ${prob(r.after)}`);
  const valueW = Math.ceil(Math.max(0, ...values.map((v) => g.measureText(v).width)));
  const barW = Math.max(20, W - label - valueW - 10);
  canvas.dataset.valuesRight = String(label + barW + 6 + valueW);
  canvas.dataset.valuesWidth = String(valueW);
  rows.forEach((r, k) => {
    const top = 4 + k * BAR_ROW;
    g.fillStyle = '#c9c9c9';
    g.fillText(`“${r.text}”`.slice(0, 14), 4, top + 12);
    for (const [p, colour, dy] of [
      [r.before, COLOUR_BEFORE, 0],
      [r.after, COLOUR_AFTER, 7],
    ] as const) {
      g.fillStyle = colour;
      if (Number.isFinite(p)) g.fillRect(label, top + dy, Math.max(1, p * barW), 6);
    }
    g.fillStyle = '#8b93a5';
    g.fillText(values[k] ?? '', label + barW + 6, top + 12);
  });
  // The probability axis under the bars.
  const axisTop = 4 + rows.length * BAR_ROW + 2;
  g.strokeStyle = '#8b93a5';
  g.fillStyle = '#8b93a5';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(label, axisTop + 0.5);
  g.lineTo(label + barW, axisTop + 0.5);
  g.stroke();
  g.textAlign = 'center';
  for (const v of niceTicks(0, 1, Math.max(2, Math.min(6, Math.floor(barW / 50))))) {
    const x = label + v * barW;
    g.beginPath();
    g.moveTo(x, axisTop);
    g.lineTo(x, axisTop + 4);
    g.stroke();
    g.fillText(String(v), x, axisTop + 14);
  }
  g.fillText('next-token probability', label + barW / 2, axisTop + 26);
  g.textAlign = 'left';
}

export interface KnockoutPanelProps {
  modelId: string;
  engine: EngineClient;
  trace: TraceResult;
  layerIndex: number;
  texts: readonly string[];
  /** The model's token labels (studio.json): next tokens are shown by them when there are. */
  labels?: readonly string[] | undefined;
  /** The model's blocks (LoadedModelInfo.blocks): a hybrid's attention blocks can be chosen too. */
  blocks?: Blocks | undefined;
}

interface Done {
  trace: TraceResult;
  result: KnockoutResult;
}

/** How a knockout acts on block `l`: masking key j (attention) or Δ_j := 0 (SSM). */
const knockText = (blocks: Blocks | undefined, l: number) => (blocks?.[l]?.kind === 'attention' ? 'mask key j' : 'Δ_j := 0');

export function KnockoutPanel({ modelId, engine, trace, layerIndex, texts, labels, blocks }: KnockoutPanelProps) {
  const T = trace.ids.length;
  const clicked = useStudio(selectTraceMemoryToken);
  const [typed, setTyped] = useState<string | null>(null);
  const tokenText = typed ?? String(clicked !== null && clicked < T ? clicked : 0);
  // 'selected': the trace's selected layer; 'all'; or one block of a hybrid by its index.
  const [where, setWhere] = useState<'selected' | 'all' | number>('selected');
  const hybrid = isHybrid(blocks);
  const knockable = useMemo(() => (hybrid && blocks ? blocks.flatMap((b, l) => (b.kind === 'mlp' ? [] : [l])) : []), [hybrid, blocks]);
  const [k, setK] = useState(10);
  const [done, setDone] = useState<Done | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const work = useLongWork(engine);
  const [error, setError] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const layer = trace.layers[layerIndex] ?? 0;

  const shown = done && done.trace === trace ? done.result : null;
  const rows = useMemo(() => (shown ? probabilityShift(shown).map((r) => ({ ...r, text: labels?.[r.id] ?? r.text })) : []), [shown, labels]);
  const curve = useMemo(() => (shown ? klCurve(shown, T) : null), [shown, T]);
  const peak = useMemo(() => (shown ? klPeak(shown) : null), [shown]);

  useEffect(() => {
    const el = canvas.current;
    if (!el || rows.length === 0) return;
    let id = requestAnimationFrame(() => drawShift(el, rows));
    // Redrawn when its column is resized (the workspace's split), instead of stretching the old picture.
    const observer = typeof ResizeObserver === 'undefined' ? null : new ResizeObserver(() => {
      cancelAnimationFrame(id);
      id = requestAnimationFrame(() => drawShift(el, rows));
    });
    observer?.observe(el);
    return () => {
      cancelAnimationFrame(id);
      observer?.disconnect();
    };
  }, [rows]);

  const run = () => {
    if (busy) return;
    const token = Number(tokenText);
    // The engine checks the token is inside the prompt (and says so when it is not).
    if (!(tokenText.trim() !== '' && Number.isInteger(token) && token >= 0)) {
      setError(`Token “${tokenText}” is not a position: type a whole number 0 … ${T - 1}.`);
      return;
    }
    if (!(Number.isInteger(k) && k >= 1)) {
      setError('Top k must be a whole number ≥ 1.');
      return;
    }
    const chosen = typeof where === 'number' ? where : layer;
    const layers = where === 'all' ? undefined : [chosen];
    setError(null);
    setBusy(
      layers
        ? `Re-running the ${T}-token prompt with ${blocks?.[chosen]?.kind === 'attention' ? `key ${token} masked` : `Δ of token ${token} set to 0`} in ${blockLabel(blocks, chosen)}…`
        : `Re-running the ${T}-token prompt with token ${token} knocked out of every ${hybrid ? 'block (SSM: Δ := 0, attention: key masked)' : 'layer'}…`,
    );
    const onScreen = trace;
    work.run('knockout', { modelId, traceId: onScreen.traceId, token, ...(layers ? { layers } : {}), k }).then(
      (result) => {
        // null: cancelled, the last result stays.
        if (result) setDone({ trace: onScreen, result });
        setBusy(null);
      },
      (e: unknown) => {
        setError(`Knockout failed: ${message(e)}`);
        setBusy(null);
      },
    );
  };

  return (
    <section aria-label="Knockout" data-testid="knockout-panel" aria-busy={busy !== null} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Knockout: filter one token ({hybrid ? 'SSM blocks: Δ_j := 0; attention blocks: mask key j' : 'Δ_j := 0'}) and see the next-token distribution change</h4>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <label className="setting">
          <span>Token j</span>
          <input
            type="number"
            aria-label="Knockout token"
            min={0}
            max={T - 1}
            step={1}
            value={tokenText}
            onChange={(e) => setTyped(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') run();
            }}
            style={{ width: 80 }}
          />
        </label>
        <label className="setting">
          <span>In</span>
          <select aria-label="Knockout layers" value={String(where)} onChange={(e) => setWhere(e.target.value === 'selected' || e.target.value === 'all' ? e.target.value : Number(e.target.value))}>
            <option value="selected">layer {layer} (the selected layer)</option>
            {knockable.map((l) => (
              <option key={l} value={String(l)}>
                {`${blockLabel(blocks, l)} (${knockText(blocks, l)})`}
              </option>
            ))}
            <option value="all">{hybrid ? 'all blocks (SSM: Δ_j := 0, attention: mask key j)' : 'all layers'}</option>
          </select>
        </label>
        <label className="setting">
          <span>Top k</span>
          <input type="number" aria-label="Knockout top k" min={1} max={100} step={1} value={k} onChange={(e) => setK(Math.trunc(Number(e.target.value)))} style={{ width: 60 }} />
        </label>
        <button type="button" className="primary" onClick={run} disabled={busy !== null}>
          Filter this token
        </button>
        <LinePublishControls label="knockout" name={`knockout-token${shown?.token ?? ''}`} disabled={!shown} build={() => (shown ? knockoutFigure(rows, shown.token, shown.layers) : null)} />
        <button type="button" disabled={!shown} onClick={() => shown && downloadCsv(toCsv(knockoutColumns(shown)), `knockout-token${shown.token}.csv`)}>
          Export knockout CSV
        </button>
        <span className="muted">(or click a token in the strip)</span>
      </div>
      {work.running && busy && <WorkProgressBar label={busy} progress={work.progress} onCancel={work.cancel} testId="knockout" />}
      <PanelStatus busy={null} error={error} testId="knockout" />
      {shown && (
        <Stale stale={work.running} testId="knockout-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div
            data-testid="knockout-summary"
            data-token={shown.token}
            data-layers={shown.layers.join(',')}
            data-kl={String(shown.kl)}
            data-tv={String(shown.totalVariation)}
            data-top-after={String(shown.baselineTopProbAfter)}
            style={{ fontSize: 12 }}
          >
            token {shown.token} “{texts[shown.token] ?? ''}” filtered in {hybrid ? shown.layers.map((l) => blockLabel(blocks, l)).join(', ') : `layer${shown.layers.length === 1 ? '' : 's'} ${shown.layers.join(', ')}`}: KL(baseline ‖ knocked) = {shown.kl.toPrecision(4)} nats · total variation{' '}
            {shown.totalVariation.toPrecision(4)} · p(“{labels?.[shown.baseline.ids[0] ?? -1] ?? shown.baseline.texts[0] ?? ''}”) {(shown.baseline.probs[0] ?? NaN).toPrecision(4)} → {shown.baselineTopProbAfter.toPrecision(4)}
          </div>
          {curve && (
            <div data-testid="knockout-positions" data-token={shown.token} data-kl-by-position={shown.klByPosition.join(',')} data-peak-position={peak?.position ?? ''} data-peak-kl={String(peak?.kl ?? '')} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
              <div style={{ fontSize: 12 }}>
                Effect at every later position: KL(baseline ‖ knocked) of the next-token distribution after each token, in nats (positions before token {shown.token} are unchanged)
                {peak && (
                  <>
                    {' '}
                    · largest {peak.kl.toPrecision(4)} at position {peak.position} “{texts[peak.position] ?? ''}”
                  </>
                )}
              </div>
              <LineChart
                label={`KL per position after knocking out token ${shown.token}`}
                testId="knockout-kl-chart"
                xLabel="token (position)"
                yLabel="KL (nats)"
                series={[{ name: 'KL(baseline ‖ knocked), nats', values: curve, colour: COLOUR_AFTER }]}
                marker={shown.token}
                figure={{ label: 'KL per position', name: `knockout-token${shown.token}-kl-by-position` }}
              />
              <div className="actions" style={{ fontSize: 12 }}>
                <button type="button" onClick={() => downloadCsv(toCsv(klPositionColumns(shown, texts)), `knockout-token${shown.token}-kl-by-position.csv`)}>
                  Export KL per position CSV
                </button>
              </div>
            </div>
          )}
          <canvas ref={canvas} data-testid="knockout-canvas" aria-label="Next-token probabilities before and after the knockout" style={{ width: '100%', height: 8 + BAR_ROW * rows.length + AXIS_HEIGHT, display: 'block' }} />
          <div className="muted" style={{ fontSize: 11 }}>
            <span style={{ color: COLOUR_BEFORE }}>■</span> baseline <span style={{ color: COLOUR_AFTER }}>■</span> with token {shown.token} filtered
          </div>
          <table className="config" data-testid="knockout-table" style={{ fontSize: 12 }}>
            <thead>
              <tr>
                <th>next token</th>
                <th>p baseline</th>
                <th>p knocked out</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-id={r.id} data-before={String(r.before)} data-after={String(r.after)}>
                  <td>
                    “{r.text}” ({r.id})
                  </td>
                  <td>{prob(r.before)}</td>
                  <td>{prob(r.after)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Stale>
      )}
    </section>
  );
}
