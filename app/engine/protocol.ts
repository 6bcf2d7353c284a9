/**
 * The message protocol between the UI thread and the engine's Web Worker (which owns the
 * GPUDevice). Requests are a discriminated union on `kind`, each kind with its own params and
 * result, derived from one map so the two sides cannot disagree.
 */
import type { BlobLike } from '../formats/source.js';
import type { AdapterSummary } from '../gpu/adapter.js';
import type { SelfTestResult } from '../kernels/self-test.js';
import type { LoadProgress } from '../model/loader.js';

export type { LoadProgress, SelfTestResult };

/** Where the engine reads a model's files: a base URL (model://, HTTP) or File objects. */
export type ModelSource =
  | { kind: 'url'; baseUrl: string; files: string[] }
  | { kind: 'files'; folder: string; files: (BlobLike & { name: string })[] };

export interface LoadedModelInfo {
  modelId: string;
  /** The architecture's registry name (app/arch/registry.ts ArchitectureName). */
  architecture: string;
  parameters: number;
  bytesOnGpu: number;
  /** Activations and one session's recurrent state (0 when the architecture cannot run yet). */
  runtimeBytes: number;
  seconds: number;
  warnings: string[];
  /** What prompts the model takes: text (a tokenizer was found) or token ids only. */
  tokenizer: 'bytes' | 'bpe' | 'none';
  /** Why the model cannot generate yet, when it cannot. */
  cannotRun?: string;
}

export interface GenerateParams {
  modelId: string;
  /** Text (needs a tokenizer) or token ids. */
  prompt: { text: string } | { ids: number[] };
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  stopStrings: string[];
  /**
   * Trace every layer while generating: the prompt's and each fed token's Δ, B, C and summaries
   * stream as 'trace-rows' events, and the finished trace becomes the last trace (for hidden
   * attention). The top next tokens are kept where the generation has the logits: after the
   * prompt's last token and after every generated one (the other prompt rows: id −1, NaN).
   */
  trace?: boolean;
}

export interface GenerateSummary {
  promptIds: number[];
  ids: number[];
  text: string;
  stopReason: 'max-tokens' | 'stop-string' | 'stop-id' | 'cancelled';
  tokensPerSecond: number;
  prefillSeconds: number;
}

export interface TraceParams {
  modelId: string;
  /** Text (needs a tokenizer) or token ids. */
  prompt: { text: string } | { ids: number[] };
  /** Layers to trace (default: all). */
  layers?: number[];
}

/** Δ of a prompt's prefill, per traced layer, with the per-token selection summaries. */
export interface TraceResult {
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
}

/**
 * Rows [from, from + ids.length) of a trace growing as tokens stream. `A` (constant per layer)
 * comes with the first rows only (from = 0), which start a new trace.
 */
export type TraceRows = Omit<TraceResult, 'A'> & { from: number; A?: Float32Array[] };

export interface HiddenAttentionParams {
  modelId: string;
  /** A layer of the last trace. */
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

export interface KnockoutParams {
  modelId: string;
  prompt: { text: string } | { ids: number[] };
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
  /** KL(baseline ‖ knocked) over the whole vocabulary, in nats. */
  kl: number;
  /** Total variation distance ½·Σ|p − q|. */
  totalVariation: number;
  /** Probability the knocked-out run gives the baseline's most likely token. */
  baselineTopProbAfter: number;
}

export type GpuStatus =
  | { state: 'ready'; adapter: AdapterSummary; description: string }
  | { state: 'unavailable'; reason: string; advice: string[] };


export interface EngineRequests {
  /** Opens the GPU (once); reports the adapter or why there is none. */
  init: { params: { powerPreference?: 'low-power' | 'high-performance' }; result: GpuStatus };
  /** Runs one real kernel against its CPU reference on random data: proof the GPU path works. */
  selfTest: { params: { rows: number; cols: number }; result: SelfTestResult };
  /** Reads the model's headers, then streams its weights to the GPU (progress as events). One model at a time. */
  loadModel: { params: { modelId: string; source: ModelSource }; result: LoadedModelInfo };
  cancelLoad: { params: { modelId: string }; result: { cancelled: boolean } };
  unloadModel: { params: Record<string, never>; result: { unloaded: string | null } };
  /** Generates from the loaded model; tokens stream as 'token' events. One generation at a time. */
  generate: { params: GenerateParams; result: GenerateSummary };
  stopGeneration: { params: Record<string, never>; result: { stopped: boolean } };
  /** Runs a prompt through the loaded model and returns its Δ traces and selection summaries. */
  trace: { params: TraceParams; result: TraceResult };
  /** Hidden attention (Ali et al. 2024) of one layer of the last trace, on the GPU. */
  hiddenAttention: { params: HiddenAttentionParams; result: HiddenAttentionResult };
  /** Re-runs a prompt with Δ of one token set to 0 in chosen layers; compares next-token distributions. */
  knockout: { params: KnockoutParams; result: KnockoutResult };
}

export type EngineRequestKind = keyof EngineRequests;

export type EngineRequest = {
  [K in EngineRequestKind]: { id: number; kind: K; params: EngineRequests[K]['params'] };
}[EngineRequestKind];

export type EngineResponse =
  | { [K in EngineRequestKind]: { id: number; kind: K; ok: true; result: EngineRequests[K]['result'] } }[EngineRequestKind]
  | { id: number; kind: EngineRequestKind; ok: false; error: string };

/** Unsolicited messages from the engine. */
export type EngineEvent =
  | { kind: 'device-lost'; reason: string; message: string }
  | { kind: 'load-progress'; modelId: string; progress: LoadProgress }
  | { kind: 'trace-progress'; modelId: string; done: number; total: number }
  | { kind: 'trace-rows'; modelId: string; rows: TraceRows }
  | { kind: 'token'; modelId: string; id: number; text: string; index: number; tokensPerSecond: number }
  | { kind: 'gpu-error'; message: string };

export type EngineMessage = { type: 'response'; response: EngineResponse } | { type: 'event'; event: EngineEvent };
