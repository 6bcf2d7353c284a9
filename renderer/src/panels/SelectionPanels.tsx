/**
 * The selection panels' area under the generate panel: a prompt (prefilled with the model's
 * suggested prompt from its studio.json, when it has one), a "Trace" button that runs the engine's
 * `trace` request, a layer selector (native <select>), the score choice, the token strip, the
 * Δ heatmap, the B/C panel and the memory panel, each in a resizable, collapsible PanelFrame whose
 * size is remembered (layout.ts), and "Export trace (safetensors)" (app/analysis/export.ts). The
 * score is the mean Δ over the model's focus channels when its studio.json names them (the
 * selection shows out of the box), ‖Δ_t‖ otherwise, until the user picks one. The trace and what
 * is shown of it live in the store's trace slice. A long trace (detail 'windows', issue 18) adds the
 * Overview (TraceOverview.tsx) and gives the other panels the window on screen
 * (use-trace-window.ts useLongTraceView); hidden attention shows one row over the whole context
 * (LongAttentionRow.tsx), compare and knockout say they need a trace that keeps every token, and the export is off (its file format holds every token's Δ, B, C).
 */
import { useCallback, useEffect, useMemo, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import { traceResultToSafetensors } from '../../../app/analysis/export';
import type { EngineClient } from '../engine-client';
import { selectAttribution, selectGeneration, selectTrace, selectTraceDraft, selectTraceLayer, selectTraceScoreMode, traceOnScreen, useStudio } from '../store';
import { WorkProgressBar } from './LongWork';
import { WhatToLookAt } from '../components/FirstRun';
import { BCPanel } from './BCPanel';
import { downloadBytes } from './csv';
import { DeltaHeatmap } from './DeltaHeatmap';
import { MemoryPanel } from './MemoryPanel';
import { PanelFrame } from './PanelFrame';
import { ComparePanel } from './ComparePanel';
import { HiddenAttentionPanel } from './HiddenAttentionPanel';
import { KnockoutPanel } from './KnockoutPanel';
import { ReceptiveFieldPanel } from './ReceptiveFieldPanel';
import { LogitLensPanel } from './LogitLensPanel';
import { AttributionPanel } from './AttributionPanel';
import { PatchingPanel } from './PatchingPanel';
import { SteeringPanel } from './SteeringPanel';
import { LongAttentionRow } from './LongAttentionRow';
import { parseIds, promptBoxText, scoreLabel, tokenNamer, tokenScores, tokenTexts, traceBlocker, type ScoreMode } from './selection';
import { TokenStrip } from './TokenStrip';
import { TraceViewControls } from './TraceViewControls';
import { cancelRunningTrace, startTrace } from './run-trace';
import { useStudioHintsState } from './use-studio-hints';
import { NeedsFullTrace, TraceOverview } from './TraceOverview';
import { useLongTraceView } from './use-trace-window';
import { Workspace } from './Workspace';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
/** The trace box's text, kept in the store (sessions save it). */
const setTyped = (text: string) => useStudio.getState().setPromptDraft('trace', text);

/** `generate`: the generation panel, shown with the trace controls in the workspace's "generate" panel. */
export function SelectionPanels({ model, info, engine, generate }: { model: ModelEntry; info: LoadedModelInfo; engine: EngineClient; generate?: ReactNode }) {
  const trace = useStudio(selectTrace);
  const layerIndex = useStudio(selectTraceLayer);
  const attribution = useStudio(selectAttribution);
  const scoreMode = useStudio(selectTraceScoreMode);
  // Until the model's studio.json is read the box is read-only: its suggested prompt would otherwise
  // land in it while the user (or a test) had started typing, and the two would run together.
  const { hints, settled: hintsSettled } = useStudioHintsState(model);
  const idsOnly = info.tokenizer === 'none';
  const typed = useStudio(selectTraceDraft);
  // The box starts with the model's first suggested prompt (studio.json), text or ids.
  const suggested = hints.prompts?.[0] ? promptBoxText(hints.prompts[0]) : '';
  const prompt = typed ?? suggested;
  const generating = useStudio(selectGeneration)?.running === true;
  // Why the last click on Trace did nothing (shown beside the button).
  const [hint, setHint] = useState<string | null>(null);
  useEffect(() => setHint(null), [generating, prompt]);
  // What a trace keeps: 'auto' (the engine: every token unless that is too big), every token, or summaries + windows.
  const [detail, setDetail] = useState<'auto' | 'all' | 'windows'>('auto');
  // A suggested prompt picked (a chip) fills the box.
  useEffect(
    () =>
      useStudio.subscribe((s, prev) => {
        const picked = s.promptSuggestion;
        if (picked && picked !== prev.promptSuggestion && picked.modelId === model.id) setTyped(picked.text);
      }),
    [model.id],
  );

  const run = useCallback(() => {
    const store = useStudio.getState();
    const blocked = traceBlocker({ tracing: store.trace?.state === 'running', generating: store.generation?.running === true, prompt, idsOnly });
    setHint(blocked);
    if (blocked) return;
    const ids = idsOnly ? parseIds(prompt) : null;
    const promptParam: { text: string } | { ids: number[] } = ids ? { ids } : { text: prompt };
    // A long trace's focus score is computed on the GPU: it needs the channels up front (those that are Δ columns, once each).
    const channels = [...new Set(hints.focusChannels ?? [])].filter((c) => Number.isInteger(c) && c >= 0 && c < info.deltaWidth);
    void startTrace(engine, model.id, promptParam, { focusLayer: hints.focusLayer, detail, ...(detail !== 'all' && channels.length > 0 ? { focusChannels: channels } : {}) });
  }, [engine, hints.focusLayer, hints.focusChannels, idsOnly, model.id, prompt, detail, info.deltaWidth]);
  const cancelTrace = useCallback(() => cancelRunningTrace(engine), [engine]);

  // The finished trace on screen: this one, or while a new one runs (or after it failed) the previous one, dimmed.
  const onScreen = traceOnScreen(trace);
  // A trace opened from a file shows in its own read-only view (components/OpenedTrace.tsx).
  const result = onScreen && onScreen.run.modelId === model.id && !onScreen.run.opened ? onScreen.run.result : null;
  const stale = result !== null && onScreen?.stale === true && trace?.state === 'running';
  // The trace the panels show: the result, or the window on screen of a long one (null until it arrives).
  // A live trace is kept by the engine (and serves windows) once its generation has ended.
  const streaming = generating && onScreen?.run.live === true;
  const long = useLongTraceView(engine, model.id, result, layerIndex, streaming);
  const shown = long.view;
  const texts = useMemo(() => (shown ? tokenTexts(shown, hints.labels) : []), [shown, hints.labels]);
  const focusChannels = useMemo(() => (result ? hints.focusChannels?.filter((c) => c < result.deltaWidth) : hints.focusChannels) ?? [], [result, hints.focusChannels]);
  // Until the user picks a score, the focus channels when the model names them: on a model like
  // selective-copy ‖Δ_t‖ does not separate kept from filtered tokens, its focus channels do.
  const wanted = scoreMode ?? (focusChannels.length > 0 ? 'focus' : 'norm');
  const mode = useMemo<ScoreMode>(() => (wanted === 'focus' && focusChannels.length > 0 ? { kind: 'focus', channels: focusChannels } : { kind: 'norm' }), [wanted, focusChannels]);
  // ‖Δ_t‖ comes with the trace (the engine's deltaNorm); the focus score is computed here (a long trace's by the engine, when it was asked for).
  const scores = useMemo(
    () => (shown ? (mode.kind === 'norm' ? shown.deltaNorm : long.long && shown.focusScore ? shown.focusScore : shown.delta.map((d) => tokenScores(d, shown.deltaWidth, mode))) : []),
    [shown, mode, long.long],
  );
  const nameOf = useMemo(() => tokenNamer({ labels: hints.labels, tokenizer: info.tokenizer, ids: shown?.ids ?? [], tokens: shown?.tokens ?? [] }), [hints.labels, info.tokenizer, shown]);
  const tracedPrompt = onScreen?.run.prompt;
  const exportTrace = () => {
    if (!result) return;
    try {
      const bytes = traceResultToSafetensors(result, tracedPrompt ?? { ids: result.ids });
      downloadBytes(bytes, `trace-${model.id.replace(/[^A-Za-z0-9._-]+/g, '_')}.safetensors`);
    } catch (error) {
      useStudio.getState().notify('error', `Export failed: ${message(error)}`, model.id);
    }
  };

  const controls = (
    <section className="selection-panels" aria-label="Selection" data-testid="trace-controls" style={{ display: 'flex', flexDirection: 'column', gap: 8, marginTop: 12 }}>
      <h3 style={{ margin: 0 }}>Selection: what each layer keeps and filters</h3>
      <WhatToLookAt text={hints.whatToLookAt} />
      <textarea
        className="trace-box"
        value={prompt}
        onChange={(e) => setTyped(e.target.value)}
        onKeyDown={(e: KeyboardEvent) => {
          if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
            e.preventDefault();
            run();
          }
        }}
        aria-label="Input to trace"
        readOnly={!hintsSettled}
        aria-busy={!hintsSettled}
        placeholder={!hintsSettled ? 'Reading the model’s suggested prompt…' : idsOnly ? 'Token ids to trace, e.g. 5, 17, 3 (Ctrl+Enter to trace)' : 'Text to trace (Ctrl+Enter to trace)'}
        rows={3}
      />
      <div className="actions" style={{ flexWrap: 'wrap' }}>
        {/* Never disabled: a disabled button drops the keyboard focus; a click that cannot run says why. */}
        <button
          type="button"
          className="primary"
          onClick={run}
          aria-disabled={trace?.state === 'running' || generating}
          title={trace?.state === 'running' ? 'A trace is running' : generating ? 'A generation is running: stop it to trace' : 'Trace the box (Ctrl+Enter in the box)'}
        >
          {trace?.state === 'running' ? 'Tracing…' : 'Trace'}
        </button>
        {hint && (
          <span className="trace-hint" role="status" data-testid="trace-hint">
            {hint}
          </span>
        )}
        {trace?.state === 'running' && trace.modelId === model.id && (
          <WorkProgressBar label="Tracing" progress={trace.progress ? { ...trace.progress, unit: 'tokens' } : undefined} onCancel={cancelTrace} testId="trace" />
        )}
        {result && <TraceViewControls result={result} layerIndex={layerIndex} focusLayer={hints.focusLayer} scoreKind={mode.kind} hasFocusChannels={focusChannels.length > 0} blocks={info.blocks} />}
        {result && (
          <button
            type="button"
            onClick={exportTrace}
            disabled={long.long !== null}
            title={long.long ? 'A long trace keeps summaries and windows, not every token’s Δ, B, C: the trace file cannot hold it (export the panels’ windows instead)' : 'Δ, B, C of every traced layer, the token ids and the top next tokens (no logits)'}
          >
            Export trace (safetensors)
          </button>
        )}
        <label className="setting" title="What a trace keeps: every token’s Δ, B, C, or per-token summaries with Δ, B, C recomputed for the window on screen (long inputs)">
          <span>Keep</span>
          <select aria-label="Trace detail" value={detail} onChange={(e) => setDetail(e.target.value as 'auto' | 'all' | 'windows')}>
            <option value="auto">auto</option>
            <option value="all">every token</option>
            <option value="windows">summaries + windows</option>
          </select>
        </label>
      </div>
      {trace?.state === 'failed' && trace.modelId === model.id && <p className="error">{trace.message}</p>}
    </section>
  );
  return (
    <Workspace
      // Not "Prompt…" nor "Generate…": its header's move buttons would share their names with the prompt box and the Generate button.
      sideTitle="Generation and tracing"
      side={
        <>
          {generate}
          {controls}
        </>
      }
      empty="Trace a prompt to see here what each layer keeps and filters."
    >
      {result && (
        <>
          {long.long && long.window && (
            <PanelFrame id="overview" title="Overview" stale={stale}>
              <TraceOverview trace={long.long} layerIndex={layerIndex} onLayer={(i) => useStudio.getState().setTraceLayer(i)} window={long.window} onWindow={long.setWindow} loading={long.loading} error={long.error} note={long.waiting} />
            </PanelFrame>
          )}
          {shown && (
            <>
              <PanelFrame id="tokens" title="Tokens" stale={stale}>
                <TokenStrip ids={shown.ids} texts={texts} layers={shown.layers} scores={scores} layerIndex={layerIndex} scoreLabel={scoreLabel(mode)} topNext={shown.topNext} nameOf={nameOf} tokenOffset={shown.tokenOffset} attribution={attribution && attribution.trace === result && shown === result ? attribution : null} />
              </PanelFrame>
              <PanelFrame id="delta" title="Δ heatmap" stale={stale}>
                <DeltaHeatmap trace={shown} layerIndex={layerIndex} texts={texts} onLayer={(i) => useStudio.getState().setTraceLayer(i)} />
              </PanelFrame>
              <PanelFrame id="bc" title="B and C" stale={stale}>
                <BCPanel trace={shown} layerIndex={layerIndex} texts={texts} />
              </PanelFrame>
              <PanelFrame id="memory" title="Memory" stale={stale}>
                <MemoryPanel trace={shown} layerIndex={layerIndex} texts={texts} kvCache={info.kvCache} ssmStateBytes={info.ssmStateBytes} />
              </PanelFrame>
              <PanelFrame id="receptive-field" title="Receptive field" stale={stale}>
                <ReceptiveFieldPanel trace={shown} layerIndex={layerIndex} focusChannels={focusChannels} focusLayer={hints.focusLayer} blocks={info.blocks} />
              </PanelFrame>
            </>
          )}
          <PanelFrame id="hidden-attention" title="Hidden attention" stale={stale}>
            {long.long ? <LongAttentionRow key={model.id} modelId={model.id} engine={engine} trace={long.long} layerIndex={layerIndex} window={long.window} labels={hints.labels} /> : <HiddenAttentionPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={texts} blocks={info.blocks} attentionHeads={info.attentionHeads} />}
          </PanelFrame>
          <PanelFrame id="compare" title="Compare" stale={stale}>
            {long.long ? <NeedsFullTrace what="Compare" testId="compare-needs-full" /> : <ComparePanel key={model.id} modelId={model.id} engine={engine} trace={result} prompt={prompt} idsOnly={idsOnly} labels={hints.labels} />}
          </PanelFrame>
          <PanelFrame id="logit-lens" title="Logit lens" stale={stale}>
            <LogitLensPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={result === shown ? texts : tokenTexts(result, hints.labels)} labels={hints.labels} blocks={info.blocks} />
          </PanelFrame>
          <PanelFrame id="attribution" title="Attribution" stale={stale}>
            <AttributionPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={result === shown ? texts : tokenTexts(result, hints.labels)} labels={hints.labels} />
          </PanelFrame>
          <PanelFrame id="patching" title="Patching" stale={stale}>
            <PatchingPanel key={model.id} modelId={model.id} engine={engine} trace={result} texts={result === shown ? texts : tokenTexts(result, hints.labels)} idsOnly={idsOnly} labels={hints.labels} blocks={info.blocks} />
          </PanelFrame>
          <PanelFrame id="steering" title="Steering" stale={stale}>
            <SteeringPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} idsOnly={idsOnly} labels={hints.labels} />
          </PanelFrame>
          <PanelFrame id="knockout" title="Knockout" stale={stale}>
            {long.long ? <NeedsFullTrace what="Knockout" testId="knockout-needs-full" /> : <KnockoutPanel key={model.id} modelId={model.id} engine={engine} trace={result} layerIndex={layerIndex} texts={texts} labels={hints.labels} blocks={info.blocks} />}
          </PanelFrame>
        </>
      )}
    </Workspace>
  );
}
