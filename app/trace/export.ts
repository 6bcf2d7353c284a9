/**
 * The app's "Export trace (safetensors)": a TraceResult (what the engine's `trace` request
 * returns to the UI) as a safetensors file in the CLI's format (`traceToSafetensors` in
 * trace.ts, metadata format 'mamba-studio/trace@1'):
 *
 *   input_ids               I32 [T]
 *   layers.<l>.delta        F32 [T, deltaWidth]   (Mamba-1: d_inner channels; Mamba-2: heads)
 *   layers.<l>.B, .C        F32 [T, nGroups·N]    (groups in order)
 *   top_next.ids            I32 [T, k]            (the k most likely next tokens after each token)
 *   top_next.probs          F32 [T, k]
 *
 * `<l>` is the model's layer number (the traced layers, which may be a subset). Metadata: format,
 * model (the model id), ids (JSON array), prompt (the text traced, or the ids as JSON when the
 * prompt was ids), architecture, delta_unit and layers (JSON array).
 *
 * Unlike the CLI's file there are no `logits`: the UI's trace keeps only the top-k next tokens,
 * not the [T, V] logits.
 */
import { encodeSafetensors, type WriteTensor } from '../formats/safetensors-write.js';
import type { TraceResult } from '../engine/protocol.js';

export const TRACE_FORMAT = 'mamba-studio/trace@1';

export function traceResultToSafetensors(result: TraceResult, prompt: { text: string } | { ids: readonly number[] }): Uint8Array {
  const T = result.ids.length;
  const bc = result.nGroups * result.dState;
  const tensors: Record<string, WriteTensor> = {
    input_ids: { dtype: 'I32', shape: [T], data: Int32Array.from(result.ids) },
  };
  result.layers.forEach((layer, i) => {
    const need = (name: string, data: Float32Array | undefined) => {
      if (!data) throw new RangeError(`traceResultToSafetensors: layer ${layer} has no ${name}`);
      return data;
    };
    tensors[`layers.${layer}.delta`] = { dtype: 'F32', shape: [T, result.deltaWidth], data: need('delta', result.delta[i]) };
    tensors[`layers.${layer}.B`] = { dtype: 'F32', shape: [T, bc], data: need('B', result.B[i]) };
    tensors[`layers.${layer}.C`] = { dtype: 'F32', shape: [T, bc], data: need('C', result.C[i]) };
  });
  const { k, ids, probs } = result.topNext;
  tensors['top_next.ids'] = { dtype: 'I32', shape: [T, k], data: ids };
  tensors['top_next.probs'] = { dtype: 'F32', shape: [T, k], data: probs };
  return encodeSafetensors(tensors, {
    format: TRACE_FORMAT,
    model: result.modelId,
    ids: JSON.stringify(result.ids),
    prompt: 'text' in prompt ? prompt.text : JSON.stringify(prompt.ids),
    architecture: result.architecture,
    delta_unit: result.deltaUnit,
    layers: JSON.stringify(result.layers),
  });
}
