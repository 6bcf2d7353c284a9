/**
 * The trace file (metadata format 'mamba-studio/trace@1'), written by the app's "Export trace
 * (safetensors)" from a TraceResult and by the CLI's `trace` command from the same trace (of
 * app/analysis/trace.ts, with its logits kept), through one encoder (`encodeTrace`):
 *
 *   input_ids               I32 [T]
 *   layers.<l>.delta        F32 [T, deltaWidth]   (Mamba-1: d_inner channels; Mamba-2: heads)
 *   layers.<l>.B, .C        F32 [T, nGroups·N]    (groups in order)
 *   top_next.ids            I32 [T, k]            (the k most likely next tokens after each token;
 *   top_next.probs          F32 [T, k]             absent when the trace kept none: a live trace)
 *   logits                  F32 [T, V]            (CLI only: the app's trace keeps the top k, not [T, V])
 *
 * and, so that a trace opened again without its model (app/analysis/trace-file.ts) shows what it
 * showed when made, each layer's per-token summaries when the trace has them:
 *
 *   layers.<l>.delta_norm   F32 [T]               ‖Δ_t‖
 *   layers.<l>.write_gate   F32 [T]
 *   layers.<l>.state_norm   F32 [T]
 *   layers.<l>.state_norm_by_head F32 [T, heads]  (Mamba-2)
 *   layers.<l>.A            F32 [deltaWidth, aStates]
 *
 * `<l>` is the model's layer number (the traced layers, which may be a subset). Metadata: format,
 * model, ids (JSON array), prompt (the text traced, or the ids as JSON when the prompt was ids),
 * architecture, delta_unit, layers (JSON array), prompt_kind ('text' or 'ids'), d_state and n_groups (integers as text) and
 * tokens (JSON array of the readable token texts) when the trace has them.
 */
import { encodeSafetensors, type WriteTensor } from '../formats/safetensors-write.js';
import type { TraceResult } from '../analysis/types.js';

export const TRACE_FORMAT = 'mamba-studio/trace@1';

/** What a trace file holds. */
export type TraceContent = Pick<TraceResult, 'modelId' | 'architecture' | 'ids' | 'layers' | 'deltaWidth' | 'deltaUnit' | 'delta' | 'B' | 'C' | 'dState' | 'nGroups' | 'topNext'> &
  Partial<Pick<TraceResult, 'tokens' | 'deltaNorm' | 'writeGate' | 'stateNorm' | 'stateNormByHead' | 'A' | 'aStates'>> & {
    logits?: { vocab: number; data: Float32Array };
  };

export function encodeTrace(
  trace: TraceContent,
  prompt: { text: string } | { ids: readonly number[] },
  extra: { format?: string; metadata?: Record<string, string> } = {},
): Uint8Array {
  const T = trace.ids.length;
  const bc = trace.nGroups * trace.dState;
  const tensors: Record<string, WriteTensor> = {
    input_ids: { dtype: 'I32', shape: [T], data: Int32Array.from(trace.ids) },
  };
  trace.layers.forEach((layer, i) => {
    const need = (name: string, data: Float32Array | undefined) => {
      if (!data) throw new RangeError(`encodeTrace: layer ${layer} has no ${name}`);
      return data;
    };
    tensors[`layers.${layer}.delta`] = { dtype: 'F32', shape: [T, trace.deltaWidth], data: need('delta', trace.delta[i]) };
    tensors[`layers.${layer}.B`] = { dtype: 'F32', shape: [T, bc], data: need('B', trace.B[i]) };
    tensors[`layers.${layer}.C`] = { dtype: 'F32', shape: [T, bc], data: need('C', trace.C[i]) };
    // The summaries: written only when present for this layer with their full length.
    const perToken = (name: string, data: Float32Array | undefined, shape: number[]) => {
      if (data && data.length === shape.reduce((a, b) => a * b, 1)) tensors[`layers.${layer}.${name}`] = { dtype: 'F32', shape, data };
    };
    perToken('delta_norm', trace.deltaNorm?.[i], [T]);
    perToken('write_gate', trace.writeGate?.[i], [T]);
    perToken('state_norm', trace.stateNorm?.[i], [T]);
    if (trace.deltaUnit === 'head') perToken('state_norm_by_head', trace.stateNormByHead?.[i], [T, trace.deltaWidth]);
    const a = trace.A?.[i];
    if (a && trace.aStates !== undefined && trace.aStates > 0 && a.length === trace.deltaWidth * trace.aStates) {
      tensors[`layers.${layer}.A`] = { dtype: 'F32', shape: [trace.deltaWidth, trace.aStates], data: a };
    }
  });
  const { k, ids, probs } = trace.topNext;
  if (k > 0) {
    tensors['top_next.ids'] = { dtype: 'I32', shape: [T, k], data: ids };
    tensors['top_next.probs'] = { dtype: 'F32', shape: [T, k], data: probs };
  }
  if (trace.logits) tensors.logits = { dtype: 'F32', shape: [T, trace.logits.vocab], data: trace.logits.data };
  return encodeSafetensors(tensors, {
    ...extra.metadata,
    format: extra.format ?? TRACE_FORMAT,
    model: trace.modelId,
    ids: JSON.stringify(trace.ids),
    prompt: 'text' in prompt ? prompt.text : JSON.stringify(prompt.ids),
    prompt_kind: 'text' in prompt ? 'text' : 'ids',
    architecture: trace.architecture,
    delta_unit: trace.deltaUnit,
    layers: JSON.stringify(trace.layers),
    d_state: String(trace.dState),
    n_groups: String(trace.nGroups),
    ...(trace.tokens && trace.tokens.length === T ? { tokens: JSON.stringify(trace.tokens) } : {}),
  });
}

/** The app's export of the trace on screen. */
export function traceResultToSafetensors(result: TraceResult, prompt: { text: string } | { ids: readonly number[] }): Uint8Array {
  return encodeTrace(result, prompt);
}
