/**
 * Prompt, sampling controls, Generate / Stop, and the streaming output with tokens/s.
 * Ctrl+Enter generates, Escape stops. The model's studio.json gives the suggested prompts (chips)
 * and the max tokens and temperature defaults. Id-only models' output is their tokens by the
 * labels the token strip shows (ids on hover, or all ids with "Show ids").
 */
import { useCallback, useEffect, useMemo, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import { DEFAULT_SAMPLING } from '../../../app/model/sampling';
import type { EngineClient } from '../engine-client';
import { parseIds, tokenNamer, type StudioHints } from '../panels/selection';
import { useStudioHints } from '../panels/use-studio-hints';
import { selectGenerateDraft, selectGeneration, useStudio, type GenerationState } from '../store';
import { PromptChips } from './FirstRun';
import { stopReasonText } from './stop-reason';

interface Settings {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  stop: string;
  /** Trace every layer while generating: the selection panels fill as tokens stream. */
  liveTrace: boolean;
  /** What the live trace keeps: every token's Δ, B, C, or summaries with windows recomputed on demand ('auto': by size). */
  liveTraceDetail: 'auto' | 'all' | 'windows';
  /** Stop at the model's end-of-sequence token (LoadedModelInfo.eosTokenIds). */
  stopAtEos: boolean;
}

const DEFAULTS: Settings = { maxTokens: 200, ...DEFAULT_SAMPLING, seed: 0, stop: '', liveTrace: true, liveTraceDetail: 'auto', stopAtEos: true };


const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The settings before the user changes any: the studio's defaults, then the model's studio.json generation values. */
export function initialSettings(hints: StudioHints): Settings {
  // The live trace is on for every model size: its per-token summaries are computed on the GPU
  // (app/analysis/gpu-summary.ts; with windows, in the decode step itself: app/kernels/step-summary.ts),
  // and past FULL_TRACE_MAX_BYTES it keeps windows, not every row (issue 18).
  return {
    ...DEFAULTS,
    ...(hints.maxNewTokens !== undefined ? { maxTokens: hints.maxNewTokens } : {}),
    ...(hints.temperature !== undefined ? { temperature: hints.temperature } : {}),
  };
}

/** An id-only model's tokens: each by its label (the strip's text), its id on hover; one space between tokens. */
function IdTokens({ ids, nameOf, showIds }: { ids: readonly number[]; nameOf: (id: number) => string; showIds: boolean }) {
  return ids.map((id, i) => (
    <span key={i}>
      {i > 0 ? ' ' : ''}
      <span className="token-id" data-id={id} title={`id ${id}`}>
        {showIds ? String(id) : nameOf(id)}
      </span>
    </span>
  ));
}

function Output({ generation, idsOnly, hints }: { generation: GenerationState; idsOnly: boolean; hints: StudioHints }) {
  const [showIds, setShowIds] = useState(false);
  const nameOf = useMemo(() => tokenNamer({ labels: hints.labels, tokenizer: 'none', ids: [], tokens: [] }), [hints.labels]);
  const promptIds = useMemo(() => (idsOnly ? (parseIds(generation.prompt) ?? []) : []), [generation.prompt, idsOnly]);
  return (
    <>
      {idsOnly && hints.labels && (
        <label className="show-ids">
          <input type="checkbox" checked={showIds} onChange={(e) => setShowIds(e.target.checked)} aria-label="Show token ids" />
          <span>Show ids (labels from studio.json otherwise)</span>
        </label>
      )}
      <pre className="output" data-testid="generation-output" aria-live="polite">
        {idsOnly ? (
          <>
            <span className="prompt-echo" data-testid="generation-prompt">
              <IdTokens ids={promptIds} nameOf={nameOf} showIds={showIds} />
            </span>
            {promptIds.length > 0 && generation.ids.length > 0 ? ' ' : ''}
            <span data-testid="generation-generated">
              <IdTokens ids={generation.ids} nameOf={nameOf} showIds={showIds} />
            </span>
          </>
        ) : (
          <>
            <span className="prompt-echo">{generation.prompt}</span>
            {generation.output}
          </>
        )}
        {generation.error && <span className="error">{`\n${generation.error}`}</span>}
      </pre>
    </>
  );
}

/** The fields of `next` that differ from `current`. */
function diff(current: Settings, next: Settings): Partial<Settings> {
  const out: Partial<Settings> = {};
  for (const key of Object.keys(next) as (keyof Settings)[]) if (next[key] !== current[key]) Object.assign(out, { [key]: next[key] });
  return out;
}

export function GeneratePanel({ model, info, engine }: { model: ModelEntry; info: LoadedModelInfo; engine: EngineClient }) {
  const generation = useStudio(selectGeneration);
  const hints = useStudioHints(model);
  const prompt = useStudio(selectGenerateDraft) ?? '';
  const setPrompt = (text: string) => useStudio.getState().setPromptDraft('generate', text);
  // What the user changed; the rest follows the defaults (studio.json's arrive after the first render).
  const [changed, setChanged] = useState<Partial<Settings>>({});
  const settings = useMemo<Settings>(() => ({ ...initialSettings(hints), ...changed }), [hints, changed]);
  const setSettings = (update: (s: Settings) => Settings) => setChanged((c) => ({ ...c, ...diff(settings, update(settings)) }));
  const running = generation?.running === true;
  const idsOnly = info.tokenizer === 'none';
  // The model's focus channels (studio.json) that are Δ columns: the live trace's GPU focus score.
  const focusColumns = useMemo(() => [...new Set(hints.focusChannels ?? [])].filter((c) => Number.isInteger(c) && c >= 0 && c < info.deltaWidth), [hints.focusChannels, info.deltaWidth]);

  // A suggested prompt picked (a chip) fills the box.
  useEffect(
    () =>
      useStudio.subscribe((s, prev) => {
        const picked = s.promptSuggestion;
        if (picked && picked !== prev.promptSuggestion && picked.modelId === model.id) setPrompt(picked.text);
      }),
    [model.id],
  );

  const start = useCallback(() => {
    const store = useStudio.getState();
    if (store.generation?.running) return;
    let promptParam: { text: string } | { ids: number[] };
    if (idsOnly) {
      const ids = parseIds(prompt);
      if (!ids) {
        store.notify('error', 'This model has no tokenizer: type token ids, e.g. "5, 17, 3".', model.id);
        return;
      }
      promptParam = { ids };
    } else {
      if (!prompt) {
        store.notify('error', 'Type a prompt first.', model.id);
        return;
      }
      promptParam = { text: prompt };
    }
    store.startGeneration(model.id, prompt);
    engine
      .request('generate', {
        modelId: model.id,
        prompt: promptParam,
        maxTokens: settings.maxTokens,
        temperature: settings.temperature,
        topK: settings.topK,
        topP: settings.topP,
        repetitionPenalty: settings.repetitionPenalty,
        seed: settings.seed,
        stopStrings: settings.stop ? [settings.stop.replace(/\\n/g, '\n')] : [],
        trace: settings.liveTrace,
        ...(settings.liveTrace && settings.liveTraceDetail !== 'auto' ? { traceDetail: settings.liveTraceDetail } : {}),
        ...(settings.liveTrace && focusColumns.length > 0 ? { traceFocusChannels: focusColumns } : {}),
        ignoreEos: !settings.stopAtEos,
      })
      .then(
        (result) => useStudio.getState().finishGeneration({ stopReason: result.stopReason, tokensPerSecond: result.tokensPerSecond }),
        (error: unknown) => useStudio.getState().finishGeneration({ error: message(error) }),
      );
  }, [engine, focusColumns, idsOnly, model.id, prompt, settings]);

  const stop = useCallback(() => void engine.request('stopGeneration', {}), [engine]);

  const onKeyDown = (event: KeyboardEvent) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      start();
    } else if (event.key === 'Escape' && running) {
      event.preventDefault();
      stop();
    }
  };

  const field = (key: Exclude<keyof Settings, 'liveTrace' | 'liveTraceDetail' | 'stop' | 'stopAtEos'>, label: string, props: { min?: number; max?: number; step?: number }) => (
    <label className="setting">
      <span>{label}</span>
      <input
        type="number"
        value={settings[key]}
        {...props}
        onChange={(e) => setSettings((s) => ({ ...s, [key]: Number(e.target.value) }))}
        aria-label={label}
      />
    </label>
  );

  return (
    <section className="generate" aria-label="Generate" onKeyDown={onKeyDown}>
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          start();
        }}
      >
        <PromptChips modelId={model.id} hints={hints} />
        <textarea
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          placeholder={idsOnly ? 'Token ids, e.g. 5, 17, 3' : 'Type a prompt… (Ctrl+Enter to generate)'}
          aria-label="Prompt"
          rows={4}
        />
        <div className="settings">
          {field('maxTokens', 'Max tokens', { min: 1, max: 100000, step: 1 })}
          {field('temperature', 'Temperature', { min: 0, max: 5, step: 0.05 })}
          {field('topK', 'Top-k', { min: 0, step: 1 })}
          {field('topP', 'Top-p', { min: 0.01, max: 1, step: 0.01 })}
          {field('repetitionPenalty', 'Repetition penalty', { min: 0.5, max: 3, step: 0.05 })}
          {field('seed', 'Seed', { min: 0, step: 1 })}
          <label className="setting">
            <span>Stop</span>
            <input type="text" value={settings.stop} onChange={(e) => setSettings((s) => ({ ...s, stop: e.target.value }))} aria-label="Stop string" />
          </label>
          <label
            className="setting"
            title="Trace every layer while generating: the selection panels below fill as tokens stream. Its summaries are computed on the GPU (keeping windows, in the decode step itself), so it costs a few per cent of the decode speed at any model size."
          >
            <span>Live trace</span>
            <input type="checkbox" checked={settings.liveTrace} onChange={(e) => setSettings((s) => ({ ...s, liveTrace: e.target.checked }))} aria-label="Live selection trace" />
          </label>
          <label className="setting" title="What the live trace keeps: every token’s Δ, B, C, or per-token summaries with Δ, B, C recomputed for the window on screen (long generations). Auto: every token while that fits.">
            <span>Keep</span>
            <select
              aria-label="What the live trace keeps"
              value={settings.liveTraceDetail}
              disabled={!settings.liveTrace}
              onChange={(e) => setSettings((s) => ({ ...s, liveTraceDetail: e.target.value as Settings['liveTraceDetail'] }))}
            >
              <option value="auto">auto</option>
              <option value="all">every token</option>
              <option value="windows">summaries + windows</option>
            </select>
          </label>
          <label
            className="setting"
            title={
              info.eosTokenIds.length > 0
                ? `Stop when the model produces its end-of-sequence token (id ${info.eosTokenIds.join(', ')}); it is not shown. Off: generate up to Max tokens.`
                : 'This model declares no end-of-sequence token (no eos_token_id in its config), so generation runs to Max tokens.'
            }
          >
            <span>Stop at end of text</span>
            <input
              type="checkbox"
              checked={settings.stopAtEos}
              disabled={info.eosTokenIds.length === 0}
              onChange={(e) => setSettings((s) => ({ ...s, stopAtEos: e.target.checked }))}
              aria-label="Stop at end of text"
            />
          </label>
        </div>
        <div className="actions">
          {/* One button (Generate, then Stop): pressing it from the keyboard keeps the focus on it. */}
          <button type={running ? 'button' : 'submit'} className={running ? undefined : 'primary'} onClick={running ? stop : undefined}>
            {running ? 'Stop' : 'Generate'}
          </button>
          {generation && generation.modelId === model.id && (
            <span className="load-text" data-testid="generation-stats">
              {generation.tokens} tokens · {generation.tokensPerSecond.toFixed(1)} tokens/s
              {generation.stopReason ? ` · stopped: ${stopReasonText(generation.stopReason)}` : ''}
            </span>
          )}
        </div>
      </form>
      {generation && generation.modelId === model.id && <Output generation={generation} idsOnly={idsOnly} hints={hints} />}
    </section>
  );
}
