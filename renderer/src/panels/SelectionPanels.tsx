/**
 * The selection panels' area under the generate panel: a prompt (prefilled with the model's
 * suggested prompt from its studio.json, when it has one), a "Trace" button that runs the engine's
 * `trace` request, a layer selector (native <select>), the score choice, the token strip, the
 * Δ heatmap, the B/C panel and the memory panel, each in a resizable, collapsible PanelFrame whose
 * size is remembered (layout.ts), and "Export trace (safetensors)" (app/analysis/export.ts). The
 * score is the mean Δ over the model's focus channels when its studio.json names them (the
 * selection shows out of the box), ‖Δ_t‖ otherwise, until the user picks one. The trace and what
 * is shown of it live in the store's trace slice.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import { traceResultToSafetensors } from '../../../app/analysis/export';
import type { EngineClient } from '../engine-client';
import { selectTrace, selectTraceDraft, selectTraceLayer, selectTraceScoreMode, useStudio, type TraceScoreMode } from '../store';
import { BCPanel } from './BCPanel';
import { downloadBytes } from './csv';
import { DeltaHeatmap } from './DeltaHeatmap';
import { MemoryPanel } from './MemoryPanel';
import { PanelFrame } from './PanelFrame';
import { ComparePanel } from './ComparePanel';
import { HiddenAttentionPanel } from './HiddenAttentionPanel';
import { KnockoutPanel } from './KnockoutPanel';
import { parseIds, scoreLabel, studioHints, tokenNamer, tokenScores, tokenTexts, type ScoreMode, type StudioHints } from './selection';
import { TokenStrip } from './TokenStrip';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Reads the model's studio.json (bundled models have one) for labels, focus channels and a prompt. */
export function useStudioHints(model: ModelEntry): StudioHints {
  const [hints, setHints] = useState<{ for: string; hints: StudioHints } | null>(null);
  useEffect(() => {
    if (!model.files.includes('studio.json')) return;
    let live = true;
    fetch(`${model.baseUrl}/studio.json`)
      .then((r) => (r.ok ? (r.json() as Promise<unknown>) : null))
      .then((json) => live && setHints({ for: model.id, hints: studioHints(json) }))
      .catch(() => live && setHints({ for: model.id, hints: {} }));
    return () => {
      live = false;
    };
  }, [model.baseUrl, model.files, model.id]);
  return hints?.for === model.id ? hints.hints : {};
}

export function SelectionPanels({ model, info, engine }: { model: ModelEntry; info: LoadedModelInfo; engine: EngineClient }) {
  const trace = useStudio(selectTrace);
  const layerIndex = useStudio(selectTraceLayer);
  const scoreMode = useStudio(selectTraceScoreMode);
  const hints = useStudioHints(model);
  const idsOnly = info.tokenizer === 'none';
  const typed = useStudio(selectTraceDraft);
  const setTyped = (text: string) => useStudio.getState().setPromptDraft('trace', text);
  const suggested = hints.suggestedIds?.join(', ') ?? '';
  const prompt = typed ?? suggested;

  const run = useCallback(() => {
    const store = useStudio.getState();
    if (store.trace?.state === 'running') return;
    let promptParam: { text: string } | { ids: number[] };
    if (idsOnly) {
      const ids = parseIds(prompt);
      if (!ids) {
        store.notify('error', 'This model has no tokenizer: type token ids to trace, e.g. "5, 17, 3".');
        return;
      }
      promptParam = { ids };
    } else if (prompt) {
      promptParam = { text: prompt };
    } else {
      store.notify('error', 'Type a prompt to trace first.');
      return;
    }
    store.setTrace({ state: 'running', modelId: model.id });
    engine.request('trace', { modelId: model.id, prompt: promptParam }).then(
      (result) => {
        const s = useStudio.getState();
        const focus = hints.focusLayer !== undefined ? result.layers.indexOf(hints.focusLayer) : -1;
        s.setTraceLayer(focus >= 0 ? focus : Math.min(s.traceLayer, result.layers.length - 1));
        s.setTrace({ state: 'done', modelId: model.id, result, prompt: promptParam });
      },
      (error: unknown) => useStudio.getState().setTrace({ state: 'failed', modelId: model.id, message: message(error) }),
    );
  }, [engine, hints.focusLayer, idsOnly, model.id, prompt]);

  // A trace opened from a file shows in its own read-only view (components/OpenedTrace.tsx).
  const result = trace?.state === 'done' && trace.modelId === model.id && !trace.opened ? trace.result : null;
  const texts = useMemo(() => (result ? tokenTexts(result, hints.labels) : []), [result, hints.labels]);
  const focusChannels = useMemo(() => (result ? hints.focusChannels?.filter((c) => c < result.deltaWidth) : hints.focusChannels) ?? [], [result, hints.focusChannels]);
  // Until the user picks a score, the focus channels when the model names them: on a model like
  // selective-copy ‖Δ_t‖ does not separate kept from filtered tokens, its focus channels do.
  const wanted = scoreMode ?? (focusChannels.length > 0 ? 'focus' : 'norm');
  const mode = useMemo<ScoreMode>(() => (wanted === 'focus' && focusChannels.length > 0 ? { kind: 'focus', channels: focusChannels } : { kind: 'norm' }), [wanted, focusChannels]);
  // ‖Δ_t‖ comes with the trace (the engine's deltaNorm); the focus score is computed here.
  const scores = useMemo(() => (result ? (mode.kind === 'norm' ? result.deltaNorm : result.delta.map((d) => tokenScores(d, result.deltaWidth, mode))) : []), [result, mode]);
  const nameOf = useMemo(() => tokenNamer({ labels: hints.labels, tokenizer: info.tokenizer, ids: result?.ids ?? [], tokens: result?.tokens ?? [] }), [hints.labels, info.tokenizer, result]);
  const tracedPrompt = trace?.state === 'done' ? trace.prompt : undefined;
  const exportTrace = () => {
    if (!result) return;
    try {
      const bytes = traceResultToSafetensors(result, tracedPrompt ?? { ids: result.ids });
      downloadBytes(bytes, `trace-${model.id.replace(/[^A-Za-z0-9._-]+/g, '_')}.safetensors`);
    } catch (error) {
      useStudio.getState().notify('error', `Export failed: ${message(error)}`);
    }
  };

  return (
    <section className="selection-panels" aria-label="Selection" data-testid="selection-panels" style={{ display: 'flex', flexDirection: 'column', gap: 8, marginTop: 12 }}>
      <h3 style={{ margin: 0 }}>Selection: what each layer keeps and filters</h3>
      <textarea
        value={prompt}
        onChange={(e) => setTyped(e.target.value)}
        aria-label="Input to trace"
        placeholder={idsOnly ? 'Token ids to trace, e.g. 5, 17, 3' : 'Text to trace'}
        rows={2}
        style={{ width: '100%', font: 'inherit', fontSize: 12 }}
      />
      <div className="actions" style={{ flexWrap: 'wrap' }}>
        <button type="button" className="primary" onClick={run} disabled={trace?.state === 'running'}>
          {trace?.state === 'running' ? 'Tracing…' : 'Trace'}
        </button>
        {trace?.state === 'running' && trace.progress && (
          <progress data-testid="trace-progress" aria-label="Trace progress" max={trace.progress.total} value={trace.progress.done} />
        )}
        {result && (
          <label className="setting">
            <span>Layer</span>
            <select aria-label="Layer" value={layerIndex} onChange={(e) => useStudio.getState().setTraceLayer(Number(e.target.value))}>
              {result.layers.map((l, i) => (
                <option key={l} value={i}>
                  {`layer ${l}${l === hints.focusLayer ? ' (focus)' : ''}`}
                </option>
              ))}
            </select>
          </label>
        )}
        {result && (
          <label className="setting">
            <span>Score</span>
            <select aria-label="Score" value={mode.kind} onChange={(e) => useStudio.getState().setTraceScoreMode(e.target.value as TraceScoreMode)}>
              <option value="norm">‖Δ_t‖ (all channels)</option>
              <option value="focus" disabled={focusChannels.length === 0}>
                mean Δ over focus channels
              </option>
            </select>
          </label>
        )}
        {result && (
          <span className="load-text" data-testid="trace-stats">
            {result.ids.length} tokens · {result.layers.length} layers · {result.deltaUnit === 'head' ? `${result.deltaWidth} heads` : `d_inner ${result.deltaWidth}`}
          </span>
        )}
        {result && (
          <button type="button" onClick={exportTrace} title="Δ, B, C of every traced layer, the token ids and the top next tokens (no logits)">
            Export trace (safetensors)
          </button>
        )}
      </div>
      {trace?.state === 'failed' && trace.modelId === model.id && <p className="error">{trace.message}</p>}
      {result && (
        <>
          <PanelFrame id="tokens" title="Tokens">
            <TokenStrip ids={result.ids} texts={texts} layers={result.layers} scores={scores} layerIndex={layerIndex} scoreLabel={scoreLabel(mode)} topNext={result.topNext} nameOf={nameOf} />
          </PanelFrame>
          <PanelFrame id="delta" title="Δ heatmap">
            <DeltaHeatmap trace={result} layerIndex={layerIndex} texts={texts} onLayer={(i) => useStudio.getState().setTraceLayer(i)} />
          </PanelFrame>
          <PanelFrame id="bc" title="B and C">
            <BCPanel trace={result} layerIndex={layerIndex} texts={texts} />
          </PanelFrame>
          <PanelFrame id="memory" title="Memory">
            <MemoryPanel trace={result} layerIndex={layerIndex} texts={texts} />
          </PanelFrame>
          <PanelFrame id="hidden-attention" title="Hidden attention">
            <HiddenAttentionPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={texts} />
          </PanelFrame>
          <PanelFrame id="compare" title="Compare">
            <ComparePanel key={model.id} modelId={model.id} engine={engine} trace={result} prompt={prompt} idsOnly={idsOnly} labels={hints.labels} />
          </PanelFrame>
          <PanelFrame id="knockout" title="Knockout">
            <KnockoutPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={texts} labels={hints.labels} />
          </PanelFrame>
        </>
      )}
    </section>
  );
}
