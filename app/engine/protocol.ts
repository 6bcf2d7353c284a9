/**
 * The message protocol between the UI thread and the engine's Web Worker (which owns the
 * GPUDevice). Requests are a discriminated union on `kind`, each kind with its own params and
 * result, derived from one map so the two sides cannot disagree.
 */
import type { BlobLike } from '../formats/source.js';
import type { AdapterSummary } from '../gpu/adapter.js';
import type { LoadProgress } from '../model/loader.js';

export type { LoadProgress };

/** Where the engine reads a model's files: a base URL (model://, HTTP) or File objects. */
export type ModelSource =
  | { kind: 'url'; baseUrl: string; files: string[] }
  | { kind: 'files'; folder: string; files: (BlobLike & { name: string })[] };

export interface LoadedModelInfo {
  modelId: string;
  architecture: 'mamba' | 'mamba2';
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
  ids: number[];
  /** Readable text per token: bytes shown readably ('\n' as '⏎', non-printables as hex), ids when there is no tokenizer. */
  tokens: string[];
  /** The traced layers, ascending; the arrays below follow this order. */
  layers: number[];
  /** Channels per token (d_inner). */
  dInner: number;
  /** Δ after softplus, [T, Di] row-major, per traced layer. */
  delta: Float32Array[];
  /** ‖Δ_t‖₂ over the channels, [T], per traced layer. */
  deltaNorm: Float32Array[];
  /** Mean write gate 1 − exp(Δ·A) over (channel, state), [T], per traced layer. */
  writeGate: Float32Array[];
  /** States per channel (N). */
  dState: number;
  /** B_t (the input projection into the state), [T, N] row-major, per traced layer. */
  B: Float32Array[];
  /** C_t (the state's readout), [T, N] row-major, per traced layer. */
  C: Float32Array[];
  /** A = −exp(A_log), [Di, N] row-major, per traced layer: retention exp(A·ΣΔ) follows from it and Δ. */
  A: Float32Array[];
  /** ‖state_t‖ (Frobenius over channels and states) after each token, [T], per traced layer. */
  stateNorm: Float32Array[];
}

export type GpuStatus =
  | { state: 'ready'; adapter: AdapterSummary; description: string }
  | { state: 'unavailable'; reason: string; advice: string[] };

export interface SelfTestResult {
  op: string;
  rows: number;
  cols: number;
  maxRelativeError: number;
  tolerance: number;
  passed: boolean;
  milliseconds: number;
}

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
  | { kind: 'token'; modelId: string; id: number; text: string; index: number; tokensPerSecond: number }
  | { kind: 'gpu-error'; message: string };

export type EngineMessage = { type: 'response'; response: EngineResponse } | { type: 'event'; event: EngineEvent };
