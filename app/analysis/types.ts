/**
 * What the analysis computes, as plain data that crosses the worker boundary: a trace of a
 * prompt or of a generation (TraceResult, streamed as TraceRows), hidden attention of one of its
 * layers, and a knockout's two next-token distributions. app/engine/protocol.ts re-exports these
 * for the requests that return them.
 */
import type { Session } from '../model/session.js';

/** Δ of a prompt's prefill (or of a generation's every fed token), per traced layer, with the per-token selection summaries. */
export interface TraceResult {
  /** The engine keeps the trace under this id (for hidden attention and knockout) while it is among the most recent. */
  traceId: string;
  modelId: string;
  /** The architecture's registry name (app/arch/registry.ts ArchitectureName). */
  architecture: string;
  ids: number[];
  /** Readable text per token: bytes shown readably ('\n' as '⏎', non-printables as hex), ids when there is no tokenizer. */
  tokens: string[];
  /** The traced layers, ascending; the arrays below follow this order. */
  layers: number[];
  /** Δ's columns per token: d_inner channels (Mamba-1) or heads (Mamba-2, one Δ per head). */
  deltaWidth: number;
  /** What a Δ column is: a channel (Mamba-1) or a head (Mamba-2). */
  deltaUnit: 'channel' | 'head';
  /** Δ after softplus, [T, deltaWidth] row-major, per traced layer. */
  delta: Float32Array[];
  /** ‖Δ_t‖₂ over the channels (heads), [T], per traced layer. */
  deltaNorm: Float32Array[];
  /** Mean write gate 1 − exp(Δ·A) over (channel, state) — over heads for Mamba-2 —, [T], per traced layer. */
  writeGate: Float32Array[];
  /** States per channel (N). */
  dState: number;
  /** B/C groups: 1 for Mamba-1; Mamba-2's n_groups (head h reads group ⌊h·G/H⌋). */
  nGroups: number;
  /** B_t (the input projection into the state), [T, nGroups·N] row-major (groups in order), per traced layer. */
  B: Float32Array[];
  /** C_t (the state's readout), [T, nGroups·N] row-major, per traced layer. */
  C: Float32Array[];
  /**
   * A = −exp(A_log), [deltaWidth, aStates] row-major, per traced layer: Mamba-1 [Di, N], Mamba-2
   * [H, 1] (one scalar per head). Retention exp(A·ΣΔ) follows from it and Δ.
   */
  A: Float32Array[];
  aStates: number;
  /** ‖state_t‖ (Frobenius over the whole layer state) after each token, [T], per traced layer. */
  stateNorm: Float32Array[];
  /** Mamba-2: ‖state_t‖ per head (Frobenius over P×N), [T, H], per traced layer. */
  stateNormByHead?: Float32Array[];
  /** The top `k` next-token predictions after each token: ids and probabilities, [T, k] row-major. */
  topNext: { k: number; ids: Int32Array; probs: Float32Array };
  /**
   * How much of Δ, B and C the result holds. 'all' (also when left out): every token of every
   * traced layer. 'windows' (a long trace, issue 18): `delta`, `B` and `C` are empty arrays (and
   * `stateNormByHead` absent); the summaries cover every token, computed on the GPU in the
   * forward pass, and a `traceWindow` request recomputes any window of one layer exactly from the
   * engine's state checkpoints (one every `checkpointEvery` tokens).
   */
  detail?: 'all' | 'windows';
  /** With detail 'windows': tokens between two state checkpoints. */
  checkpointEvery?: number;
  /**
   * Mean Δ over the request's focus channels (TraceParams.focusChannels), [T], per traced layer;
   * computed on the GPU with the other summaries. Left out when no focus channels were asked for.
   */
  focusScore?: Float32Array[];
  /** The focus channels `focusScore` averages. */
  focusChannels?: number[];
}

/** Rows [from, to) of one layer of a trace, recomputed exactly (the `traceWindow` request). */
export interface TraceWindowResult {
  traceId: string;
  layer: number;
  from: number;
  to: number;
  /** Δ after softplus [to − from, deltaWidth], B and C [to − from, nGroups·N], row-major. */
  delta: Float32Array;
  B: Float32Array;
  C: Float32Array;
  /** Mamba-2: ‖state_t‖ per head over the window, [to − from, H]. */
  stateNormByHead?: Float32Array;
}

/**
 * Rows [from, from + ids.length) of a trace growing as tokens stream. `A` (constant per layer)
 * comes with the first rows only (from = 0), which start a new trace.
 */
export type TraceRows = Omit<TraceResult, 'A'> & { from: number; A?: Float32Array[] };

/** Which hidden attention of a trace to compute. */
export interface HiddenAttentionOptions {
  /** A layer of the trace. */
  layer: number;
  /** A channel (Mamba-1) or head (Mamba-2), or the mean over all of them. */
  unit: number | 'mean';
  /** One row i (which earlier tokens token i reads), or the full matrix when left out. */
  row?: number;
}

export interface HiddenAttentionResult {
  layer: number;
  unit: number | 'mean';
  tokens: number;
  /** The full causal matrix α [T, T] row-major (zeros above the diagonal), or one row [T]. */
  row?: number;
  alpha: Float32Array;
}

/** Which knockout of a trace's tokens to run. */
export interface KnockoutOptions {
  /** The token whose Δ is set to 0 ("filter this token"). */
  token: number;
  /** Layers where Δ_token := 0 (all when left out). */
  layers?: number[];
  /** How many of the most likely next tokens to return (default 10). */
  k?: number;
}

export interface NextTokenDistribution {
  ids: number[];
  texts: string[];
  probs: number[];
}

export interface KnockoutResult {
  token: number;
  layers: number[];
  /** Next-token distribution after the last prompt token, without and with the knockout. */
  baseline: NextTokenDistribution;
  knocked: NextTokenDistribution;
  /** KL(baseline ‖ knocked) over the whole vocabulary after the last token, in nats. */
  kl: number;
  /**
   * KL(baseline ‖ knocked) of the next-token distributions after each position from the knocked
   * token on, in nats: [T − token], index i is position token + i (before it, both runs are the
   * same). The last one is `kl`.
   */
  klByPosition: number[];
  /** Total variation distance ½·Σ|p − q|. */
  totalVariation: number;
  /** Probability the knocked-out run gives the baseline's most likely token. */
  baselineTopProbAfter: number;
}

/**
 * A trace as the engine keeps it: the result (CPU copies) and each traced layer's A_log as
 * loaded (Mamba-1 [Di, N], Mamba-2 [H]), which hidden attention reads.
 */
export interface StoredTrace {
  result: TraceResult;
  aLogs: Map<number, Float32Array>;
  /** GPU memory the kept trace holds (a 'windows' trace's state checkpoints). */
  gpuBytes?: number;
  /** A 'windows' trace: recomputes a window of one layer from its checkpoints. */
  recompute?: (window: { layer: number; from: number; to: number }, signal?: AbortSignal) => Promise<TraceWindowResult>;
  /** A 'windows' trace: one row of hidden attention over the whole context, from windows recomputed from its checkpoints. */
  attentionRow?: (
    options: { layer: number; unit: number | 'mean'; row: number },
    work: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
  ) => Promise<HiddenAttentionResult>;
  /** A 'windows' trace: a session standing at its last checkpoint at or before `token`, and that checkpoint's token count (the caller destroys the session). */
  restore?: (token: number) => Promise<{ session: Session; at: number }>;
  /** Frees what the kept trace holds on the GPU (when the store lets it go). */
  release?: () => void;
}
