/**
 * State steering (app/analysis/steering.ts): the trace on screen is the steered prompt; prompts A
 * and B (typed here) give the push α·(state(B) − state(A)), added after a chosen token in the
 * selected layer or all, and the greedy continuations with and without it are shown token by
 * token (changed tokens marked), with ‖state(B) − state(A)‖ per layer. CSV of both continuations.
 */
import { AnalysisSection, Controls } from './analysis-section';
import type { OfTrace, TraceAnalysisProps } from './analysis-panel';
import { useEffect, useState } from 'react';
import type { SteeringResult } from '../../../app/engine/protocol';
import { downloadCsv, toCsv } from './csv';
import { Stale, useLongWork, WorkProgressBar } from './LongWork';
import { PanelStatus } from './PanelStatus';
import { parseIds } from './selection';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export interface SteeringPanelProps extends Omit<TraceAnalysisProps, 'texts'> {
  idsOnly: boolean;
}

type Done = OfTrace<SteeringResult>;

export function SteeringPanel({ modelId, engine, trace, layerIndex, idsOnly, labels }: SteeringPanelProps) {
  const T = trace.ids.length;
  const layer = trace.layers[layerIndex] ?? 0;
  const [promptA, setA] = useState('');
  const [promptB, setB] = useState('');
  const [alphaText, setAlpha] = useState('1');
  const [typedAt, setAt] = useState<string | null>(null);
  useEffect(() => setAt(null), [trace.traceId]);
  const atText = typedAt ?? String(Math.max(0, T - 2));
  const [tokensText, setTokens] = useState('8');
  const [where, setWhere] = useState<'selected' | 'all'>('all');
  const [done, setDone] = useState<Done | null>(null);
  const [error, setError] = useState<string | null>(null);
  const work = useLongWork(engine);
  const shown = done && done.trace === trace ? done.result : null;
  const text = (id: number, engineText: string) => labels?.[id] ?? engineText;

  const prompt = (box: string, which: string): { ids: number[] } | { text: string } => {
    if (idsOnly) {
      const ids = parseIds(box);
      if (!ids) throw new Error(`Prompt ${which}: this model has no tokenizer, so type token ids, e.g. "5, 17, 3".`);
      return { ids };
    }
    if (!box.trim()) throw new Error(`Prompt ${which} is empty.`);
    return { text: box };
  };

  const run = () => {
    if (work.running) return;
    const alpha = Number(alphaText);
    const at = Number(atText);
    const tokens = Number(tokensText);
    let a: { ids: number[] } | { text: string };
    let b: { ids: number[] } | { text: string };
    try {
      a = prompt(promptA, 'A');
      b = prompt(promptB, 'B');
      if (!Number.isFinite(alpha)) throw new Error(`α “${alphaText}” is not a number.`);
      if (!(Number.isInteger(at) && at >= 0 && at < T)) throw new Error(`“After token” must be a whole number 0 … ${T - 1}.`);
      if (!(Number.isInteger(tokens) && tokens >= 1 && tokens <= 64)) throw new Error('Generate 1 … 64 tokens.');
    } catch (e) {
      setError(message(e));
      return;
    }
    setError(null);
    const onScreen = trace;
    work.run('steering', { modelId, traceId: onScreen.traceId, a, b, alpha, at, tokens, ...(where === 'selected' ? { layers: [layer] } : {}) }).then(
      (result) => result && setDone({ trace: onScreen, result }),
      (e: unknown) => setError(`Steering failed: ${message(e)}`),
    );
  };

  return (
    <AnalysisSection label="Steering" testId="steering-panel" busy={work.running} title={<>Steering: add α·(state(B) − state(A)) to the state after a token and continue</>}>
      <div style={{ display: 'flex', gap: 8, flexWrap: 'wrap' }}>
        <textarea aria-label="Steering prompt A" rows={2} value={promptA} onChange={(e) => setA(e.target.value)} placeholder={idsOnly ? 'Prompt A: token ids' : 'Prompt A'} style={{ flex: '1 1 200px' }} />
        <textarea aria-label="Steering prompt B" rows={2} value={promptB} onChange={(e) => setB(e.target.value)} placeholder={idsOnly ? 'Prompt B: token ids' : 'Prompt B'} style={{ flex: '1 1 200px' }} />
      </div>
      <Controls>
        <label className="setting">
          <span>α</span>
          <input type="number" aria-label="Steering scale" step={0.1} value={alphaText} onChange={(e) => setAlpha(e.target.value)} style={{ width: 60 }} />
        </label>
        <label className="setting" title="The push is added after this token of the trace on screen; the next token is the first to read it">
          <span>After token</span>
          <input type="number" aria-label="Steering after token" min={0} max={T - 1} value={atText} onChange={(e) => setAt(e.target.value)} style={{ width: 70 }} />
        </label>
        <label className="setting">
          <span>In</span>
          <select aria-label="Steering layers" value={where} onChange={(e) => setWhere(e.target.value as 'selected' | 'all')}>
            <option value="all">all layers</option>
            <option value="selected">layer {layer} (the selected layer)</option>
          </select>
        </label>
        <label className="setting">
          <span>Generate</span>
          <input type="number" aria-label="Steering tokens" min={1} max={64} value={tokensText} onChange={(e) => setTokens(e.target.value)} style={{ width: 60 }} />
        </label>
        <button type="button" className="primary" onClick={run} disabled={work.running}>
          Steer and continue
        </button>
        <button
          type="button"
          disabled={!shown}
          onClick={() =>
            shown &&
            downloadCsv(
              toCsv([
                { name: 'step', values: shown.baseline.ids.map((_, i) => i) },
                { name: 'baseline_id', values: shown.baseline.ids },
                { name: 'baseline_text', values: shown.baseline.ids.map((id, i) => text(id, shown.baseline.texts[i] ?? '')) },
                { name: 'steered_id', values: shown.steered.ids },
                { name: 'steered_text', values: shown.steered.ids.map((id, i) => text(id, shown.steered.texts[i] ?? '')) },
              ]),
              `steering-alpha${shown.alpha}-at${shown.at}.csv`,
            )
          }
        >
          Export steering CSV
        </button>
      </Controls>
      {work.running && <WorkProgressBar label="Steering" progress={work.progress} onCancel={work.cancel} testId="steering" />}
      <PanelStatus busy={null} error={error} testId="steering" />
      {shown && (
        <Stale stale={work.running} testId="steering-result" style={{ display: 'flex', flexDirection: 'column', gap: 4 }}>
          <div className="muted" data-testid="steering-summary" data-baseline={shown.baseline.ids.join(',')} data-steered={shown.steered.ids.join(',')}>
            α = {shown.alpha} after token {shown.at}, layer{shown.layers.length === 1 ? '' : 's'} {shown.layers.join(', ')} · ‖state(B) − state(A)‖ {shown.pushNorm.map((v) => v.toPrecision(3)).join(', ')}
          </div>
          <table className="config" data-testid="steering-table">
            <tbody>
              {(['baseline', 'steered'] as const).map((kind) => (
                <tr key={kind}>
                  <th scope="row">{kind === 'baseline' ? 'without' : 'steered'}</th>
                  {shown[kind].ids.map((id, i) => (
                    <td key={i} style={{ fontWeight: kind === 'steered' && id !== shown.baseline.ids[i] ? 'bold' : undefined, color: kind === 'steered' && id !== shown.baseline.ids[i] ? '#ff8a65' : undefined }}>
                      {text(id, shown[kind].texts[i] ?? '')}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </Stale>
      )}
    </AnalysisSection>
  );
}
