/**
 * Token attribution: which earlier tokens the prediction after the last token rests on. The engine
 * filters each token j of the trace in turn (Δ_j := 0 in the selected layer or all, the knockout of
 * KnockoutPanel) in one sweep (app/analysis/attribution.ts) and returns the change of the target's
 * log-probability per token: a bar per token (down: filtering it lowers the target, i.e. the
 * prediction needs it). Beside it, hidden attention's answer to the same question — the last
 * token's row α_{T−1, j} of the selected layer, mean over channels — and Spearman's rank
 * correlation of the two. Hover or ←/→ on the focused chart reads a token out (shared hover with
 * the other panels); CSV; SVG / PNG figure.
 */
import { AnalysisSection, Controls } from './analysis-section';
import { useMemo, useRef, useState } from 'react';
import type { AttributionResult } from '../../../app/engine/protocol';
import type { OfTrace, TraceAnalysisProps } from './analysis-panel';
import { selectTraceHoverToken, useStudio } from '../store';
import { useElementSize } from './chart-axes';
import { SignedBarChart } from './SignedBarChart';
import { parseTarget, TargetInput } from './target-input';
import { parseRange, TokenRangeInputs, useTokenRange } from './token-range';
import { downloadCsv, toCsv } from './csv';
import { attributionColumns, attributionFigure, spearman } from './attribution-view';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';
import { PanelStatus } from './PanelStatus';
import { LinePublishControls } from './publish-lines-ui';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const setHover = (token: number | null) => useStudio.getState().setTraceHoverToken(token);
const H = 120;
const ATTENTION_H = 70;

interface Done extends OfTrace<AttributionResult> {
  /** α_{T−1, j} of `layer` for the filtered tokens j ∈ [from, to), mean over channels; null when hidden attention failed. */
  attention: Float32Array | null;
  layer: number;
}

export function AttributionPanel({ modelId, engine, trace, layerIndex, texts, labels }: TraceAnalysisProps) {
  const T = trace.ids.length;
  const layer = trace.layers[layerIndex] ?? 0;
  const [where, setWhere] = useState<'selected' | 'all'>('all');
  const [targetText, setTarget] = useState('');
  const tokenRange = useTokenRange(trace.traceId, { from: 0, to: T });
  const [done, setDone] = useState<Done | null>(null);
  const [error, setError] = useState<string | null>(null);
  const work = useLongWork(engine);
  const hover = useStudio(selectTraceHoverToken);
  // The section, always there, is as wide as the chart (measured from the first render on).
  const box = useRef<HTMLElement>(null);
  const measured = useElementSize(box).width;
  const W = measured > 0 ? measured : 600;
  const shown = done && done.trace === trace ? done : null;
  const result = shown?.result ?? null;
  const targetName = result ? (labels?.[result.target] ?? result.targetText) : '';
  const rho = useMemo(() => (shown?.attention ? spearman(shown.result.logProbChange.map((v) => -v), Array.from(shown.attention)) : NaN), [shown]);

  const run = () => {
    if (work.running) return;
    const parsed = parseTarget(targetText, labels);
    if ('error' in parsed) {
      setError(parsed.error);
      return;
    }
    const target = parsed.id ?? undefined;
    const range = parseRange(tokenRange.fromText, tokenRange.toText, T, 'Tokens');
    if ('error' in range) {
      setError(range.error);
      return;
    }
    setError(null);
    const onScreen = trace;
    const layers = where === 'all' ? undefined : [layer];
    work.run('attribution', { modelId, traceId: onScreen.traceId, from: range.from, to: range.to, ...(layers ? { layers } : {}), ...(target !== undefined ? { target } : {}) }).then(
      async (result) => {
        if (!result) return;
        // Hidden attention's row of the last token, for the comparison (its failure leaves the attribution shown).
        let attention: Float32Array | null = null;
        try {
          attention = (await engine.request('hiddenAttention', { modelId, traceId: onScreen.traceId, layer, unit: 'mean', row: T - 1 })).alpha.slice(result.from, result.to);
        } catch (e) {
          setError(`Hidden attention for the comparison failed: ${message(e)}`);
        }
        setDone({ trace: onScreen, result, attention, layer });
        useStudio.getState().setAttribution({ trace: onScreen, result, targetName: labels?.[result.target] ?? result.targetText });
      },
      (e: unknown) => setError(`Attribution failed: ${message(e)}`),
    );
  };

  const values = useMemo(() => result?.logProbChange ?? [], [result]);
  // Bar i is token off + i.
  const off = result?.from ?? 0;
  const cursor = hover !== null && hover >= off && hover < off + values.length ? hover - off : null;

  return (
    <AnalysisSection boxRef={box} label="Attribution" testId="attribution-panel" busy={work.running} title={<>Token attribution: how much the prediction after the last token needs each earlier token (filter it, Δ_j := 0)</>}>
      <Controls>
        <label className="setting">
          <span>Filter in</span>
          <select aria-label="Attribution layers" value={where} onChange={(e) => setWhere(e.target.value as 'selected' | 'all')}>
            <option value="all">all layers</option>
            <option value="selected">layer {layer} (the selected layer)</option>
          </select>
        </label>
        <TokenRangeInputs label="Attribution" what="Tokens" title="The tokens filtered in turn (each runs the rest of the prompt: narrow this on long prompts)" tokens={T} range={tokenRange} />
        <TargetInput label="Attribution target" placeholder="top prediction" title="Empty: the baseline’s most likely next token. Or a token id (or label)." value={targetText} onChange={setTarget} onEnter={run} />
        <button type="button" className="primary" onClick={run} disabled={work.running}>
          Attribute the prediction
        </button>
        <button type="button" disabled={!result} onClick={() => result && downloadCsv(toCsv(attributionColumns(result, texts, shown?.attention)), `attribution-target${result.target}.csv`)}>
          Export attribution CSV
        </button>
        <LinePublishControls label="attribution" name={`attribution-target${result?.target ?? ''}`} disabled={!result} build={() => (shown ? attributionFigure(shown.result, targetName, shown.attention ? { values: shown.attention, layer: shown.layer } : null) : null)} />
      </Controls>
      {work.running && <WorkProgressBar label={`Filtering tokens ${tokenRange.fromText} … ${Number(tokenRange.toText) - 1} in turn`} progress={work.progress} onCancel={work.cancel} testId="attribution" />}
      <PanelStatus busy={null} error={error} testId="attribution" />
      {result && shown && (
        <Stale stale={work.running} testId="attribution-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div data-testid="attribution-summary" data-target={result.target} data-baseline={String(result.baselineProb)} data-spearman={String(rho)} data-layers={result.layers.join(',')}>
            Target “{targetName}” ({result.target}), p = {result.baselineProb.toPrecision(4)} after the last token; tokens filtered in layer{result.layers.length === 1 ? '' : 's'} {result.layers.join(', ')}. Largest drop:{' '}
            {(() => {
              const i = values.reduce((best, v, k) => (v < (values[best] ?? Infinity) ? k : best), 0);
              return `token ${off + i} “${texts[off + i] ?? ''}” (${(values[i] ?? NaN).toPrecision(3)} nats)`;
            })()}
            {shown.attention && <> · Spearman ρ with hidden attention (layer {shown.layer}, row {T - 1}) {Number.isFinite(rho) ? rho.toFixed(3) : '—'}</>}
          </div>
          <SignedBarChart
            testId="attribution-chart"
            label="Change of the target’s log-probability per filtered token; arrow keys move the readout"
            values={values}
            xOffset={off}
            width={W}
            height={H}
            yLabel="Δ log p (nats)"
            xLabel="filtered token j (position)"
            colours={{ neg: '#ff8a65', pos: '#4fc3f7' }}
            names={{ neg: 'lowers', pos: 'raises' }}
            hover={hover}
            onHover={setHover}
          />
          <div className="muted">
            <span style={{ color: '#ff8a65' }}>■</span> filtering the token lowers p(target) <span style={{ color: '#4fc3f7' }}>■</span> raises it
          </div>
          <div data-testid="attribution-readout" data-token={cursor === null ? '' : off + cursor} aria-live="polite" style={{ minHeight: 16 }}>
            {cursor !== null
              ? `token ${off + cursor} “${texts[off + cursor] ?? ''}” filtered: log p(“${targetName}”) ${(values[cursor] ?? NaN) >= 0 ? '+' : ''}${(values[cursor] ?? NaN).toPrecision(3)} nats · p ${result.baselineProb.toPrecision(3)} → ${(result.probAfter[cursor] ?? NaN).toPrecision(3)} · KL ${(result.kl[cursor] ?? NaN).toPrecision(3)} nats${shown.attention ? ` · hidden attention α ${(shown.attention[cursor] ?? NaN).toPrecision(3)}` : ''}`
              : 'Point at a bar, or focus the chart and use the arrow keys.'}
          </div>
          {shown.attention && (
            <SignedBarChart
              testId="attribution-attention"
              label={`Hidden attention of the last token to each token, layer ${shown.layer}, mean over channels; arrow keys move the readout`}
              values={shown.attention}
              xOffset={off}
              width={W}
              height={ATTENTION_H}
              yLabel={`α(${T - 1}, j)`}
              xLabel={`token j (position): hidden attention of the last token, layer ${shown.layer}`}
              colours={{ neg: '#b39ddb', pos: '#b39ddb' }}
              names={{ neg: 'attention', pos: 'attention' }}
              hover={hover}
              onHover={setHover}
            />
          )}
        </Stale>
      )}
    </AnalysisSection>
  );
}
