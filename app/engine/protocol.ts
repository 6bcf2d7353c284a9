/**
 * The message protocol between the UI thread and the engine's Web Worker (which owns the
 * GPUDevice). Requests are a discriminated union on `kind`, each kind with its own params and
 * result, derived from one map so the two sides cannot disagree.
 */
import type { BlobLike } from '../formats/source.js';
import type { AdapterSummary } from '../gpu/adapter.js';
import type { SelfTestResult } from '../kernels/self-test.js';
import type { LoadProgress } from '../model/loader.js';
import type { StopReason } from '../model/generate.js';
import type { PrefillMatmul } from '../model/int8-plan.js';
import type { WeightChoice } from '../model/memory.js';
import type { MemoryPlan } from '../model/memory-plan.js';
import type { ChatTemplate } from '../tokenizer/chat-template.js';
import type { HiddenAttentionOptions, HiddenAttentionResult, KnockoutOptions, KnockoutResult, TraceResult, TraceRows, TraceWindowResult } from '../analysis/types.js';
import type { LogitLensOptions, LogitLensResult } from '../analysis/logit-lens.js';
import type { AttributionOptions, AttributionResult } from '../analysis/attribution.js';
import type { PatchingOptions, PatchingResult } from '../analysis/patching.js';
import type { SteeringOptions, SteeringResult } from '../analysis/steering.js';
import type { AttentionPatternOptions, AttentionPatternResult } from '../analysis/attention-pattern.js';
import type { BlockKind } from '../model/config.js';

export type { LoadProgress, SelfTestResult, StopReason };
// What the analysis computes (app/analysis/types.ts), re-exported for the requests that return it.
export type { LogitLensResult } from '../analysis/logit-lens.js';
export type { AttributionResult } from '../analysis/attribution.js';
export type { PatchingResult } from '../analysis/patching.js';
export type { SteeringResult } from '../analysis/steering.js';
export type { AttentionPatternResult } from '../analysis/attention-pattern.js';
export type { BlockKind } from '../model/config.js';
export type { HiddenAttentionResult, KnockoutResult, NextTokenDistribution, TraceResult, TraceRows, TraceWindowResult } from '../analysis/types.js';

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
  /** Activations and one session's recurrent state. */
  runtimeBytes: number;
  seconds: number;
  warnings: string[];
  /** What prompts the model takes: text (a tokenizer was found) or token ids only. */
  tokenizer: 'bytes' | 'bpe' | 'none';
  /** The model's end-of-sequence token ids (empty: none declared); generation stops at them unless `ignoreEos`. */
  eosTokenIds: number[];
  /** Δ's columns per token (d_inner channels, or Mamba-2's heads): what focus channels index. */
  deltaWidth: number;
  /** The GPU formats of the big matrices, e.g. "f16", "q4_k + q6_k + fp32" (memory.ts describeWeightFormats). */
  weightFormat: string;
  /**
   * How plain prefill chunks run the mixers' projections: 'int8' when asked for and the GPU has
   * int8 tensor cores (app/model/int8-prefill.ts), else 'fp32' (a warning says why when int8 was asked for).
   */
  prefillMatmul: PrefillMatmul;
  /** The model's blocks in order (engine block index = position): each one's kind and its checkpoint layer (a hybrid's `layers.<layer>`). */
  blocks: { kind: BlockKind; layer: number }[];
  /** Query heads of each attention block (0 without any). */
  attentionHeads: number;
  /**
   * The attention blocks' KV caches of one sequence (null for a pure SSM): `capacity` tokens
   * allocated; `bytesPerToken` (keys, values and the knockout mask of every attention block)
   * grows with the context, `fixedBytes` does not; `ssmStateBytes` is the SSM blocks' state, the
   * same at any context length.
   */
  kvCache: { capacity: number; bytesPerToken: number; fixedBytes: number } | null;
  ssmStateBytes: number;
  /** Instruct models: the chat template (tokenizer_config.json or GGUF metadata) with its bos/eos strings. */
  chatTemplate?: ChatTemplate;
  /** Why the model's chat template cannot be used (names the file), when it has one that is broken. */
  chatTemplateError?: string;
}

/** Text (needs a tokenizer; `addSpecialTokens: false` for text that holds them already, e.g. from a chat template) or token ids. */
export type PromptParam = { text: string; addSpecialTokens?: boolean } | { ids: number[] };

export interface GenerateParams {
  modelId: string;
  /** Text (needs a tokenizer) or token ids. */
  prompt: PromptParam;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  stopStrings: string[];
  /** Generate past the model's end-of-sequence tokens (default: stop at one, stopReason 'end-of-text'; it is not emitted). */
  ignoreEos?: boolean;
  /**
   * Trace every layer while generating: the prompt's and each fed token's Δ, B, C and summaries
   * stream as 'trace-rows' events (tagged with the trace's id), and the finished trace is kept
   * under that id (the summary's `traceId`) for hidden attention and knockout. The top next
   * tokens are kept where the generation has the logits: after the prompt's last token and after
   * every generated one (the other prompt rows: id −1, NaN).
   */
  trace?: boolean;
  /** With `trace`: columns whose mean Δ the live trace's GPU summaries keep (TraceResult.focusScore). */
  traceFocusChannels?: number[];
  /** With `trace`: as TraceParams.detail (default 'auto': windows when every row would pass FULL_TRACE_MAX_BYTES). */
  traceDetail?: 'all' | 'windows' | 'auto';
}

export interface GenerateSummary {
  promptIds: number[];
  ids: number[];
  text: string;
  stopReason: StopReason;
  tokensPerSecond: number;
  prefillSeconds: number;
  /** With `trace`: the id the finished live trace is kept under (its 'trace-rows' events carry it too). */
  traceId?: string;
}

export interface TraceParams {
  modelId: string;
  /** Text (needs a tokenizer) or token ids. */
  prompt: PromptParam;
  /** Layers to trace (default: all). */
  layers?: number[];
  /** Channels (heads) whose mean Δ the GPU summaries keep per token (TraceResult.focusScore). */
  focusChannels?: number[];
  /**
   * 'all' keeps every token's Δ, B, C; 'windows' keeps the GPU summaries and state checkpoints
   * only (TraceResult.detail); 'auto' (default) takes 'windows' when 'all' would pass
   * FULL_TRACE_MAX_BYTES (app/analysis/long-trace.ts).
   */
  detail?: 'all' | 'windows' | 'auto';
}

export interface TraceWindowParams {
  modelId: string;
  /** A kept trace (either detail); `layer` one of its layers; rows [from, to) of its tokens. */
  traceId: string;
  layer: number;
  from: number;
  to: number;
}

export interface HiddenAttentionParams extends HiddenAttentionOptions {
  modelId: string;
  /** The trace to read (a `trace` result's or a traced generation's `traceId`); `layer` is one of its layers. */
  traceId: string;
}

export interface KnockoutParams extends KnockoutOptions {
  modelId: string;
  /** The trace whose tokens are run again (a `trace` result's or a traced generation's `traceId`); `token` is one of them. */
  traceId: string;
}

export interface AttributionParams extends AttributionOptions {
  modelId: string;
  /** The trace whose tokens are filtered one by one (app/analysis/attribution.ts). */
  traceId: string;
}

export interface PatchingParams extends PatchingOptions {
  modelId: string;
  /** The clean run: a kept trace's tokens. */
  traceId: string;
  /** The corrupted prompt, as long as the clean one token for token (app/analysis/patching.ts). */
  corrupt: TraceParams['prompt'];
}

export interface SteeringParams extends Omit<SteeringOptions, 'a' | 'b'> {
  modelId: string;
  /** The steered run: a kept trace's tokens. */
  traceId: string;
  /** The two prompts whose state difference B − A is added (app/analysis/steering.ts). */
  a: TraceParams['prompt'];
  b: TraceParams['prompt'];
}

export interface LogitLensParams extends LogitLensOptions {
  modelId: string;
  /** The trace whose tokens are run again (app/analysis/logit-lens.ts). */
  traceId: string;
}

export interface AttentionPatternParams extends AttentionPatternOptions {
  modelId: string;
  /** The trace whose tokens are run again (at most ATTENTION_PATTERN_MAX_TOKENS, app/analysis/attention-pattern.ts). */
  traceId: string;
}

/** The long analysis requests: they report 'work-progress' and a `cancel` request stops them. */
export type CancellableKind = 'trace' | 'hiddenAttention' | 'attentionPattern' | 'knockout' | 'logitLens' | 'attribution' | 'patching' | 'steering';

/** What a cancel stops: one request by its id, or every running request of a kind. */
export type CancelParams = { requestId: number } | { kind: CancellableKind };

export type GpuStatus =
  | { state: 'ready'; adapter: AdapterSummary; description: string }
  | { state: 'unavailable'; reason: string; advice: string[] };


export interface EngineRequests {
  /** Opens the GPU (once); reports the adapter or why there is none. */
  init: { params: { powerPreference?: 'low-power' | 'high-performance' }; result: GpuStatus };
  /** Runs one real kernel against its CPU reference on random data: proof the GPU path works. */
  selfTest: { params: { rows: number; cols: number }; result: SelfTestResult };
  /** Reads the model's headers, then streams its weights to the GPU (progress as events). One model at a time. */
  /** `weights`: the weights on the GPU (default 'auto': the checkpoint's own precision, app/model/memory.ts tensorWeightFormat). */
  /** contextTokens: a hybrid's KV caches sized for this many tokens (default: its config's context, at most 16,384). */
  /** `prefill`: 'int8' runs plain prefill chunks' projections as int8 products where the GPU has int8 tensor cores (default 'fp32'; LoadedModelInfo.prefillMatmul says what ran). */
  loadModel: { params: { modelId: string; source: ModelSource; weights?: WeightChoice; contextTokens?: number; prefill?: PrefillMatmul }; result: LoadedModelInfo };
  /**
   * The memory plan of a model (app/model/memory-plan.ts), from its headers alone: nothing is
   * loaded or allocated, with a trace of PLANNED_TRACE_TOKENS tokens (loadModel checks the same plan
   * without the trace: none is chosen at load).
   */
  planModel: { params: { source: ModelSource; weights?: WeightChoice; contextTokens?: number; prefill?: PrefillMatmul }; result: MemoryPlan };
  cancelLoad: { params: { modelId: string }; result: { cancelled: boolean } };
  unloadModel: { params: Record<string, never>; result: { unloaded: string | null } };
  /** Generates from the loaded model; tokens stream as 'token' events. One generation at a time. */
  generate: { params: GenerateParams; result: GenerateSummary };
  stopGeneration: { params: Record<string, never>; result: { stopped: boolean } };
  /** Runs a prompt through the loaded model and returns its Δ traces and selection summaries; the engine keeps the trace under its `traceId`. */
  trace: { params: TraceParams; result: TraceResult };
  /**
   * Δ, B and C of one layer over tokens [from, to) of a kept trace: read from a full trace, or
   * recomputed on the GPU from the nearest state checkpoint of a long one (at most
   * TRACE_WINDOW_MAX tokens per request).
   */
  traceWindow: { params: TraceWindowParams; result: TraceWindowResult };
  /** Hidden attention (Ali et al. 2024) of one layer of a kept trace, on the GPU. */
  hiddenAttention: { params: HiddenAttentionParams; result: HiddenAttentionResult };
  /** Attention probabilities [T, T] of one attention block of a hybrid (one head or their mean) for a kept trace's tokens. */
  attentionPattern: { params: AttentionPatternParams; result: AttentionPatternResult };
  /** Re-runs a kept trace's tokens with Δ of one token set to 0 in chosen layers; compares next-token distributions. */
  knockout: { params: KnockoutParams; result: KnockoutResult };
  /** Norm_f + LM head on the residual stream after each layer of a kept trace's tokens (app/analysis/logit-lens.ts). */
  logitLens: { params: LogitLensParams; result: LogitLensResult };
  /** Filters each token of a kept trace in turn (Δ_j := 0) and measures the prediction after the last token (app/analysis/attribution.ts). */
  attribution: { params: AttributionParams; result: AttributionResult };
  /** Restores each layer's state after each token of a clean run into a corrupted one (app/analysis/patching.ts). */
  patching: { params: PatchingParams; result: PatchingResult };
  /** Adds α·(state(B) − state(A)) to a kept trace's run after a token and generates greedily, with and without (app/analysis/steering.ts). */
  steering: { params: SteeringParams; result: SteeringResult };
  /**
   * Stops running trace / hidden attention / knockout requests at their next check (between GPU
   * submits); each then fails with "Cancelled." (app/analysis/cancel.ts CANCELLED_MESSAGE), its
   * GPU buffers freed. `cancelled`: how many were running.
   */
  cancel: { params: CancelParams; result: { cancelled: number } };
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
  /** Progress of a long analysis request (`requestId` its id): `done` of `total` `unit`s. */
  | { kind: 'work-progress'; requestId: number; work: CancellableKind; modelId: string; done: number; total: number; unit: 'tokens' | 'rows' | 'positions' | 'cells' }
  | { kind: 'trace-rows'; modelId: string; rows: TraceRows }
  | { kind: 'token'; modelId: string; id: number; text: string; index: number; tokensPerSecond: number }
  | { kind: 'gpu-error'; message: string };

export type EngineMessage = { type: 'response'; response: EngineResponse } | { type: 'event'; event: EngineEvent };
