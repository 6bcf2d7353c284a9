/**
 * The mixer of a block, behind one interface: a model is embedding → blocks (RMSNorm, then the
 * block's mixer, then the residual add) → final norm → LM head (model.ts), and each block's mixer
 * is whatever its architecture builds (app/arch/<name>/mixer.ts): a Mamba-1 selective scan, a
 * Mamba-2 SSD, and later attention with a KV cache. The model knows nothing of what is inside.
 *
 * A mixer
 *  - adds its dispatches for T tokens to a plan (`encode`: normed input [T, D] → output [T, D]),
 *    and optionally a fused one-token decode (`encodeDecode`, block norm and residual add folded
 *    into its own kernels);
 *  - owns its per-sequence state (`newState`): a list of GPU buffers whose bytes are the whole
 *    state and whose all-zero content is the empty sequence. The session resets a state by
 *    clearing its buffers, forks or copies it in and out by copying them (session.ts). A KV cache
 *    fits the same contract: keys, values and the filled length (a counter the kernels read and
 *    advance on the GPU, so a plan built once serves every step) in buffers of a fixed capacity
 *    (test/support/attention-mixer.ts shows it);
 *  - says what it can trace (`trace`): where Δ, B and C are in its taps, or null for a mixer with
 *    no selection to show.
 */
import type { GpuContext } from '../gpu/context.js';
import type { GridControl } from '../kernels/layer-grid.js';
import type { Dispatch } from '../kernels/dispatch.js';
import type { WeightFormat } from '../kernels/f16.js';
import { matmul } from '../kernels/matmul.js';
import type { StridedView } from '../kernels/selective-scan.js';
import type { StepSummary } from '../kernels/step-summary.js';
import type { MambaConfig } from './config.js';

/** One mixer's state for one sequence: fp32 buffers, all zero for an empty sequence. */
export type MixerState = GPUBuffer[];

/** The state of one sequence: per layer, its mixer's state. */
export interface SequenceState {
  layers: MixerState[];
}

/** Every buffer of a sequence state, layer by layer (for copies, clears and byte counts). */
export function stateBuffers(state: SequenceState): GPUBuffer[] {
  return state.layers.flat();
}

/**
 * Optional per-layer taps, written into caller-owned buffers from row `row0` (see trace/). An
 * array may leave layers out (undefined): only the layers given are traced. Which taps a mixer
 * fills, and what their rows hold, its `trace` layout says.
 */
export interface ModelTaps {
  /** Δ after softplus: [T, trace.deltaWidth] per layer. */
  delta?: (GPUBuffer | undefined)[];
  /** Rows holding B and C (and, for some mixers, x): [T, trace.rowWidth] per layer. */
  dbc?: (GPUBuffer | undefined)[];
  /** Residual stream after each block, [T, D] per layer (HF hidden_states[i]). */
  hidden?: (GPUBuffer | undefined)[];
  /** Mixers with `trace.extraTaps`: x after the conv and SiLU (the scan's input), [T, Di]. */
  x?: (GPUBuffer | undefined)[];
  /** Mixers with `trace.extraTaps`: in_proj's output rows (x | z), [T, 2Di] — the gate z is the second half. */
  xz?: (GPUBuffer | undefined)[];
  /** Mixers with `trace.extraTaps`: the scan's gated output y·silu(z) (out_proj's input), [T, Di]. */
  y?: (GPUBuffer | undefined)[];
  /** Attention mixers (app/arch/hybrid/attention.ts): q after RoPE, [T, nHeads·headDim] per layer. */
  attnQ?: (GPUBuffer | undefined)[];
  /** Attention mixers: k after RoPE, [T, nKvHeads·headDim] per layer (not expanded per q head: q head h reads kv head h / (nHeads / nKvHeads)). */
  attnK?: (GPUBuffer | undefined)[];
  /**
   * A one-token step's selection summaries computed in the fused decode (app/kernels/step-summary.ts),
   * for a trace that keeps summaries only: traced layer l's scan step writes its slot
   * `summary.slot(index[l])`, and after the LM head the reduce runs and its row is copied to
   * `target()` (read at encode time). Only the fused decode writes them (Model.plan refuses otherwise).
   */
  stepSummary?: { summary: StepSummary; index: readonly (number | undefined)[]; target: () => { buffer: GPUBuffer; offset: number } };
  /** Row (token index) in the tap buffers where this chunk's first token goes. */
  row0: number;
  /** Read at encode time instead of row0: lets a decode plan built once write each token's row. */
  rowOf?: () => number;
}

/**
 * Where a mixer's selection lives in its taps, and what it means. The trace recorder, the trace
 * file and the panels read Δ, B and C through this alone.
 */
export interface TraceLayout {
  /** Δ's columns per token, and what one is: a channel (Mamba-1: d_inner) or a head (Mamba-2). */
  deltaWidth: number;
  deltaUnit: 'channel' | 'head';
  /** Floats per token of the `dbc` tap, and where B and C ([bcWidth] each) start in it. */
  rowWidth: number;
  bOffset: number;
  cOffset: number;
  /** nGroups · N: B's and C's floats per token (groups in order). */
  bcWidth: number;
  nGroups: number;
  /** States per Δ column that A holds: A is [deltaWidth, aStates] (Mamba-1 [Di, N], Mamba-2 [H, 1]). */
  aStates: number;
  /** Where x (the scan's input, [dInner]) starts inside the `dbc` rows, when it is there (Mamba-2). */
  xOffset?: number;
  /** Whether the mixer fills the x, xz and y taps (Mamba-1). */
  extraTaps: boolean;
  /** The mixer weight holding A_log, [deltaWidth · aStates]. */
  aLogName: string;
}

/** MixerContext.linear's shape (T is the chunk's). */
export interface LinearShape {
  inFeatures: number;
  outFeatures: number;
  accumulate?: boolean;
  /** Elements between x's rows (default inFeatures): x is the first inFeatures columns of a wider [T, xStride] buffer. */
  xStride?: number;
}

/** MixerContext.linear's buffers: x [T, I] (rows LinearShape.xStride apart) and y [T, O] whole, bias [O], matmul's split-K scratch. */
export interface LinearBuffers {
  x: GPUBuffer;
  y: GPUBuffer;
  bias?: GPUBuffer | null;
  scratch?: GPUBuffer | undefined;
  /**
   * x is not computed yet: it is Mamba-2's gated RMSNorm of one group, x = y·silu(z)·g·rsqrt(mean
   * (y·silu(z))² + eps) over the row (y [T, I] whole, z a strided view). The int8 product folds it
   * into its quantize (quantizeRowsI8 `gated`) and x is never written; the fp32 path first runs
   * `norm()` (which writes x) and then the matmul.
   */
  gatedNorm?: GatedNormInput & { norm: () => Dispatch };
}

/** Mamba-2's one-group gated RMSNorm before a Linear layer, by its inputs: y [T, I] whole, z a strided view, the norm weight [I]. */
export interface GatedNormInput {
  y: GPUBuffer;
  z: StridedView;
  weight: GPUBuffer;
  eps: number;
}

/** MixerContext.linear's fp32 path: the matmul of T tokens with the layer's weight `name` as stored. */
export function fp32Linear(ctx: GpuContext, weights: LayerWeights, tokens: number, name: string, shape: LinearShape, buffers: LinearBuffers, label: string): Dispatch {
  return matmul(ctx, { ...shape, tokens, weightFormat: weights.format(name) }, { ...buffers, weight: weights.weight(name) }, label);
}

/** What a mixer gets to add its steps for one layer of a plan over T tokens. */
export interface MixerContext {
  layer: number;
  tokens: number;
  /** The block's normed input [T, D]. */
  input: GPUBuffer;
  /** Where the mixer's output goes [T, D]. */
  output: GPUBuffer;
  state: MixerState;
  taps: ModelTaps | undefined;
  run(dispatch: Dispatch): void;
  /**
   * Runs a Linear layer over the chunk's T tokens with this layer's weight `name` (under the
   * mixer prefix; [O, I]): y [T, O] (+)= x [T, I] · Wᵀ (+ bias). The fp32 matmul, or, where the
   * model runs its prefill's projections in int8 (app/model/int8-prefill.ts) and `name` is one of
   * INT8_PROJECTIONS, the int8 product.
   */
  linear(name: string, shape: LinearShape, buffers: LinearBuffers, label: string): void;
  /** Copies T rows of `rowBytes` from `from` into a tap buffer at the chunk's row (no-op without one). */
  copy(from: GPUBuffer, to: GPUBuffer | undefined, rowBytes: number): void;
  /**
   * With a knockout of this layer: overwrites `width` raw dt values of the knocked-out token,
   * at float offset `row · rowStride + offset` of `dt`, with KNOCKOUT_DT (no-op otherwise).
   */
  knockDt(dt: GPUBuffer, rowStride: number, offset: number, width: number): void;
  /** With a knockout of this layer: the knocked-out row of this chunk (attention masks its key for every later query), else null. */
  knockRow: number | null;
}

/**
 * What a mixer gets for one layer of the fused one-token decode (T = 1, no knockout, no allLogits;
 * taps only of the kinds in the mixer's `decodeTaps`): the residual stream itself, un-normed — the
 * mixer folds the block norm into its first kernel and adds its output into `residual` (the
 * residual add) with its last one.
 */
export interface DecodeLayerContext {
  layer: number;
  /** The residual stream [D]: read (normed by the mixer's first kernel), then += the mixer's output. */
  residual: GPUBuffer;
  /** This block's norm weight [D] and eps. */
  normWeight: GPUBuffer;
  eps: number;
  state: MixerState;
  /** The traced step's taps (their kinds within the mixer's `decodeTaps`), or undefined. */
  taps: ModelTaps | undefined;
  run(dispatch: Dispatch): void;
  /**
   * The grid barriers' control words when this device may run a layer as one grid dispatch
   * (app/kernels/layer-grid.ts; GpuContext.gridWorkgroups), else undefined. A mixer that has a grid
   * form uses it for untraced steps.
   */
  grid?: GridControl;
  /**
   * Copies `rowBytes` from `from` at byte `fromOffset` into a tap buffer at the step's row (no-op
   * without one). `late`: `from` is the layer's own and nothing later overwrites it, so the copy
   * waits for the end of the step, with the others (each copy between kernels ends a compute pass).
   */
  copy(from: GPUBuffer, fromOffset: number, to: GPUBuffer | undefined, rowBytes: number, late?: boolean): void;
}

/** The per-layer taps a mixer's fused decode may be asked to write (the model writes `hidden`). */
export const DECODE_TAPS = ['delta', 'dbc', 'x', 'xz', 'y'] as const;
export type DecodeTap = (typeof DECODE_TAPS)[number];

/** Whether `taps` asks layer `l`'s fused decode for any per-layer tap (its own buffers are then needed). */
export function asksDecodeTaps(taps: ModelTaps | undefined, l: number): boolean {
  return taps !== undefined && DECODE_TAPS.some((k) => taps[k]?.[l] !== undefined);
}

/** Layer `l`'s step summary slot, when `taps` asks for step summaries and the layer is traced. */
export function stepSummarySlot(taps: ModelTaps | undefined, l: number): { buffer: GPUBuffer; offset: number } | undefined {
  const s = taps?.stepSummary;
  const i = s?.index[l];
  return s && i !== undefined ? s.summary.slot(i) : undefined;
}

export interface Mixer {
  /** Bytes of one sequence's state of this mixer (what newState allocates). */
  readonly stateBytes: number;
  /** A fresh (zeroed) state for one sequence. */
  newState(): MixerState;
  /** Adds the mixer's steps for `m.tokens` tokens: normed input → output, through its state. */
  encode(m: MixerContext): void;
  /** Whether `encodeDecode` may be used (may prepare packed weights on first call). */
  canFuseDecode(): boolean;
  /** The scratch words this layer's grid decode needs in the shared GridControl (absent: no grid form). */
  gridScratchWords?(): number;
  /** Adds the fused one-token decode of this layer (only called when canFuseDecode()). */
  encodeDecode?(m: DecodeLayerContext): void;
  /** The taps `encodeDecode` writes when asked (a traced step with others takes the general path). */
  readonly decodeTaps?: readonly DecodeTap[];
  /** Whether `encodeDecode` writes its layer's step summary slot when `taps.stepSummary` gives it one. */
  readonly decodeSummary?: boolean;
  /** Where Δ, B and C are in this mixer's taps; null when it has none. */
  readonly trace: TraceLayout | null;
  /** Tokens its state can hold (an attention mixer's KV cache); absent: any number (an SSM's state is constant). */
  readonly capacity?: number;
  destroy(): void;
}

/** A layer's own weights, by their name under `<prefix>layers.<layer>.mixer.` */
export interface LayerWeights {
  weight(name: string): GPUBuffer;
  /** null for an absent optional weight (biases). */
  optional(name: string): GPUBuffer | null;
  has(name: string): boolean;
  /** How it is stored on the GPU ('f16' for the big matrices with LoadOptions.weightFormat 'f16'). */
  format(name: string): WeightFormat;
}

/** What building a layer's mixer gets from the model. */
export interface MixerBuild {
  ctx: GpuContext;
  config: MambaConfig;
  /** Tokens per prefill chunk: activations are sized for this many. */
  maxTokens: number;
  layer: number;
  weights: LayerWeights;
  /**
   * Something every mixer of one kind shares (activations, prefill scratch, made with
   * `activation`, so the model frees them): made by the first mixer that asks for `key`. Layers
   * run one after another, so one set of activations serves them all.
   */
  shared<T>(key: string, make: () => T): T;
  /** An activation buffer of `elements` floats, counted in the model's activationBytes and freed with it. */
  activation(label: string, elements: number): GPUBuffer;
}

/** Builds layer `build.layer`'s mixer. */
export type MixerFactory = (build: MixerBuild) => Mixer;
