/**
 * What tracing needs of a loaded model, shared by the prompt trace and the live trace (trace.ts)
 * and the long traces (long-trace.ts, checkpoints.ts): the target, the trace's name, its taps and
 * each traced layer's A_log.
 */
import { readF32 } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { LanguageModel } from '../model/model.js';
import type { LoadedWeights } from '../model/loader.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { traceLayout } from '../arch/registry.js';
import type { ExtraTap } from './recorder.js';

/** A model on the GPU to trace: the graph, its weights (A_log is read from them) and its tokenizer (for readable tokens). */
export interface TraceTarget {
  model: LanguageModel;
  weights: LoadedWeights;
  tokenizer: Tokenizer | null;
}

/** Names a trace: the id it is kept under and the model it is of. */
export interface TraceName {
  traceId: string;
  modelId: string;
}

/**
 * The taps beyond Δ, B and C a trace needs for its state norms: the scan's input x. Where the
 * layout has x in the rows it keeps anyway (Mamba-2's conv rows), none; else the x tap (Mamba-1).
 */
export function extraTaps(config: LanguageModel['config']): ExtraTap[] {
  const layout = traceLayout(config);
  return layout.xOffset === undefined && layout.extraTaps ? ['x'] : [];
}

/** Each layer's A_log as loaded (Mamba-1 [Di, N], Mamba-2 [H]), read back from the weights. */
export async function readALogs(ctx: GpuContext, target: TraceTarget, layers: readonly number[]): Promise<Map<number, Float32Array>> {
  const out = new Map<number, Float32Array>();
  for (const layer of layers) {
    const layout = target.model.traceLayout(layer);
    if (!layout) throw new Error(`layer ${layer} has no selection to trace`);
    const name = `${target.model.mixerPrefix(layer)}${layout.aLogName}`;
    const buffer = target.weights.buffers.get(name);
    if (!buffer) throw new Error(`the weights have no ${name}`);
    const count = (target.weights.shapes.get(name) ?? []).reduce((a, b) => a * b, 1);
    out.set(layer, await readF32(ctx.device, buffer, count));
  }
  return out;
}

/** A = −exp(A_log) per layer, in the order of `layers`. */
export const aOf = (layers: readonly number[], aLogs: Map<number, Float32Array>) => layers.map((layer) => Float32Array.from(aLogs.get(layer) as Float32Array, (v) => -Math.exp(v)));

export interface PromptTraceOptions extends TraceName {
  /** Layers to trace (default: all). */
  layers?: number[];
  /** Also read back every position's logits, [T, V] float32 (the CLI's trace file has them). */
  keepLogits?: boolean;
  /** After each chunk: tokens prefilled so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** Checked between chunks: once aborted, the trace stops with CancelledError (everything freed). */
  signal?: AbortSignal;
}

/** Each traced layer's A_log weight buffer (fp32, as loaded), which the GPU summaries read. */
export function aLogBuffers(target: TraceTarget, layers: readonly number[]): GPUBuffer[] {
  return layers.map((layer) => {
    const layout = target.model.traceLayout(layer);
    if (!layout) throw new Error(`layer ${layer} has no selection to trace`);
    const name = `${target.model.mixerPrefix(layer)}${layout.aLogName}`;
    const buffer = target.weights.buffers.get(name);
    if (!buffer) throw new Error(`the weights have no ${name}`);
    return buffer;
  });
}
