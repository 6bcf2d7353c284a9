/**
 * A model: embedding → blocks (RMSNorm, the block's mixer, the residual add) → final norm → LM
 * head, with activations sized for a chunk of `maxTokens` tokens (traced prefills and analyses take
 * chunks of `analysisTokens`, at most as many), trace taps, and the plan (a list
 * of bound dispatches and copies). What each block's mixer is comes from the architecture
 * (app/arch/build.ts `buildModel`); this file knows only the Mixer interface (mixer.ts).
 */
import { storageBuffer } from '../gpu/buffers.js';
import { gridDecodeWorkgroups, type GpuContext } from '../gpu/context.js';
import type { Dispatch } from '../kernels/dispatch.js';
import { embedding } from '../kernels/embedding.js';
import type { WeightFormat } from '../kernels/f16.js';
import { matmul } from '../kernels/matmul.js';
import { createGridControl, gridAborted, type GridControl } from '../kernels/layer-grid.js';
import { normMatvec, normMatvecFits } from '../kernels/norm-matvec.js';
import { residualRmsNorm, type ResidualNormInput } from '../kernels/residual-rmsnorm.js';
import { configBlocks, configMultipliers, finalNormName, modelPrefix, type BlockKind, type BlockSpec, type MambaConfig } from './config.js';
import { INT8_MIN_TOKENS, INT8_PROJECTIONS, isInt8Projection, type PrefillMatmul } from './int8-plan.js';
import { Int8Prefill } from './int8-prefill.js';
import type { WeightPart } from './memory.js';
import type { ModelInspection } from './inspection.js';
import type { LoadedWeights } from './loader.js';
import { DECODE_TAPS, fp32Linear, stateBuffers, type LayerWeights, type Mixer, type MixerFactory, type ModelTaps, type SequenceState, type TraceLayout } from './mixer.js';

/** A step of the forward pass: a dispatch (grouped into compute passes) or a buffer copy. */
export type Step =
  | { kind: 'dispatch'; dispatch: Dispatch }
  | { kind: 'copy'; from: GPUBuffer; fromOffset: number; to: GPUBuffer | (() => GPUBuffer); toOffset: number | (() => number); bytes: number };

/** Where encodeSteps writes GPU timestamps: `begin` once all work before the steps is done, `end` once the steps are. */
export interface StepTimestamps {
  querySet: GPUQuerySet;
  begin: number;
  end: number;
}

/**
 * Encodes steps: consecutive dispatches share one compute pass; copies go between passes. With
 * `timestamps` (nothing where the steps have no dispatch), an empty compute pass before the steps
 * writes `begin` as it ends and one after them `end`: their difference is the steps' GPU time. Pass
 * ends, not beginnings: Dawn's Vulkan backend writes a pass's begin timestamp at the top of the
 * pipe, which can latch while earlier queued work (the step before, in a pipelined decode) still
 * runs; an end timestamp waits for all earlier work.
 */
export function encodeSteps(encoder: GPUCommandEncoder, label: string, steps: readonly Step[], timestamps?: StepTimestamps): void {
  const stamps = timestamps && steps.some((s) => s.kind === 'dispatch') ? timestamps : null;
  if (stamps) stampPass(encoder, `${label}.timestampBegin`, stamps.querySet, stamps.begin);
  let pass: GPUComputePassEncoder | null = null;
  for (const step of steps) {
    if (step.kind === 'dispatch') {
      pass ??= encoder.beginComputePass({ label: `${label}.pass` });
      step.dispatch.encode(pass);
    } else {
      pass?.end();
      pass = null;
      const to = typeof step.to === 'function' ? step.to() : step.to;
      const toOffset = typeof step.toOffset === 'function' ? step.toOffset() : step.toOffset;
      encoder.copyBufferToBuffer(step.from, step.fromOffset, to, toOffset, step.bytes);
    }
  }
  pass?.end();
  if (stamps) stampPass(encoder, `${label}.timestampEnd`, stamps.querySet, stamps.end);
}

/** An empty compute pass whose end writes query `index`: once all work encoded before it is done. */
export function stampPass(encoder: GPUCommandEncoder, label: string, querySet: GPUQuerySet, index: number): void {
  encoder.beginComputePass({ label, timestampWrites: { querySet, endOfPassWriteIndex: index } }).end();
}

/** Dispatch steps in the first command buffer of a plan submitted in pieces (submitSteps), then in each of the others. */
export const FIRST_PIECE_STEPS = 8;
export const PIECE_STEPS = 48;

/**
 * Encodes `steps` and submits them in pieces (FIRST_PIECE_STEPS dispatch steps, then PIECE_STEPS
 * a piece), each its own command buffer, so that the GPU starts on the first piece while the CPU
 * encodes the rest: a prefill chunk in one command buffer kept the GPU idle for all of its
 * encoding (H200: ~5 ms of a 2.7B model's 2,048 tokens, ~3.6 ms of mamba2-130m's ~16 ms). `before`
 * goes at the head of the first piece and `after` at the tail of the last; the queue runs the
 * pieces in order, so the work is the one command buffer's. Returns the pieces submitted.
 */
export function submitSteps(
  device: GPUDevice,
  label: string,
  steps: readonly Step[],
  hooks: { before?: (encoder: GPUCommandEncoder) => void; after?: (encoder: GPUCommandEncoder) => void } = {},
): number {
  let start = 0;
  let pieces = 0;
  do {
    const size = pieces === 0 ? FIRST_PIECE_STEPS : PIECE_STEPS;
    let end = start;
    for (let dispatches = 0; end < steps.length && dispatches < size; end++) {
      if ((steps[end] as Step).kind === 'dispatch') dispatches++;
    }
    // The copies after a piece's last dispatch (its taps) go with it.
    while (end < steps.length && (steps[end] as Step).kind !== 'dispatch') end++;
    const encoder = device.createCommandEncoder({ label });
    if (start === 0) hooks.before?.(encoder);
    encodeSteps(encoder, label, steps.slice(start, end));
    if (end >= steps.length) hooks.after?.(encoder);
    device.queue.submit([encoder.finish()]);
    pieces++;
    start = end;
  } while (start < steps.length);
  return pieces;
}

/**
 * The copy of `rows` rows of `rowBytes` from `from` (at byte `fromOffset`) into a tap buffer, at
 * the taps' row: taps.rowOf() read when encoded (a plan built once, each step its row), else row0.
 */
function tapCopy(taps: ModelTaps, from: GPUBuffer, fromOffset: number, to: GPUBuffer, rowBytes: number, rows: number): Step {
  const rowOf = taps.rowOf;
  const toOffset = rowOf ? () => rowOf() * rowBytes : taps.row0 * rowBytes;
  return { kind: 'copy', from, fromOffset, to, toOffset, bytes: rows * rowBytes };
}

/** One forward over T tokens, bound to its buffers: encode it as often as needed. */
export interface ForwardPlan {
  tokens: number;
  steps: Step[];
  destroy(): void;
}

/**
 * "Filter this token": Δ of one token := 0 in chosen layers (the state-space analogue of
 * attention knockout). The mixer overwrites that token's raw dt with a huge negative number
 * before the scan, so softplus gives exactly 0: the state passes through the token untouched
 * (exp(0·A) = 1, nothing written) and its output is C·h + D·x. For Mamba-2, Δ = clamp(0,
 * time_step_limit) — 0 with the usual (0, ∞) limit. Attention layers (MixerContext.knockRow)
 * mask the token's key instead: every later query skips it.
 */
export interface Knockout {
  /** The token's row in this chunk (0 ≤ row < tokens). */
  row: number;
  /** Layers where Δ is zeroed; null: every layer. */
  layers: readonly number[] | null;
}

export interface PlanOptions {
  allLogits?: { buffer: GPUBuffer; row0: number };
  taps?: ModelTaps;
  knockout?: Knockout;
  /** One token through the general path even where the fused decode (planDecode) would run. */
  unfused?: boolean;
  /**
   * Stop after this layer's block: the layers above it, the final norm and the LM head are left
   * out (no logits are written; the later layers' state is not advanced). For recomputing one
   * layer's taps (app/analysis/checkpoints.ts) at the cost of the layers up to it.
   */
  lastLayer?: number;
  /**
   * Overwrite one row of layer `layer`'s mixer output (before the residual add) with `source`
   * ([D] floats from byte `sourceOffset`, default 0): activation patching of the mixer output or,
   * with the right difference, of the residual stream (app/analysis/patching.ts).
   */
  overwriteMixerOutput?: { layer: number; row: number; source: GPUBuffer; sourceOffset?: number };
}

/** How many prefill plans (token counts) a model keeps built. */
const PLAN_CACHE_SIZE = 4;

/** Named in the message of an ActivationLimitError. */
export const ACTIVATION_LIMIT_ERROR = 'activation over the buffer limit';

/** An activation larger than one buffer may be, refused before it is made (LanguageModel.activation); allocateModel builds for a smaller chunk on it. */
export class ActivationLimitError extends RangeError {
  override readonly name = 'ActivationLimitError';
}

/** What the mixer's raw dt is replaced with for a knocked-out token (softplus of it is 0). */
export const KNOCKOUT_DT = -1e30;

export interface ModelOptions {
  /** Tokens per prefill chunk (activations are sized for this many): the most a plain prefill's chunk holds. */
  maxTokens?: number;
  /**
   * Tokens per chunk of traced prefills and of every analysis (default maxTokens; at most
   * maxTokens): their own buffers grow with it (knockout's all-position logits, the live trace's
   * ring rows, trail pieces), and their exactness rests on every recompute chunking alike, so they
   * keep one chunk while plain prefills take the larger maxTokens (Session's prefillChunk).
   */
  analysisTokens?: number;
  /** Label prefix of the model's GPU objects. */
  name?: string;
  /** The mixer factory of each layer (the architecture's for every layer; hybrids mix). */
  mixer: (layer: number) => MixerFactory;
  /** How plain prefill chunks run the mixers' projections (default 'fp32'; app/model/int8-prefill.ts). */
  prefillMatmul?: PrefillMatmul;
  /** With prefillMatmul 'int8': the fewest tokens of a chunk that takes it (default INT8_MIN_TOKENS; tests use fewer). */
  int8MinTokens?: number;
  /** With prefillMatmul 'int8': force the product's kernel (bench: the tensor cores against the portable kernel). */
  int8Variant?: 'tensor-cores' | 'portable';
}

export class LanguageModel {
  readonly config: MambaConfig;
  readonly maxTokens: number;
  /** Tokens per chunk of traced prefills and analyses (ModelOptions.analysisTokens). */
  readonly analysisTokens: number;
  protected readonly name: string;
  protected readonly prefix: string;
  private readonly embeddingName: string;
  /** The final norm's weight name (finalNormName). */
  private readonly finalNorm: string;
  /** Granite's multipliers (1, 1, 1 for every other model): MambaConfig.multipliers. */
  private readonly multipliers: { embedding: number; residual: number; logits: number };
  /** The LM head (an untied lm_head, else the embedding) as row ranges: one, or several when it is split (memory.ts weightParts). */
  private readonly lmHead: readonly WeightPart[];
  private readonly lmHeadFormat: WeightFormat;
  /** The embedding table as row ranges, likewise. */
  private readonly embeddingRows: readonly WeightPart[];
  private readonly shared: { ids: GPUBuffer; hidden: GPUBuffer; residual: GPUBuffer; normed: GPUBuffer };
  /** Per layer, the block's mixer. */
  readonly mixers: readonly Mixer[];
  /** Per layer, its block: kind, norm and mixer names (configBlocks). */
  readonly blocks: readonly BlockSpec[];
  private readonly activations: GPUBuffer[] = [];
  /** What mixers of one kind share (MixerBuild.shared), by key; made of activations. */
  private readonly sharedByKind = new Map<string, unknown>();
  private knockoutFill: GPUBuffer | null = null;
  /** The grid decode's barrier counters (app/kernels/layer-grid.ts) by grid size, made with the first plan that uses each (a cached plan keeps its own until the model goes). */
  private readonly gridControls = new Map<number, GridControl>();
  /** The int8 products of plain prefill chunks (ModelOptions.prefillMatmul 'int8'), else null. */
  private readonly int8: Int8Prefill | null;
  private readonly int8MinTokens: number;
  /** The int8 prefill's projections (isInt8Projection) with their [rows, cols]. */
  private readonly int8Projections: { name: string; rows: number; cols: number }[];

  constructor(
    protected readonly ctx: GpuContext,
    inspection: ModelInspection,
    protected readonly weights: LoadedWeights,
    options: ModelOptions,
  ) {
    this.config = inspection.config;
    this.blocks = configBlocks(inspection.config);
    this.maxTokens = options.maxTokens ?? 256;
    this.name = options.name ?? 'Model';
    this.embeddingName = inspection.embeddingName;
    this.prefix = modelPrefix(inspection.embeddingName);
    this.finalNorm = finalNormName(inspection.config, this.prefix);
    this.multipliers = configMultipliers(inspection.config);
    const headName = weights.buffers.has('lm_head.weight') || weights.parts?.has('lm_head.weight') ? 'lm_head.weight' : inspection.embeddingName;
    this.lmHead = this.rowsOf(headName, inspection.config.vocabSize);
    this.lmHeadFormat = this.format(headName);
    this.embeddingRows = this.rowsOf(inspection.embeddingName, inspection.config.vocabSize);
    const D = this.config.dModel;
    const maxTokens = this.maxTokens;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`${this.name}: maxTokens must be a positive integer, got ${maxTokens}`);
    this.analysisTokens = options.analysisTokens ?? maxTokens;
    if (!Number.isInteger(this.analysisTokens) || this.analysisTokens < 1 || this.analysisTokens > maxTokens) {
      throw new RangeError(`${this.name}: analysisTokens must be an integer in 1..${maxTokens} (maxTokens), got ${this.analysisTokens}`);
    }
    this.int8MinTokens = options.int8MinTokens ?? INT8_MIN_TOKENS;
    if (!Number.isInteger(this.int8MinTokens) || this.int8MinTokens < 1) throw new RangeError(`${this.name}: int8MinTokens must be a positive integer, got ${this.int8MinTokens}`);
    this.int8 = options.prefillMatmul === 'int8' ? new Int8Prefill(ctx, this.name, maxTokens, Math.max(D, this.config.dInner), options.int8Variant) : null;
    this.int8Projections = [...inspection.tensors.values()].filter((t) => isInt8Projection(t.name, t.shape)).map((t) => ({ name: t.name, rows: t.shape[0] as number, cols: t.shape[1] as number }));
    // The first allocation: a chunk too large for one buffer throws here, before anything is made.
    const hidden = this.activation('hidden', maxTokens * D);
    this.shared = {
      hidden,
      residual: this.activation('residual', maxTokens * D),
      normed: this.activation('normed', maxTokens * D),
      ids: storageBuffer(ctx.device, `${this.name}.ids`, maxTokens * 4),
    };
    const mixers: Mixer[] = [];
    try {
      for (let l = 0; l < this.config.nLayer; l++) {
        mixers.push(
          options.mixer(l)({
            ctx,
            config: this.config,
            maxTokens,
            layer: l,
            weights: this.layerWeights(l),
            shared: <T>(key: string, make: () => T): T => {
              if (!this.sharedByKind.has(key)) this.sharedByKind.set(key, make());
              return this.sharedByKind.get(key) as T;
            },
            activation: (label, elements) => this.activation(label, elements),
          }),
        );
      }
    } catch (error) {
      this.mixers = mixers; // destroy() frees the mixers made so far with everything else
      this.destroy();
      throw error;
    }
    this.mixers = mixers;
  }

  /** KNOCKOUT_DT × `width`, made on first use (a copy source for knockouts). */
  private knockoutSource(width: number): GPUBuffer {
    if (!this.knockoutFill || this.knockoutFill.size < width * 4) {
      this.knockoutFill?.destroy();
      this.knockoutFill = storageBuffer(this.ctx.device, `${this.name}.knockoutFill`, width * 4);
      this.ctx.device.queue.writeBuffer(this.knockoutFill, 0, new Float32Array(width).fill(KNOCKOUT_DT));
    }
    return this.knockoutFill;
  }

  /**
   * An activation buffer of `elements` floats, freed with the model. Larger than the device binds
   * in one buffer: an ActivationLimitError before it is made (allocateModel then
   * builds for fewer tokens a chunk).
   */
  private activation(label: string, elements: number): GPUBuffer {
    const { maxStorageBufferBindingSize, maxBufferSize } = this.ctx.device.limits;
    const limit = Math.min(maxStorageBufferBindingSize, maxBufferSize);
    if (elements * 4 > limit) {
      throw new ActivationLimitError(`${this.name}: ${ACTIVATION_LIMIT_ERROR}: ${label} for chunks of ${this.maxTokens} tokens needs ${elements * 4} bytes, more than this GPU binds in one buffer (${limit})`);
    }
    const buffer = storageBuffer(this.ctx.device, `${this.name}.${label}`, elements * 4);
    this.activations.push(buffer);
    return buffer;
  }

  private w(name: string): GPUBuffer {
    const buffer = this.weights.buffers.get(name);
    if (!buffer) throw new Error(`${this.name}: weight ${name} is not loaded`);
    return buffer;
  }

  /** Matrix `name` ([rows, ·]) as its row ranges: its parts when split, else the one buffer. */
  private rowsOf(name: string, rows: number): readonly WeightPart[] {
    return this.weights.parts?.get(name) ?? [{ buffer: this.w(name), firstRow: 0, rows }];
  }

  /** The embedding gather of T tokens (ids in a.ids) into `output`: one dispatch per part of the table. */
  private embed(T: number, output: GPUBuffer): Dispatch[] {
    const { dModel: D, vocabSize: V } = this.config;
    const format = this.format(this.embeddingName);
    return this.embeddingRows.map((part, p) =>
      embedding(this.ctx, { tokens: T, vocab: V, dim: D, tableFormat: format, firstRow: part.firstRow, rows: part.rows }, { ids: this.shared.ids, table: part.buffer, output }, `${this.name}.embedding${this.embeddingRows.length > 1 ? `#${p}` : ''}`),
    );
  }

  /** The LM head over T rows of x into y (view offsets and strides as matmul's), one matmul per part. */
  private lmHeadMatmul(shape: { tokens: number; xOffset?: number; xStride?: number; yOffset?: number }, x: GPUBuffer, y: GPUBuffer): Dispatch[] {
    const { dModel: D, vocabSize: V } = this.config;
    return this.lmHead.map((part, p) =>
      matmul(
        this.ctx,
        { ...shape, inFeatures: D, outFeatures: part.rows, yOffset: (shape.yOffset ?? 0) + part.firstRow, yStride: V, weightFormat: this.lmHeadFormat },
        { x, weight: part.buffer, y },
        `${this.name}.lm_head${this.lmHead.length > 1 ? `#${p}` : ''}`,
      ),
    );
  }

  /** How weight `name` is stored on the GPU. */
  private format(name: string): WeightFormat {
    return this.weights.formats?.get(name) ?? 'f32';
  }

  /** Layer `layer`'s mixer weights, by their names under its mixer prefix (`<prefix>layers.<layer>.mixer.` unless a hybrid names it otherwise). */
  private layerWeights(layer: number): LayerWeights {
    const m = this.mixerPrefix(layer);
    return {
      weight: (n) => this.w(`${m}${n}`),
      optional: (n) => this.weights.buffers.get(`${m}${n}`) ?? null,
      has: (n) => this.weights.buffers.has(`${m}${n}`),
      format: (n) => this.format(`${m}${n}`),
    };
  }

  /** The weight-name prefix of block `layer`'s mixer, e.g. `backbone.layers.3.mixer.` (a hybrid's MLP: `backbone.layers.3.mlp.`). */
  mixerPrefix(layer: number): string {
    return `${this.prefix}${(this.blocks[layer] as BlockSpec).mixer}`;
  }

  /** The weight name of block `layer`'s norm, e.g. `backbone.layers.3.norm.weight`. */
  normName(layer: number): string {
    return `${this.prefix}${(this.blocks[layer] as BlockSpec).norm}`;
  }

  /** What block `layer`'s mixer is ('ssm' unless the model is a hybrid). */
  blockKind(layer: number): BlockKind {
    return (this.blocks[layer] as BlockSpec).kind;
  }

  /** Where Δ, B and C are in layer `layer`'s taps; null when its mixer has nothing to trace. */
  traceLayout(layer: number): TraceLayout | null {
    return this.mixers[layer]?.trace ?? null;
  }

  /** The layers whose mixers can be traced, ascending. */
  get traceableLayers(): number[] {
    return this.mixers.flatMap((m, l) => (m.trace ? [l] : []));
  }

  get idsBuffer(): GPUBuffer {
    return this.shared.ids;
  }

  /**
   * The final-norm output ([T, D], HF hidden_states[L]) of the last forward that ran the unfused
   * path (the fused one-token decode folds norm_f into the LM head and does not write it, unless
   * the head is too wide for that kernel).
   */
  get normedBuffer(): GPUBuffer {
    return this.shared.normed;
  }

  /** A fresh (zeroed) state for one sequence: each layer's mixer's own. */
  newState(): SequenceState {
    return { layers: this.mixers.map((m) => m.newState()) };
  }

  /** The most tokens one sequence can hold: the smallest KV cache of its attention blocks (Infinity without any). */
  get contextCapacity(): number {
    return this.mixers.reduce((cap, m) => Math.min(cap, m.capacity ?? Infinity), Infinity);
  }

  /** Bytes of one sequence's state (what newState allocates). */
  get stateBytes(): number {
    return this.mixers.reduce((s, m) => s + m.stateBytes, 0);
  }

  /** GPU memory of the activations (weights and state aside). */
  get activationBytes(): number {
    // The prefill plan cache's work state and logits count too (made on the first prefill).
    return this.shared.ids.size + this.activations.reduce((s, b) => s + b.size, 0) + this.stateBytes + this.config.vocabSize * 4;
  }

  /** How plain prefill chunks of at least `int8MinTokens` tokens run the mixers' projections. */
  get prefillMatmul(): PrefillMatmul {
    return this.int8 ? 'int8' : 'fp32';
  }

  /**
   * With the int8 prefill: quantizes every projection it will use and makes its scratch now (else
   * that happens at the first prefill), so that loading allocates it, under the loader's
   * out-of-memory scope (GpuMemoryNeed.int8 bytes). A no-op with fp32.
   */
  prepareInt8Prefill(): void {
    this.int8?.prepare(
      this.int8Projections
        .filter((p) => this.weights.buffers.has(p.name) && this.int8?.fits(p.cols))
        .map((p) => ({ weight: this.w(p.name), format: this.format(p.name), rows: p.rows, cols: p.cols, label: `${this.name}.${p.name}` })),
    );
  }

  /** GPU memory the int8 prefill holds now: the weights' codes quantized so far and the activations' scratch (0 with fp32). */
  get int8Bytes(): number {
    return this.int8?.bytes ?? 0;
  }

  private work: { state: SequenceState; logits: GPUBuffer } | null = null;
  /** Prefill plans by token count, bound to `work`, most recently used last. */
  private readonly planCache = new Map<number, ForwardPlan>();

  /**
   * A forward over `tokens` tokens with no taps, knockout or all-position logits, built once per
   * token count and kept (the last PLAN_CACHE_SIZE counts): building a plan (bind groups, uniforms)
   * costs 10–20 ms of CPU on a real GPU's host, as much as the kernels of 2,048 tokens. It runs on
   * the model's own work state and logits: the caller copies a sequence's state in before and
   * out after, in the same command buffer (see Session.prefill). Every full chunk of a long prompt
   * has the same count, so they all share one plan.
   */
  cachedPlan(tokens: number): { plan: ForwardPlan; state: SequenceState; logits: GPUBuffer } {
    this.work ??= { state: this.newState(), logits: storageBuffer(this.ctx.device, `${this.name}.work.logits`, this.config.vocabSize * 4) };
    let plan = this.planCache.get(tokens);
    if (plan) {
      this.planCache.delete(tokens); // re-inserted below: most recently used last
    } else {
      plan = this.plan(tokens, this.work.state, this.work.logits);
      if (this.planCache.size >= PLAN_CACHE_SIZE) {
        const [oldest, evicted] = this.planCache.entries().next().value as [number, ForwardPlan];
        this.planCache.delete(oldest);
        evicted.destroy();
      }
    }
    this.planCache.set(tokens, plan);
    return { plan, ...this.work };
  }

  /** Whether every layer's mixer has a fused one-token decode for these weights. */
  private canFuseDecode(taps?: ModelTaps): boolean {
    // The fused kernels add each mixer's output into the residual unscaled and fold norm_f into the head: no multipliers there.
    const { embedding, residual, logits } = this.multipliers;
    if (embedding !== 1 || residual !== 1 || logits !== 1) return false;
    return this.mixers.every((m, l) => {
      if (m.encodeDecode === undefined || !m.canFuseDecode()) return false;
      if (!taps) return true;
      if (taps.stepSummary?.index[l] !== undefined && m.decodeSummary !== true) return false;
      const asked = DECODE_TAPS.filter((k) => taps[k]?.[l] !== undefined);
      return asked.every((k) => m.decodeTaps?.includes(k));
    });
  }

  /**
   * Whether a one-token step can compute its selection summaries of `layers` in the fused decode
   * (ModelTaps.stepSummary): the fused decode runs, and those layers' mixers write their slots.
   */
  canSummarizeSteps(layers: readonly number[]): boolean {
    return this.canFuseDecode() && layers.every((l) => this.mixers[l]?.decodeSummary === true);
  }

  /**
   * The one-token decode with fewer dispatches: embedding → the residual stream; per layer the
   * mixer's fused kernels (block norm folded into in_proj, residual add into out_proj); norm_f
   * folded into the LM head (its scale applied to the row sums, so no workgroup waits on the norm
   * before its rows: shaders/norm_matvec.wgsl). Used by plan(1) when no option (taps, knockout, allLogits) is given.
   */
  private planDecode(state: SequenceState, logits: GPUBuffer, taps?: ModelTaps): ForwardPlan {
    const { dModel: D, nLayer: L, normEps: eps } = this.config;
    const a = this.shared;
    const dispatches: Dispatch[] = [];
    const steps: Step[] = [];
    const run = (d: Dispatch) => {
      dispatches.push(d);
      steps.push({ kind: 'dispatch', dispatch: d });
    };
    // A traced step's taps: one row each, at the row taps.rowOf() gives when encoded (else row0);
    // the late ones after the LM head, in one break of the compute pass.
    const late: Step[] = [];
    const copy = (from: GPUBuffer, fromOffset: number, to: GPUBuffer | undefined, rowBytes: number, atEnd = false) => {
      if (to && taps) (atEnd ? late : steps).push(tapCopy(taps, from, fromOffset, to, rowBytes, 1));
    };
    this.embed(1, a.residual).forEach(run);
    const grid = this.grid();
    for (let l = 0; l < L; l++) {
      const mixer = this.mixers[l] as Mixer;
      mixer.encodeDecode?.({
        layer: l,
        residual: a.residual,
        normWeight: this.w(this.normName(l)),
        eps,
        state: state.layers[l] as GPUBuffer[],
        taps,
        run,
        copy,
        ...(grid ? { grid } : {}),
      });
      // The residual stream after the block (HF hidden_states[l + 1]).
      copy(a.residual, 0, taps?.hidden?.[l], D * 4);
    }
    if (!normMatvecFits(this.ctx, D, this.lmHeadFormat)) {
      // norm_f, then the matrix-vector LM head, separately. (a.hidden, unused by the fused decode,
      // takes the copy of the residual that the norm kernel writes.)
      run(
        residualRmsNorm(
          this.ctx,
          { rows: 1, cols: D, eps, hasResidual: false },
          { hidden: a.residual, residual: a.hidden, weight: this.w(this.finalNorm), output: a.normed },
          `${this.name}.norm_f`,
        ),
      );
      this.lmHeadMatmul({ tokens: 1 }, a.normed, logits).forEach(run);
    } else {
      for (const [p, part] of this.lmHead.entries()) {
        run(
          normMatvec(
            this.ctx,
            { inFeatures: D, outFeatures: part.rows, yOffset: part.firstRow, norm: 'rms', eps, weightFormat: this.lmHeadFormat },
            { x: a.residual, g: this.w(this.finalNorm), weight: part.buffer, y: logits },
            `${this.name}.lm_head${this.lmHead.length > 1 ? `#${p}` : ''}`,
          ),
        );
      }
    }
    const summary = taps?.stepSummary;
    if (summary) {
      // Every traced layer's scan has written its slot: the step's summary row, copied where the trace keeps it.
      steps.push({ kind: 'dispatch', dispatch: summary.summary.reduce });
      const staging = summary.summary.staging;
      late.push({ kind: 'copy', from: staging, fromOffset: 0, to: () => summary.target().buffer, toOffset: () => summary.target().offset, bytes: staging.size });
    }
    steps.push(...late);
    return { tokens: 1, steps, destroy: () => dispatches.forEach((d) => d.destroy()) };
  }

  /**
   * Binds one forward over `tokens` tokens (ids already written to idsBuffer) to `state`.
   * `logits` gets the last position's row ([V]); with `allLogits`, every position's row goes to
   * `allLogits.buffer` ([*, V]) from row `allLogits.row0` instead.
   */
  plan(tokens: number, state: SequenceState, logits: GPUBuffer, options: PlanOptions = {}): ForwardPlan {
    const { dModel: D, vocabSize: V, nLayer: L, normEps: eps } = this.config;
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) {
      throw new RangeError(`${this.name}: a chunk holds 1..${this.maxTokens} tokens, got ${tokens}`);
    }
    const T = tokens;
    const lastLayer = options.lastLayer ?? L - 1;
    if (!Number.isInteger(lastLayer) || lastLayer < 0 || lastLayer >= L) throw new RangeError(`${this.name}: no layer ${lastLayer} to stop after (the model has ${L})`);
    if (T === 1 && !options.unfused && [options.knockout, options.allLogits, options.lastLayer, options.overwriteMixerOutput].every((o) => o === undefined) && this.canFuseDecode(options.taps)) {
      return this.planDecode(state, logits, options.taps);
    }
    if (options.taps?.stepSummary) throw new Error(`${this.name}: step summaries are written by the fused one-token decode, which this plan (${T} tokens${options.unfused ? ', unfused' : ''}) does not take`);
    const a = this.shared;
    const ctx = this.ctx;
    const dispatches: Dispatch[] = [];
    const steps: Step[] = [];
    const run = (d: Dispatch) => {
      dispatches.push(d);
      steps.push({ kind: 'dispatch', dispatch: d });
    };
    const taps = options.taps;
    const copy = (from: GPUBuffer, to: GPUBuffer | undefined, rowBytes: number) => {
      if (to && taps) steps.push(tapCopy(taps, from, 0, to, rowBytes, T));
    };

    // The int8 projections take plain chunks only: anything traced or edited shows the fp32 model.
    const int8 = this.int8 && T >= this.int8MinTokens && !taps && [options.knockout, options.allLogits, options.lastLayer, options.overwriteMixerOutput].every((o) => o === undefined) ? this.int8 : null;
    const knockout = options.knockout;
    if (knockout && !(Number.isInteger(knockout.row) && knockout.row >= 0 && knockout.row < T)) {
      throw new RangeError(`${this.name}: the knocked-out row ${knockout.row} is outside this chunk of ${T} tokens`);
    }
    this.embed(T, a.hidden).forEach(run);
    for (let l = 0; l <= lastLayer; l++) {
      const norm: ResidualNormInput = {
        shape: { rows: T, cols: D, eps, hasResidual: l > 0, hiddenScale: l > 0 ? this.multipliers.residual : this.multipliers.embedding },
        buffers: { hidden: a.hidden, residual: a.residual, weight: this.w(this.normName(l)) },
      };
      // With the int8 prefill the norm waits for the mixer: in_proj's quantize takes it in
      // (Int8Prefill.linear residualNorm) and a.normed is never written; any other first use of
      // the mixer's input runs it first (flushNorm).
      const runNorm = () => run(residualRmsNorm(ctx, norm.shape, { ...norm.buffers, output: a.normed }, `${this.name}.L${l}.block_norm`));
      let pendingNorm: ResidualNormInput | null = int8 && int8.foldsNorm(D) ? norm : null;
      if (!pendingNorm) runNorm();
      const flushNorm = () => {
        if (!pendingNorm) return;
        pendingNorm = null;
        runNorm();
      };
      if (l > 0) copy(a.residual, taps?.hidden?.[l - 1], D * 4);
      // This layer's row of the knockout, if it is knocked: Δ := 0 in an SSM block, the key masked in an attention block.
      const knockRow = knockout && (!knockout.layers || knockout.layers.includes(l)) ? knockout.row : null;
      (this.mixers[l] as Mixer).encode({
        layer: l,
        tokens: T,
        input: a.normed,
        output: a.hidden,
        state: state.layers[l] as GPUBuffer[],
        taps,
        run: (d) => {
          flushNorm();
          run(d);
        },
        linear: (name, shape, buffers, label) => {
          if (int8 && (INT8_PROJECTIONS as readonly string[]).includes(name) && int8.fits(shape.inFeatures)) {
            const full = `${this.mixerPrefix(l)}${name}`;
            const n = buffers.gatedNorm;
            const gated = n && int8.foldsNorm(shape.inFeatures) ? n : undefined;
            const wholeInput = buffers.x === a.normed && shape.inFeatures === D && (shape.xStride ?? D) === D;
            const residualNorm = pendingNorm && wholeInput && !n ? pendingNorm : undefined;
            if (residualNorm) pendingNorm = null;
            flushNorm();
            if (n && !gated) run(n.norm());
            int8.linear({ ...shape, tokens: T, format: this.format(full) }, { x: buffers.x, weight: this.w(full), bias: buffers.bias ?? null, y: buffers.y, scratch: buffers.scratch ?? null, ...(gated ? { gated } : {}), ...(residualNorm ? { residualNorm } : {}) }, label).forEach(run);
          } else {
            flushNorm();
            if (buffers.gatedNorm) run(buffers.gatedNorm.norm());
            run(fp32Linear(ctx, this.layerWeights(l), T, name, shape, buffers, label));
          }
        },
        copy: (from, to, rowBytes) => {
          flushNorm();
          copy(from, to, rowBytes);
        },
        knockDt: (dt, rowStride, offset, width) => {
          if (knockRow === null) return;
          flushNorm();
          steps.push({ kind: 'copy', from: this.knockoutSource(width), fromOffset: 0, to: dt, toOffset: (knockRow * rowStride + offset) * 4, bytes: width * 4 });
        },
        knockRow,
      });
      flushNorm(); // a mixer that wrote nothing still leaves the residual updated
      const overwrite = options.overwriteMixerOutput;
      if (overwrite && overwrite.layer === l) {
        if (!(Number.isInteger(overwrite.row) && overwrite.row >= 0 && overwrite.row < T)) throw new RangeError(`${this.name}: the overwritten row ${overwrite.row} is outside this chunk of ${T} tokens`);
        steps.push({ kind: 'copy', from: overwrite.source, fromOffset: overwrite.sourceOffset ?? 0, to: a.hidden, toOffset: overwrite.row * D * 4, bytes: D * 4 });
      }
    }
    if (lastLayer < L - 1) return { tokens: T, steps, destroy: () => dispatches.forEach((d) => d.destroy()) };
    run(
      residualRmsNorm(
        ctx,
        { rows: T, cols: D, eps, hasResidual: true, hiddenScale: this.multipliers.residual, outScale: this.multipliers.logits },
        { hidden: a.hidden, residual: a.residual, weight: this.w(this.finalNorm), output: a.normed },
        `${this.name}.norm_f`,
      ),
    );
    copy(a.residual, taps?.hidden?.[L - 1], D * 4);
    const all = options.allLogits;
    (all ? this.lmHeadMatmul({ tokens: T, yOffset: all.row0 * V }, a.normed, all.buffer) : this.lmHeadMatmul({ tokens: 1, xOffset: (T - 1) * D, xStride: D }, a.normed, logits)).forEach(run);
    return { tokens: T, steps, destroy: () => dispatches.forEach((d) => d.destroy()) };
  }

  /**
   * The model's head on any residual stream (the logit lens, app/analysis/logit-lens.ts): norm_f
   * and the LM head over `rows` rows of `input` ([rows, D]) into `logits` ([rows, V]); `copy`
   * ([rows, D]) takes the norm kernel's copy of its input, `normed` ([rows, D]) the normed rows.
   * The caller encodes the dispatches (one compute pass) and destroys them.
   */
  headDispatches(rows: number, input: GPUBuffer, buffers: { copy: GPUBuffer; normed: GPUBuffer; logits: GPUBuffer }): Dispatch[] {
    const { dModel: D, normEps: eps } = this.config;
    const norm = residualRmsNorm(this.ctx, { rows, cols: D, eps, hasResidual: false, outScale: this.multipliers.logits }, { hidden: input, residual: buffers.copy, weight: this.w(this.finalNorm), output: buffers.normed }, `${this.name}.lens.norm_f`);
    return [norm, ...this.lmHeadMatmul({ tokens: rows }, buffers.normed, buffers.logits)];
  }

  /**
   * The embedding of `tokens` ids (written to idsBuffer first) into `output` ([tokens, D]): the
   * residual stream before block 0, for activation patching (app/analysis/patching.ts). The
   * caller encodes and destroys the dispatches.
   */
  embedDispatches(tokens: number, output: GPUBuffer): Dispatch[] {
    if (!Number.isInteger(tokens) || tokens < 1 || tokens > this.maxTokens) throw new RangeError(`${this.name}: a chunk holds 1..${this.maxTokens} tokens, got ${tokens}`);
    return this.embed(tokens, output);
  }

  /** The grid decode's control words on this device, or null where it has none (GpuContext.gridWorkgroups, tuning.gridDecode). */
  private grid(): GridControl | null {
    const workgroups = gridDecodeWorkgroups(this.ctx);
    if (workgroups === null) return null;
    let control = this.gridControls.get(workgroups);
    if (!control) {
      const scratch = Math.max(0, ...this.mixers.map((m) => m.gridScratchWords?.() ?? 0));
      control = createGridControl(this.ctx, workgroups, scratch, `${this.name}.gridControl${workgroups}`);
      this.gridControls.set(workgroups, control);
    }
    return control;
  }

  /**
   * Whether a grid decode step gave up at a barrier since the model was made (its GPU did not run
   * all the grid's workgroups at once, so those steps' outputs are wrong). Generation checks it and
   * reports an error; the app then turns the grid decode off (tuning.gridDecode = false).
   */
  async gridDecodeFailed(): Promise<boolean> {
    for (const c of this.gridControls.values()) if (await gridAborted(this.ctx, c)) return true;
    return false;
  }

  destroy(): void {
    for (const c of this.gridControls.values()) c.buffer.destroy();
    this.gridControls.clear();
    for (const plan of this.planCache.values()) plan.destroy();
    this.planCache.clear();
    if (this.work) for (const b of [...stateBuffers(this.work.state), this.work.logits]) b.destroy();
    this.work = null;
    this.knockoutFill?.destroy();
    this.int8?.destroy();
    this.shared.ids.destroy();
    for (const m of this.mixers ?? []) m.destroy();
    this.sharedByKind.clear();
    for (const b of this.activations) b.destroy();
  }
}
