/**
 * The memory plan of the selected model (issue 17; app/model/memory-plan.ts), shown in the load
 * panel before and while it loads: "needs 4.6 GB: weights 4.2, state 0.04, activations 0.3, trace
 * 0.1", re-planned when the GPU weights or prefill choice changes. The engine plans from the headers alone
 * (`planModel`): nothing is loaded. A plan over the GPU's memory says so (loading it is refused).
 */
import { useEffect, useRef, useState } from 'react';
import type { ModelEntry } from '../../../app/contract';
import type { WeightChoice } from '../../../app/model/memory';
import type { PrefillMatmul } from '../../../app/model/int8-plan';
import { chunksOf, describeDeviceMemory, describeMemoryPlan, describeWeightsByFormat, formatSize, PREFILL_CHUNK, type MemoryPlan } from '../../../app/model/memory-plan';
import type { EngineClient } from '../engine-client';
import type { Host } from '../host';
import { selectGpu, useStudio } from '../store';

type Planned = { state: 'planning' } | { state: 'done'; plan: MemoryPlan } | { state: 'failed'; message: string };

export function MemoryPlanLine({ model, host, engine, weights, prefill = 'fp32', contextTokens }: { model: ModelEntry; host: Host; engine: EngineClient; weights: WeightChoice; prefill?: PrefillMatmul; contextTokens?: number | undefined }) {
  const gpu = useStudio(selectGpu);
  const [planned, setPlanned] = useState<Planned & { modelId: string }>({ state: 'planning', modelId: model.id });
  // Planned again once the GPU is open: its limits and (for a known GPU) its memory count.
  const gpuReady = gpu.state === 'ready';
  // The entry as of the last plan: a new object for the same model (a library refresh) plans nothing again.
  const entry = useRef(model);
  entry.current = model;

  useEffect(() => {
    let current = true;
    const modelId = entry.current.id;
    // Another model: its own plan (the previous one's stays shown only while re-planning the same model).
    setPlanned((p) => (p.modelId === modelId ? p : { state: 'planning', modelId }));
    engine.request('planModel', { source: host.modelSource(entry.current), weights, prefill, ...(contextTokens !== undefined ? { contextTokens } : {}) }).then(
      (plan) => current && setPlanned({ state: 'done', plan, modelId }),
      (error: unknown) => current && setPlanned({ state: 'failed', message: error instanceof Error ? error.message : String(error), modelId }),
    );
    return () => {
      current = false;
    };
  }, [engine, host, model.id, weights, prefill, contextTokens, gpuReady]);

  // Until the effect has re-planned for a newly picked model, its state is the previous model's:
  // never show that model's plan (or failure) under this one.
  if (planned.state === 'planning' || planned.modelId !== model.id) {
    return (
      <span className="load-text" data-testid="memory-plan">
        Planning GPU memory…
      </span>
    );
  }
  if (planned.state === 'failed') {
    return (
      <span className="load-text error" data-testid="memory-plan">
        No memory plan: {planned.message}
      </span>
    );
  }
  const { plan } = planned;
  const title = [
    `weights: ${describeWeightsByFormat(plan)}`,
    `state: one sequence; activations: a prefill chunk of ${plan.maxTokens.toLocaleString('en-US')} tokens${plan.maxTokens < PREFILL_CHUNK ? ` (${PREFILL_CHUNK.toLocaleString('en-US')} would not fit)` : ''}; traces and analyses run in chunks of ${chunksOf(plan.maxTokens).analysisTokens}`,
    ...(plan.int8Prefill > 0 ? ['int8 prefill: the SSM projections\' weights as int8 codes, and a chunk of activations'] : []),
    ...(plan.trace ? [`trace: ${plan.trace.tokens} tokens of ${plan.trace.layers} layers (and its copy in memory, not on the GPU)`] : []),
    `GPU memory: ${describeDeviceMemory(plan.device)}`,
    ...plan.oversize.map((t) => (t.bindings === null ? `${t.name}: larger than one binding, cannot be split` : `${t.name}: split into ${t.bindings} bindings`)),
    `largest activation: ${plan.largestActivation.label}, ${formatSize(plan.largestActivation.bytes)}${plan.largestActivation.overLimit ? ', larger than one binding' : ''}`,
  ].join('\n');
  // Loading is refused when the model itself does not fit (its memory, or an activation over one
  // binding even at the smaller chunk); a trace that does not fit only warns.
  const unbindable = plan.largestActivation.overLimit;
  const over = plan.modelFits === false || unbindable;
  const device = describeDeviceMemory(plan.device);
  const fit = unbindable
    ? ` — its ${plan.largestActivation.label} activation (${formatSize(plan.largestActivation.bytes)}) is larger than this GPU binds in one buffer: loading is refused`
    : plan.modelFits === false
      ? ` — more than ${device}: loading is refused`
      : plan.fits === false
        ? ` — the model fits ${device}, a trace of ${plan.trace?.tokens ?? 0} tokens would not`
        : plan.fits === true
          ? ` · within ${device}`
          : ' · GPU memory unknown';
  return (
    <span className={plan.fits === false || unbindable ? 'load-text error' : 'load-text'} data-testid="memory-plan" title={title} {...(over ? { role: 'alert' } : {})}>
      {describeMemoryPlan(plan)}
      {fit}
    </span>
  );
}
