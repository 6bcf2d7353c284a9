/**
 * A trace opened from a file (an "Export trace" .safetensors or a session), shown read-only
 * without its model or a GPU: the token strip, the Δ heatmap, B and C, and memory draw from the
 * file's numbers alone. Hidden attention, compare and knockout run the model on the GPU, so they
 * say so instead; tracing again with the model loaded replaces this view. The model the file names
 * is shown, selected when the library has it, or named as missing.
 */
import { useMemo } from 'react';
import type { ModelEntry } from '../../../app/contract';
import { BCPanel } from '../panels/BCPanel';
import { DeltaHeatmap } from '../panels/DeltaHeatmap';
import { MemoryPanel } from '../panels/MemoryPanel';
import { PanelFrame } from '../panels/PanelFrame';
import { useStudioHints } from '../panels/use-studio-hints';
import { TraceViewControls } from '../panels/TraceViewControls';
import { scoreLabel, tokenNamer, tokenScores, tokenTexts, type ScoreMode } from '../panels/selection';
import { TokenStrip } from '../panels/TokenStrip';
import { selectModels, selectTrace, selectTraceLayer, selectTraceScoreMode, useStudio } from '../store';
import { findModel } from '../session/session-io';

const NO_MODEL: ModelEntry = { id: '', name: '', source: 'user', format: 'safetensors', architecture: 'unknown', files: [], baseUrl: '', sizeBytes: 0 };

export function OpenedTrace() {
  const trace = useStudio(selectTrace);
  const models = useStudio(selectModels);
  const layerIndex = useStudio(selectTraceLayer);
  const scoreMode = useStudio(selectTraceScoreMode);
  const opened = trace?.state === 'done' ? trace.opened : undefined;
  const model = useMemo(() => findModel(models, opened?.model ?? null), [models, opened]);
  // Labels and focus channels from the model's studio.json when the library has the model.
  const hints = useStudioHints(model ?? NO_MODEL);
  const result = trace?.state === 'done' && opened ? trace.result : null;
  const texts = useMemo(() => (result ? tokenTexts(result, hints.labels) : []), [result, hints.labels]);
  const focusChannels = useMemo(() => (result ? (hints.focusChannels?.filter((c) => c < result.deltaWidth) ?? []) : []), [result, hints.focusChannels]);
  const wanted = scoreMode ?? (focusChannels.length > 0 ? 'focus' : 'norm');
  const mode = useMemo<ScoreMode>(() => (wanted === 'focus' && focusChannels.length > 0 ? { kind: 'focus', channels: focusChannels } : { kind: 'norm' }), [wanted, focusChannels]);
  const scores = useMemo(() => (result ? (mode.kind === 'norm' ? result.deltaNorm : result.delta.map((d) => tokenScores(d, result.deltaWidth, mode))) : []), [result, mode]);
  const nameOf = useMemo(() => tokenNamer({ labels: hints.labels, tokenizer: 'bpe', ids: result?.ids ?? [], tokens: result?.tokens ?? [] }), [hints.labels, result]);
  if (!result || !opened) return null;
  const store = useStudio.getState;
  const modelText = model
    ? `${model.name} (${model.source === 'bundled' ? 'bundled' : 'in your library'}) — load it onto the GPU and trace to run the model again`
    : opened.model
      ? `${opened.model.name}${opened.model.path ? ` (${opened.model.path})` : ''} — not in the library${opened.model.source === 'user' ? ': open that model to run it again' : ''}`
      : 'not named in the file';
  const needsModel = `Needs the model on the GPU: this trace was opened from ${opened.file}. ${model ? `Load ${model.name} and trace again.` : 'Open the model it was made with, load it and trace again.'}`;
  return (
    <section className="panel opened-trace" aria-labelledby="opened-trace-title" data-testid="opened-trace">
      <div className="opened-trace-header">
        <h2 id="opened-trace-title">
          Trace from <span data-testid="opened-trace-file">{opened.file}</span> <span className="muted">(read-only)</span>
        </h2>
        <button type="button" onClick={() => store().setTrace(null)} title="Close this trace (the file is not changed)">
          Close
        </button>
      </div>
      <p className="load-text" data-testid="opened-trace-model">
        Model: {modelText}
      </p>
      <div className="actions" style={{ flexWrap: 'wrap' }}>
        <TraceViewControls result={result} layerIndex={layerIndex} focusLayer={hints.focusLayer} scoreKind={mode.kind} hasFocusChannels={focusChannels.length > 0} />
      </div>
      <PanelFrame id="tokens" title="Tokens">
        <TokenStrip ids={result.ids} texts={texts} layers={result.layers} scores={scores} layerIndex={layerIndex} scoreLabel={scoreLabel(mode)} topNext={result.topNext} nameOf={nameOf} />
      </PanelFrame>
      <PanelFrame id="delta" title="Δ heatmap">
        <DeltaHeatmap trace={result} layerIndex={layerIndex} texts={texts} onLayer={(i) => store().setTraceLayer(i)} />
      </PanelFrame>
      <PanelFrame id="bc" title="B and C">
        <BCPanel trace={result} layerIndex={layerIndex} texts={texts} />
      </PanelFrame>
      <PanelFrame id="memory" title="Memory">
        {result.A.length === 0 && <p className="load-text" data-testid="opened-trace-no-a">This file has no A (written before A was exported): no retention curve.</p>}
        <MemoryPanel trace={result} layerIndex={layerIndex} texts={texts} />
      </PanelFrame>
      {(['Hidden attention', 'Compare', 'Knockout'] as const).map((title) => (
        <p key={title} className="load-text unavailable" data-testid="opened-trace-unavailable">
          <strong>{title}:</strong> {needsModel}
        </p>
      ))}
    </section>
  );
}
