/**
 * Traces of a prefill: per layer Δ (after softplus) [T, Di], B [T, N], C [T, N], the residual
 * stream after each block [T, D], and the logits [T, V], captured on the GPU by the forward's
 * taps and read back on request (the CLI's `trace`; the app traces through TraceRecorder, whose
 * summaries give the selection scores).
 */
import { TOP_NEXT, topTokens } from '../analysis/distributions.js';
import { encodeTrace } from './export.js';
import { readF32, storageBuffer } from '../gpu/buffers.js';
import type { GpuContext } from '../gpu/context.js';
import type { MambaModel } from '../model/base.js';
import type { Session } from '../model/session.js';

export interface LayerTrace {
  delta: Float32Array; // Mamba-1 [T, Di]; Mamba-2 [T, H]
  B: Float32Array; // Mamba-1 [T, N]; Mamba-2 [T, G·N] (groups in order)
  C: Float32Array; // as B
  hidden: Float32Array; // [T, D]
}

/** A trace's shape per architecture: where Δ, B and C live in the taps, and what a Δ column is. */
export interface TraceLayout {
  /** Δ's columns per token: d_inner channels (Mamba-1) or heads (Mamba-2). */
  deltaWidth: number;
  /** What a Δ column is: a channel (Mamba-1: A is [Di, N]) or a head (Mamba-2: one scalar A per head). */
  deltaUnit: 'channel' | 'head';
  /** B/C groups: 1 for Mamba-1; Mamba-2's n_groups. */
  nGroups: number;
  /** A's states per Δ column: N for Mamba-1 ([Di, N]), 1 for Mamba-2 ([H]). */
  aStates: number;
  /** Floats per token in the dbc tap (Mamba-1: x_proj's dt_r | B | C; Mamba-2: the conv's x | B | C). */
  rowWidth: number;
  bOffset: number;
  cOffset: number;
  /** B's (and C's) floats per token: nGroups·N. */
  bcWidth: number;
}

/** Where Δ, B and C live in the taps, per architecture. */
export function traceLayout(config: MambaModel['config']): TraceLayout {
  const { dInner: Di, dState: N, dtRank: R, nGroups: G, nHeads: H } = config;
  return config.architecture === 'mamba2'
    ? { deltaWidth: H, deltaUnit: 'head', nGroups: G, aStates: 1, rowWidth: Di + 2 * G * N, bOffset: Di, cOffset: Di + G * N, bcWidth: G * N }
    : { deltaWidth: Di, deltaUnit: 'channel', nGroups: 1, aStates: N, rowWidth: R + 2 * N, bOffset: R, cOffset: R + N, bcWidth: N };
}

export interface PrefillTrace {
  ids: number[];
  logits: Float32Array; // [T, V]
  layers: LayerTrace[];
}

/** Runs a prefill over `ids` with every tap on and reads the trace back. */
export async function tracePrefill(ctx: GpuContext, model: MambaModel, session: Session, ids: number[]): Promise<PrefillTrace> {
  const { dModel: D, vocabSize: V, nLayer: L } = model.config;
  const { deltaWidth, rowWidth, bOffset, cOffset, bcWidth } = traceLayout(model.config);
  const T = ids.length;
  const f = (label: string, n: number) => storageBuffer(ctx.device, `Trace.${label}`, n * 4);
  const logits = f('logits', T * V);
  const taps = {
    delta: Array.from({ length: L }, (_, l) => f(`L${l}.delta`, T * deltaWidth)),
    dbc: Array.from({ length: L }, (_, l) => f(`L${l}.rows`, T * rowWidth)),
    hidden: Array.from({ length: L }, (_, l) => f(`L${l}.hidden`, T * D)),
    row0: 0,
  };
  try {
    session.prefill(ids, { allLogits: logits, taps });
    const layers: LayerTrace[] = [];
    for (let l = 0; l < L; l++) {
      const rows = await readF32(ctx.device, taps.dbc[l] as GPUBuffer, T * rowWidth);
      const B = new Float32Array(T * bcWidth);
      const C = new Float32Array(T * bcWidth);
      for (let t = 0; t < T; t++) {
        B.set(rows.subarray(t * rowWidth + bOffset, t * rowWidth + bOffset + bcWidth), t * bcWidth);
        C.set(rows.subarray(t * rowWidth + cOffset, t * rowWidth + cOffset + bcWidth), t * bcWidth);
      }
      const delta = await readF32(ctx.device, taps.delta[l] as GPUBuffer, T * deltaWidth);
      layers.push({ delta, B, C, hidden: await readF32(ctx.device, taps.hidden[l] as GPUBuffer, T * D) });
    }
    return { ids, logits: await readF32(ctx.device, logits, T * V), layers };
  } finally {
    for (const b of [logits, ...taps.delta, ...taps.dbc, ...taps.hidden]) b.destroy();
  }
}

/**
 * The trace as safetensors, in the app's format (export.ts): every layer's delta, B and C, the
 * top 5 next tokens per position from the logits, and the logits [T, V] themselves.
 */
export function traceToSafetensors(trace: PrefillTrace, config: MambaModel['config'], model: string, prompt?: { text: string }): Uint8Array {
  const T = trace.ids.length;
  const V = config.vocabSize;
  const { deltaWidth } = traceLayout(config);
  const mamba2 = config.architecture === 'mamba2';
  const k = Math.min(TOP_NEXT, V);
  const topIds = new Int32Array(T * k);
  const topProbs = new Float32Array(T * k);
  for (let t = 0; t < T; t++) topTokens(trace.logits.subarray(t * V, (t + 1) * V), k, topIds, topProbs, t * k);
  return encodeTrace(
    {
      modelId: model,
      architecture: config.architecture,
      ids: trace.ids,
      layers: trace.layers.map((_, l) => l),
      deltaWidth,
      deltaUnit: mamba2 ? 'head' : 'channel',
      delta: trace.layers.map((l) => l.delta),
      B: trace.layers.map((l) => l.B),
      C: trace.layers.map((l) => l.C),
      dState: config.dState,
      nGroups: mamba2 ? config.nGroups : 1,
      topNext: { k, ids: topIds, probs: topProbs },
      logits: { vocab: V, data: trace.logits },
    },
    prompt ?? { ids: trace.ids },
  );
}
