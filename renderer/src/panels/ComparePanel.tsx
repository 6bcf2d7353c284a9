/**
 * Compare: two prompts side by side — the trace on screen (or a typed prompt A) and a prompt B,
 * e.g. the same prompt after an edit — with, per layer, the selection score ‖Δ_t‖ (the traces'
 * deltaNorm) of both token by token, the tokens aligned as a text diff aligns them
 * (app/analysis/align.ts: same, replaced, inserted, deleted; shown by CompareAlignment.tsx), and
 * their difference B − A where a column pairs a token of each. A canvas draws, per layer, both
 * score curves and the difference as bars (PNG export); hovering it, or the token input and the
 * arrow keys, shows the values at one position; a table sums each layer up; CSV export of the
 * numbers. Running B (and A) is a `trace` request (progress shown, cancellable; the last
 * comparison stays on screen, dimmed, meanwhile); the trace on screen stays the one the other
 * analysis panels read (they name it by its id). The last pair is kept in the store: the patching
 * panel takes it as its clean (A) and corrupted (B) prompts.
 */
import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { useStudio } from '../store';
import type { TraceResult } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { compareScores, type ScoreComparison } from '../../../app/analysis/compare';
import { ALIGN_DELETED, ALIGN_INSERTED, ALIGN_KINDS } from '../../../app/analysis/align';
import { AlignmentStrip, COMPARE_COLOURS, CompareLegend } from './CompareAlignment';
import { compareColumns, positionAt } from './analysis';
import { downloadCsv, toCsv } from './csv';
import { compareFigure } from './publish-lines';
import { LinePublishControls } from './publish-lines-ui';
import { moveToken, parseIds, tokenTexts } from './selection';
import { niceTicks } from './chart-scale';
import { prepareCanvas2d } from './canvas2d';
import { PanelStatus } from './PanelStatus';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
/** A score in the readout: '—' where the column has no token of that side. */
const value = (v: number) => (Number.isNaN(v) ? '—' : v.toPrecision(4));
/** A side's token in the readout: its position and text, or '—' (the column has none). */
const side = (index: number, texts: readonly string[]) => (index < 0 ? '—' : `#${index} “${texts[index] ?? ''}”`);

const COLOUR_A = COMPARE_COLOURS.a;
const COLOUR_B = COMPARE_COLOURS.b;
const ROW_HEIGHT = 110;
/** The position axis under the layers' rows. */
const AXIS_HEIGHT = 26;
const DIFF_HEIGHT = 40;

/** Draws, per layer, ‖Δ_t‖ of A and B (lines, shared scale per layer) and B − A (bars around a zero line). */
function drawComparison(canvas: HTMLCanvasElement, cmp: ScoreComparison, cursor: number | null): void {
  const prepared = prepareCanvas2d(canvas);
  if (!prepared) return;
  const { g, width: W, height: H } = prepared;
  const T = cmp.tokens;
  const x = (t: number) => ((t + 0.5) / T) * W;
  cmp.layers.forEach((layer, k) => {
    const top = k * ROW_HEIGHT;
    const a = cmp.a[k] as Float32Array;
    const b = cmp.b[k] as Float32Array;
    const diff = cmp.diff[k] as Float64Array;
    let max = 0;
    // NaN: the column has no token of that side (inserted / deleted).
    for (let t = 0; t < T; t++) max = Math.max(max, Number.isNaN(a[t]) ? 0 : (a[t] as number), Number.isNaN(b[t]) ? 0 : (b[t] as number));
    const lineH = ROW_HEIGHT - DIFF_HEIGHT - 16;
    const y = (v: number) => top + 14 + lineH - (max > 0 ? (v / max) * lineH : 0);
    g.fillStyle = '#8b93a5';
    g.font = '11px system-ui, sans-serif';
    g.fillText(`layer ${layer}: ‖Δ_t‖ of A and B (0 … ${max.toPrecision(3)}); B − A below`, 4, top + 11);
    // Value labels at the right edge: the line chart's 0 and top, the difference's ± extent.
    g.textAlign = 'right';
    g.fillText(max.toPrecision(3), W - 2, y(max) + 10);
    g.fillText('0', W - 2, y(0) - 2);
    g.textAlign = 'left';
    // A wider under B, so that A shows where the two coincide.
    for (const [values, colour, lineWidth] of [
      [a, COLOUR_A, 3],
      [b, COLOUR_B, 1.25],
    ] as const) {
      g.strokeStyle = colour;
      g.lineWidth = lineWidth;
      g.beginPath();
      let drawing = false;
      for (let t = 0; t < T; t++) {
        const v = values[t] as number;
        if (Number.isNaN(v)) drawing = false;
        else if (!drawing) {
          g.moveTo(x(t), y(v));
          g.lineTo(x(t) + 0.01, y(v)); // a lone point still shows (with the round cap)
          drawing = true;
        } else g.lineTo(x(t), y(v));
      }
      g.lineCap = 'round';
      g.stroke();
    }
    let dmax = 0;
    for (let t = 0; t < T; t++) if (!Number.isNaN(diff[t])) dmax = Math.max(dmax, Math.abs(diff[t] as number));
    const zero = top + ROW_HEIGHT - DIFF_HEIGHT / 2 - 2;
    g.strokeStyle = '#555';
    g.beginPath();
    g.moveTo(0, zero);
    g.lineTo(W, zero);
    g.stroke();
    const barW = Math.max(1, W / T - 0.5);
    for (let t = 0; t < T; t++) {
      const d = diff[t] as number;
      if (d === 0 || Number.isNaN(d) || dmax === 0) continue;
      const h = (d / dmax) * (DIFF_HEIGHT / 2 - 2);
      g.fillStyle = d > 0 ? COLOUR_B : COLOUR_A;
      g.fillRect(x(t) - barW / 2, h > 0 ? zero - h : zero, barW, Math.abs(h));
    }
    if (dmax > 0) {
      g.fillStyle = '#8b93a5';
      g.textAlign = 'right';
      g.fillText(`B − A ±${dmax.toPrecision(3)}`, W - 2, zero - DIFF_HEIGHT / 2 + 10);
      g.textAlign = 'left';
    }
    for (const t of cmp.edited) {
      const kind = cmp.alignment.kind[t];
      g.fillStyle = kind === ALIGN_DELETED ? COLOUR_A : kind === ALIGN_INSERTED ? COLOUR_B : COMPARE_COLOURS.replaced;
      g.fillRect(x(t) - 1, top + ROW_HEIGHT - 4, 2, 3);
    }
  });
  // The position axis.
  const axisTop = cmp.layers.length * ROW_HEIGHT;
  g.strokeStyle = '#8b93a5';
  g.fillStyle = '#8b93a5';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(0, axisTop + 0.5);
  g.lineTo(W, axisTop + 0.5);
  g.stroke();
  g.textAlign = 'center';
  for (const t of niceTicks(0, T - 1, Math.max(2, Math.floor(W / 70)), true)) {
    g.beginPath();
    g.moveTo(x(t), axisTop);
    g.lineTo(x(t), axisTop + 4);
    g.stroke();
    g.fillText(String(t), x(t), axisTop + 14);
  }
  g.fillText('position (token index)', W / 2, axisTop + 25);
  g.textAlign = 'left';
  if (cursor !== null) {
    g.strokeStyle = '#ffffff';
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(x(cursor), 0);
    g.lineTo(x(cursor), H);
    g.stroke();
  }
}

/** The start of a prompt, for the legend. */
function preview(texts: readonly string[], idsOnly: boolean): string {
  const text = texts.join(idsOnly ? ' ' : '');
  return text.length > 48 ? `${text.slice(0, 47)}…` : text;
}

export interface ComparePanelProps {
  modelId: string;
  engine: EngineClient;
  /** The trace on screen (A by default). */
  trace: TraceResult;
  /** The selection panels' prompt text (B starts from it). */
  prompt: string;
  /** The model takes token ids only. */
  idsOnly: boolean;
  /** The model's token labels (studio.json), for readable texts. */
  labels?: readonly string[] | undefined;
}

interface Pair {
  /** The trace on screen when it ran: a new trace on screen hides it. */
  onScreen: TraceResult;
  a: TraceResult;
  b: TraceResult;
  textsA: string[];
  textsB: string[];
  /** A and B compared (compareScores): made when they come back, so an alignment too large is this run's error. */
  cmp: ScoreComparison;
}

export function ComparePanel({ modelId, engine, trace, prompt, idsOnly, labels }: ComparePanelProps) {
  const [aOnScreen, setAOnScreen] = useState(true);
  const [typedA, setTypedA] = useState<string | null>(null);
  const [typedB, setTypedB] = useState<string | null>(null);
  const promptA = typedA ?? prompt;
  const promptB = typedB ?? prompt;
  const [pair, setPair] = useState<Pair | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [cursor, setCursor] = useState<number | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const work = useLongWork(engine);

  const shown = pair && pair.onScreen === trace ? pair : null;
  const cmp = shown?.cmp ?? null;

  useEffect(() => {
    const el = canvas.current;
    if (!el || !cmp) return;
    const id = requestAnimationFrame(() => drawComparison(el, cmp, cursor));
    return () => cancelAnimationFrame(id);
  }, [cmp, cursor]);

  const param = useCallback(
    (text: string, which: string): { text: string } | { ids: number[] } => {
      if (idsOnly) {
        const ids = parseIds(text);
        if (!ids) throw new Error(`Prompt ${which}: this model has no tokenizer, so type token ids, e.g. "5, 17, 3".`);
        return { ids };
      }
      if (!text) throw new Error(`Prompt ${which} is empty.`);
      return { text };
    },
    [idsOnly],
  );

  const run = useCallback(async () => {
    if (busy) return;
    setError(null);
    const onScreen = trace;
    try {
      const pa = aOnScreen ? null : param(promptA, 'A');
      const pb = param(promptB, 'B');
      let a: TraceResult | null = onScreen;
      if (pa) {
        setBusy('Tracing prompt A');
        a = await work.run('trace', { modelId, prompt: pa });
      }
      if (!a) return; // cancelled: the last comparison stays
      setBusy('Tracing prompt B');
      const b = await work.run('trace', { modelId, prompt: pb });
      if (!b) return;
      setPair({ onScreen, a, b, textsA: tokenTexts(a, labels), textsB: tokenTexts(b, labels), cmp: compareScores(a, b) });
      useStudio.getState().setComparePair({ a, b, promptB: pb });
      setCursor(null);
    } catch (e) {
      setError(`Compare failed: ${message(e)}`);
    } finally {
      setBusy(null);
    }
  }, [busy, trace, aOnScreen, param, promptA, promptB, work, modelId, labels]);

  const onKey = (event: KeyboardEvent<HTMLElement>) => {
    if (!cmp) return;
    const next = moveToken(cursor, event.key, cmp.tokens);
    if (next !== null) {
      setCursor(next);
      event.preventDefault();
    }
  };

  const t = cmp && cursor !== null && cursor < cmp.tokens ? cursor : null;

  return (
    <section aria-label="Compare" data-testid="compare-panel" aria-busy={busy !== null} style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
      <h4 style={{ margin: '8px 0 0' }}>Compare: two prompts, the difference of selection scores per layer</h4>
      <div style={{ display: 'flex', gap: 8, flexWrap: 'wrap' }}>
        <div style={{ flex: '1 1 280px', display: 'flex', flexDirection: 'column', gap: 2, fontSize: 12 }}>
          <label style={{ display: 'flex', alignItems: 'center', gap: 4 }}>
            <input type="checkbox" aria-label="A is the trace on screen" checked={aOnScreen} onChange={(e) => setAOnScreen(e.target.checked)} />
            A = the trace on screen ({trace.ids.length} tokens)
          </label>
          <textarea
            aria-label="Compare prompt A"
            value={promptA}
            disabled={aOnScreen}
            onChange={(e) => setTypedA(e.target.value)}
            rows={2}
            placeholder={idsOnly ? 'Token ids, e.g. 5, 17, 3' : 'Prompt A'}
            style={{ width: '100%', font: 'inherit', fontSize: 12 }}
          />
        </div>
        <div style={{ flex: '1 1 280px', display: 'flex', flexDirection: 'column', gap: 2, fontSize: 12 }}>
          <span>B (edit it)</span>
          <textarea
            aria-label="Compare prompt B"
            value={promptB}
            onChange={(e) => setTypedB(e.target.value)}
            rows={2}
            placeholder={idsOnly ? 'Token ids, e.g. 5, 17, 3' : 'Prompt B'}
            style={{ width: '100%', font: 'inherit', fontSize: 12 }}
          />
        </div>
      </div>
      <div className="actions" style={{ flexWrap: 'wrap', fontSize: 12 }}>
        <button type="button" className="primary" onClick={() => void run()} disabled={busy !== null}>
          Compare
        </button>
        <label className="setting">
          <span>Position</span>
          <input
            type="number"
            aria-label="Compare position"
            min={0}
            max={cmp ? cmp.tokens - 1 : 0}
            step={1}
            value={t ?? ''}
            disabled={!cmp}
            onChange={(e) => {
              const v = Number(e.target.value);
              if (cmp && Number.isInteger(v) && v >= 0 && v < cmp.tokens) setCursor(v);
            }}
            onKeyDown={onKey}
            style={{ width: 80 }}
          />
        </label>
        <LinePublishControls
          label="compare"
          name="compare"
          disabled={!cmp || !shown}
          build={() => (cmp && shown ? compareFigure(cmp, { a: shown.a === shown.onScreen ? 'the trace on screen' : 'prompt A', b: 'prompt B' }) : null)}
        />
        <button
          type="button"
          disabled={!cmp || !shown}
          onClick={() => cmp && shown && downloadCsv(toCsv(compareColumns(cmp, shown.a.ids, shown.b.ids, shown.textsA, shown.textsB)), 'compare.csv')}
        >
          Export compare CSV
        </button>
      </div>
      {busy && <WorkProgressBar label={busy} progress={work.progress} onCancel={work.cancel} testId="compare" />}
      <PanelStatus busy={null} error={error} testId="compare" />
      {cmp && shown && (
        <Stale stale={busy !== null} testId="compare-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div className="muted" style={{ fontSize: 12 }} data-testid="compare-stats">
            A {shown.a.ids.length} tokens · B {shown.b.ids.length} tokens · aligned as a diff: {cmp.alignment.counts.same} same, {cmp.alignment.counts.replaced} replaced,{' '}
            {cmp.alignment.counts.inserted} inserted, {cmp.alignment.counts.deleted} deleted · {cmp.tokens} positions compared · {cmp.edited.length === 0 ? 'same ids' : `ids differ at ${cmp.edited.length} position${cmp.edited.length === 1 ? '' : 's'}: ${cmp.edited.slice(0, 12).join(', ')}${cmp.edited.length > 12 ? ', …' : ''}`}
          </div>
          <CompareLegend
            a={{ label: shown.a === shown.onScreen ? 'the trace on screen' : 'prompt A', detail: `wide line, ${shown.a.ids.length} tokens`, quote: preview(shown.textsA, idsOnly) }}
            b={{ label: 'prompt B', detail: `thin line, ${shown.b.ids.length} tokens`, quote: preview(shown.textsB, idsOnly) }}
          />
          <AlignmentStrip alignment={cmp.alignment} textsA={shown.textsA} textsB={shown.textsB} cursor={t} onSelect={setCursor} />
          <canvas
            ref={canvas}
            tabIndex={0}
            data-testid="compare-canvas"
            aria-label={`‖Δ_t‖ of prompts A and B and their difference, ${cmp.layers.length} layers`}
            aria-describedby="compare-readout"
            style={{ width: '100%', height: ROW_HEIGHT * cmp.layers.length + AXIS_HEIGHT, display: 'block', cursor: 'crosshair' }}
            onPointerMove={(event) => {
              const box = event.currentTarget.getBoundingClientRect();
              setCursor(positionAt(event.clientX - box.left, box.width, cmp.tokens));
            }}
            onKeyDown={onKey}
          />
          <div id="compare-readout" data-testid="compare-readout" aria-live="polite" style={{ fontSize: 12, minHeight: 18, fontFamily: 'ui-monospace, monospace' }}>
            {t !== null ? (
              <span data-token={t} data-kind={ALIGN_KINDS[cmp.alignment.kind[t] as number]}>
                position {t} ({ALIGN_KINDS[cmp.alignment.kind[t] as number]}): A {side(cmp.alignment.a[t] as number, shown.textsA)} · B {side(cmp.alignment.b[t] as number, shown.textsB)}
                {cmp.layers.map((l, k) => {
                  const a = cmp.a[k]?.[t] as number;
                  const b = cmp.b[k]?.[t] as number;
                  const d = cmp.diff[k]?.[t] as number;
                  return (
                    <span key={l} data-layer={l} data-a={String(a)} data-b={String(b)} data-diff={String(d)}>
                      {' '}
                      · L{l}: A {value(a)}, B {value(b)}, B − A {value(d)}
                    </span>
                  );
                })}
              </span>
            ) : (
              <span className="muted">Hover the chart, or type a position (arrow keys move it), for the scores there.</span>
            )}
          </div>
          <table className="config" data-testid="compare-summary" style={{ fontSize: 12 }}>
            <thead>
              <tr>
                <th>layer</th>
                <th>mean ‖Δ_t‖ A</th>
                <th>mean ‖Δ_t‖ B</th>
                <th>mean B − A</th>
                <th>largest |B − A|</th>
              </tr>
            </thead>
            <tbody>
              {cmp.summaries.map((s) => (
                <tr key={s.layer} data-layer={s.layer} data-mean-diff={String(s.meanDiff)} data-max-abs-diff={String(s.maxAbsDiff)} data-max-at={s.maxAt}>
                  <td>{s.layer}</td>
                  <td>{s.meanA.toPrecision(4)}</td>
                  <td>{s.meanB.toPrecision(4)}</td>
                  <td>{s.meanDiff.toPrecision(4)}</td>
                  <td>
                    {s.maxAbsDiff.toPrecision(4)} at position {s.maxAt}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Stale>
      )}
    </section>
  );
}
