/**
 * Prompt, sampling controls, Generate / Stop, and the streaming output with tokens/s.
 * Ctrl+Enter generates, Escape stops.
 */
import { useCallback, useState, type FormEvent, type KeyboardEvent } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { LoadedModelInfo } from '../../../app/engine/protocol';
import type { EngineClient } from '../engine-client';
import { parseIds } from '../panels/selection';
import { selectGenerateDraft, selectGeneration, useStudio } from '../store';

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
}

const DEFAULTS: Settings = { maxTokens: 200, temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.0, seed: 0, stop: '', liveTrace: true };

/**
 * Up to this size the live trace is on by default. Its per-token summaries (write gates and
 * state norms, replayed on the CPU: ~6 ms per token for mamba-130m, ~13 ms for mamba2-130m)
 * would slow the generation of larger models several-fold, so there it is a choice.
 */
const LIVE_TRACE_DEFAULT_MAX_PARAMETERS = 20e6;

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function GeneratePanel({ model, info, engine }: { model: ModelEntry; info: LoadedModelInfo; engine: EngineClient }) {
  const generation = useStudio(selectGeneration);
  const prompt = useStudio(selectGenerateDraft) ?? '';
  const setPrompt = (text: string) => useStudio.getState().setPromptDraft('generate', text);
  const [settings, setSettings] = useState<Settings>(() => ({ ...DEFAULTS, liveTrace: info.parameters <= LIVE_TRACE_DEFAULT_MAX_PARAMETERS }));
  const running = generation?.running === true;
  const idsOnly = info.tokenizer === 'none';

  const start = useCallback(() => {
    const store = useStudio.getState();
    if (store.generation?.running) return;
    let promptParam: { text: string } | { ids: number[] };
    if (idsOnly) {
      const ids = parseIds(prompt);
      if (!ids) {
        store.notify('error', 'This model has no tokenizer: type token ids, e.g. "5, 17, 3".');
        return;
      }
      promptParam = { ids };
    } else {
      if (!prompt) {
        store.notify('error', 'Type a prompt first.');
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
      })
      .then(
        (result) => useStudio.getState().finishGeneration({ stopReason: result.stopReason, tokensPerSecond: result.tokensPerSecond }),
        (error: unknown) => useStudio.getState().finishGeneration({ error: message(error) }),
      );
  }, [engine, idsOnly, model.id, prompt, settings]);

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

  const field = (key: Exclude<keyof Settings, 'liveTrace' | 'stop'>, label: string, props: { min?: number; max?: number; step?: number }) => (
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
            title="Trace every layer while generating: the selection panels below fill as tokens stream. Costs CPU time per token (its summaries are replayed on the CPU), so it slows large models; off by default for them."
          >
            <span>Live trace</span>
            <input type="checkbox" checked={settings.liveTrace} onChange={(e) => setSettings((s) => ({ ...s, liveTrace: e.target.checked }))} aria-label="Live selection trace" />
          </label>
        </div>
        <div className="actions">
          {running ? (
            <button type="button" onClick={stop}>
              Stop
            </button>
          ) : (
            <button type="submit" className="primary">
              Generate
            </button>
          )}
          {generation && generation.modelId === model.id && (
            <span className="load-text" data-testid="generation-stats">
              {generation.tokens} tokens · {generation.tokensPerSecond.toFixed(1)} tokens/s
              {generation.stopReason ? ` · stopped: ${generation.stopReason}` : ''}
            </span>
          )}
        </div>
      </form>
      {generation && generation.modelId === model.id && (
        <pre className="output" data-testid="generation-output" aria-live="polite">
          <span className="prompt-echo">{generation.prompt}</span>
          {generation.output}
          {generation.error && <span className="error">{`\n${generation.error}`}</span>}
        </pre>
      )}
    </section>
  );
}
