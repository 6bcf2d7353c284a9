/** Load the selected model onto the GPU: a progress bar in bytes, MB/s, and Cancel. */
import { useCallback, useEffect, useState } from 'react';
import type { WeightChoice } from '../../../app/model/memory';
import type { PrefillMatmul } from '../../../app/model/int8-plan';
import { MAX_CONTEXT_TOKENS } from '../../../app/model/config';
import type { ModelEntry } from '../../../app/contract';
import type { EngineClient } from '../engine-client';
import { formatBytes } from '../format';
import { offersInt8TensorCores } from '../../../app/gpu/adapter';
import { MemoryPlanLine } from './MemoryPlanLine';
import { browserStorage } from '../panels/layout';
import { prefetchStudioHints } from '../panels/use-studio-hints';
import { loadPrefillChoice, loadWeightChoice, savePrefillChoice, saveWeightChoice } from '../weights-setting';
import type { Host } from '../host';
import { selectGpu, selectSelectedLoad, useStudio } from '../store';

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function LoadPanel({ model, host, engine }: { model: ModelEntry; host: Host; engine: EngineClient }) {
  const load = useStudio(selectSelectedLoad);
  const gpu = useStudio(selectGpu);
  // The panels shown once the model is loaded start with its studio.json (the trace box's prompt): read it now.
  useEffect(() => prefetchStudioHints(model), [model]);
  // The weights on the GPU: the checkpoint's own precision by default, else what the user picked last.
  const [weights, setWeightsState] = useState<WeightChoice>(() => loadWeightChoice(browserStorage()));
  const setWeights = useCallback((choice: WeightChoice) => {
    setWeightsState(choice);
    saveWeightChoice(browserStorage(), choice);
  }, []);
  // The prefill's products: fp32 by default, int8 tensor cores when the user picked them.
  const [prefill, setPrefillState] = useState<PrefillMatmul>(() => loadPrefillChoice(browserStorage()));
  const setPrefill = useCallback((choice: PrefillMatmul) => {
    setPrefillState(choice);
    savePrefillChoice(browserStorage(), choice);
  }, []);

  // A hybrid's KV caches: how many tokens of context to make room for (empty: the model's own, at most 16,384).
  const defaultContext = hybridContext(model);
  const [contextText, setContextText] = useState('');
  const contextTokens = parseContext(contextText);
  const start = useCallback(() => {
    const { setLoad } = useStudio.getState();
    setLoad(model.id, { state: 'loading', progress: null });
    engine.request('loadModel', { modelId: model.id, source: host.modelSource(model), weights, prefill, ...(contextTokens !== undefined ? { contextTokens } : {}) }).then(
      (info) => setLoad(model.id, { state: 'loaded', info }),
      (error: unknown) => {
        const text = message(error);
        setLoad(model.id, /cancelled/i.test(text) ? null : { state: 'failed', message: text });
      },
    );
  }, [engine, host, model, weights, prefill, contextTokens]);

  const cancel = useCallback(() => void engine.request('cancelLoad', { modelId: model.id }), [engine, model.id]);

  if (model.architecture === 'unknown') return null;
  const canLoad = gpu.state === 'ready';
  // int8 prefill needs the GPU's int8 tensor cores through WebGPU (known once it is open).
  const noTensorCores = gpu.state === 'ready' && !offersInt8TensorCores(gpu.adapter);
  // What loading said beyond the model's own warnings (e.g. int8 prefill asked for where it cannot run).
  const loadWarnings = load?.state === 'loaded' ? load.info.warnings.filter((w) => !(model.warnings ?? []).includes(w)) : [];
  const loading = load?.state === 'loading';
  // One button that changes its action (Load / Cancel / Reload), so a keyboard user's focus stays on it.
  return (
    <section className="load" aria-label="GPU" data-testid="load-panel">
      <button
        type="button"
        className={loading ? undefined : 'primary'}
        onClick={loading ? cancel : start}
        disabled={!loading && !canLoad}
        title={loading || canLoad ? undefined : 'WebGPU is unavailable'}
      >
        {loading ? 'Cancel' : load?.state === 'loaded' ? 'Reload onto the GPU' : 'Load onto the GPU'}
      </button>
      <label className="setting" title="How the big matrices are kept on the GPU (remembered); arithmetic and the state are fp32 either way">
        <span>GPU weights</span>
        <select aria-label="GPU weights" value={weights} disabled={loading} onChange={(e) => setWeights(e.target.value as WeightChoice)}>
          <option value="auto">as the checkpoint (F16, BF16, GGUF blocks)</option>
          <option value="f32">fp32</option>
          <option value="f16">f16 (half the memory)</option>
        </select>
      </label>
      <label
        className="setting"
        title="How a prompt's chunks of 64 tokens or more run the SSM layers' projections (in_proj, out_proj; Mamba-1's x_proj and dt_proj) (remembered). int8: on the GPU's int8 tensor cores, several times faster on large models, but the logits move by about 1–5 % (rows of activations and weights rounded to 8 bits) and ~1 byte per weight more GPU memory; used only where the GPU offers them to WebGPU. Traces, analyses and decode steps always run fp32."
      >
        <span>Prefill</span>
        <select aria-label="Prefill products" value={prefill} disabled={loading} onChange={(e) => setPrefill(e.target.value as PrefillMatmul)}>
          <option value="fp32">fp32 (exact)</option>
          <option value="int8" disabled={noTensorCores}>
            {noTensorCores ? 'int8 tensor cores (this GPU offers none to WebGPU)' : 'int8 tensor cores (faster, ~1–5 % logit error)'}
          </option>
        </select>
      </label>
      {defaultContext !== null && (
        <label className="setting" title="Tokens of context the attention layers' KV caches hold (their memory grows with it); empty: the model's own context">
          <span>Context (tokens)</span>
          <input
            aria-label="Context tokens"
            type="number"
            min={1}
            max={MAX_CONTEXT_TOKENS}
            step={1}
            placeholder={String(defaultContext)}
            value={contextText}
            disabled={loading}
            onChange={(e) => setContextText(e.target.value)}
            style={{ width: '7em' }}
          />
        </label>
      )}
      <MemoryPlanLine model={model} host={host} engine={engine} weights={weights} prefill={prefill} contextTokens={contextTokens} />
      {load?.state === 'loading' && (
        <>
          <progress
            max={load.progress?.bytesTotal ?? 1}
            value={load.progress?.bytesDone ?? 0}
            aria-label={`Loading ${model.name}`}
          />
          <span className="load-text">
            {load.progress
              ? `${formatBytes(load.progress.bytesDone)} / ${formatBytes(load.progress.bytesTotal)} · ${load.progress.mbPerSecond.toFixed(0)} MB/s`
              : 'Reading headers…'}
          </span>
        </>
      )}
      {load?.state === 'loaded' && (
        <span className="load-text" data-testid="load-done">
          On the GPU: {formatBytes(load.info.bytesOnGpu)} of weights ({load.info.weightFormat}), prefill {load.info.prefillMatmul === 'int8' ? 'int8 (tensor cores)' : 'fp32'}, loaded in {load.info.seconds.toFixed(1)} s
        </span>
      )}
      {loadWarnings.length > 0 && (
        <ul className="warnings" data-testid="load-warnings">
          {loadWarnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      {load?.state === 'failed' && (
        <span className="load-text error" role="alert">
          {load.message}
        </span>
      )}
    </section>
  );
}

/** The KV-cache capacity a hybrid's config gives (null: no attention blocks, nothing to choose). */
function hybridContext(model: ModelEntry): number | null {
  const hybrid = model.config?.hybrid as { attention?: { capacity?: unknown } | null } | undefined;
  const capacity = hybrid?.attention?.capacity;
  return typeof capacity === 'number' ? capacity : null;
}

/** The typed context: a whole number in range, else undefined (the model's own). */
function parseContext(text: string): number | undefined {
  const n = Number(text);
  return text.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= MAX_CONTEXT_TOKENS ? n : undefined;
}
