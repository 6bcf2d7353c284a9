/**
 * CPU reference of a whole model, float64 throughout: embedding → per block RMSNorm, the block's
 * mixer reference (configBlocks: a hybrid's blocks name their norm and mixer), the residual add → final norm → LM head. The independent check of the GPU
 * engine (and, through the golden fixtures, checked itself against transformers). Each
 * architecture supplies its mixer's reference (app/arch/<name>/reference.ts). Plain loops, written
 * for clarity, not speed: use it on small models and short sequences.
 */
import { configBlocks, configMultipliers, finalNormName, type BlockSpec, type MambaConfig } from './config.js';
import { int8RotationBlock } from '../kernels/int8-layout.js';
import { hadamardRowsF32, quantizeRowsRef } from '../kernels/int8-gemm.ref.js';

/** Tensors by their name in the file, as float32 arrays (row-major). */
export type WeightTable = (name: string) => Float32Array | undefined;

export interface MixerRefInput {
  config: MambaConfig;
  weights: WeightTable;
  /** The mixer's weight-name prefix, e.g. `backbone.layers.3.mixer.` */
  mixer: string;
  layer: number;
  /** The block's normed input [T, D]. */
  input: Float64Array;
  tokens: number;
  /** The token whose Δ := 0 in this layer ("filter this token"), or −1. */
  knockToken: number;
  /**
   * How the SSM mixers' projections (INT8_PROJECTIONS: in_proj, x_proj, dt_proj, out_proj)
   * multiply (default `linear`): `int8Linear` is the reference of the int8 prefill
   * (app/model/int8-prefill.ts).
   */
  projection?: Linear;
}

export interface MixerRefOutput {
  /** The mixer's output [T, D] (added to the residual stream). */
  output: Float64Array;
  /** What the mixer exposes per layer (Δ, B, C, …), by name; see each architecture's reference. */
  taps: Record<string, Float64Array>;
}

/** float64 reference of one layer's mixer. */
export type MixerRef = (input: MixerRefInput) => MixerRefOutput;

export interface ForwardRefOutput {
  logits: Float64Array; // [T, V]
  /** Residual stream after each block, [T, D] each (HF's hidden_states[i] for i < L). */
  hidden: Float64Array[];
  /** Final-norm output [T, D] (HF's hidden_states[L]). */
  normed: Float64Array;
  /** Per layer, its mixer's taps. */
  layers: Record<string, Float64Array>[];
}

export const silu = (v: number) => v / (1 + Math.exp(-v));
/** softplus with torch's threshold: v for v > 20. Stable for very negative v (gives 0, never NaN). */
export const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));

export function need(weights: WeightTable, name: string): Float32Array {
  const w = weights(name);
  if (!w) throw new Error(`reference: missing tensor ${name}`);
  return w;
}

export type Linear = (x: Float64Array, T: number, I: number, W: Float32Array, O: number, b?: Float32Array) => Float64Array;

/** y[T, O] = x[T, I] · Wᵀ (+ b), W [O, I]. */
export function linear(x: Float64Array, T: number, I: number, W: Float32Array, O: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < O; o++) {
      let s = b ? (b[o] as number) : 0;
      for (let i = 0; i < I; i++) s += (x[t * I + i] as number) * (W[o * I + i] as number);
      y[t * O + o] = s;
    }
  }
  return y;
}

/**
 * The int8 prefill's product (app/kernels/int8-gemm.ts, app/model/int8-prefill.ts), as the GPU
 * computes it: x's rows and W's rows, in fp32, each rotated by the block-diagonal ±1 Hadamard
 * matrix of int8RotationBlock(I) (fp32 butterflies), quantized to int8 with one scale per row in
 * fp32 arithmetic (int8-gemm.ref.ts), then y[t, o] = s_x[t]·s_w[o]/block·Σ_i q_x[t, i]·q_w[o, i] (+ b[o])
 * in float64 (H/√block is orthonormal: the product is x·Wᵀ up to the rounding to int8).
 */
export function int8Linear(x: Float64Array, T: number, I: number, W: Float32Array, O: number, b?: Float32Array): Float64Array {
  const block = int8RotationBlock(I);
  const qx = quantizeRowsRef(hadamardRowsF32(x, T, I, block), T, I);
  const qw = quantizeRowsRef(hadamardRowsF32(W, O, I, block), O, I);
  const norm = block > 0 ? 1 / block : 1;
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < O; o++) {
      let acc = 0;
      for (let i = 0; i < I; i++) acc += (qx.codes[t * I + i] as number) * (qw.codes[o * I + i] as number);
      y[t * O + o] = acc * (qx.scales[t] as number) * (qw.scales[o] as number) * norm + (b ? (b[o] as number) : 0);
    }
  }
  return y;
}

/**
 * silu(bias + depthwise causal conv) over `channels` channels of `x` (row t at t·stride + offset),
 * from a zero history: out[t, c] = silu(b[c] + Σ_k w[c, k]·x[t − (K−1) + k, c]), weight [C, 1, K].
 */
export function causalConvSilu(x: Float64Array, T: number, stride: number, offset: number, channels: number, K: number, weight: Float32Array, bias?: Float32Array): Float64Array {
  const out = new Float64Array(T * channels);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < channels; c++) {
      let s = bias ? (bias[c] as number) : 0;
      for (let k = 0; k < K; k++) {
        const src = t - (K - 1) + k;
        if (src >= 0) s += (weight[c * K + k] as number) * (x[src * stride + offset + c] as number);
      }
      out[t * channels + c] = silu(s);
    }
  }
  return out;
}

export function rmsnorm(x: Float64Array, T: number, D: number, w: Float32Array, eps: number): Float64Array {
  const out = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += (x[t * D + i] as number) ** 2;
    const scale = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[t * D + i] = (x[t * D + i] as number) * scale * (w[i] as number);
  }
  return out;
}

/**
 * The whole forward over `ids` with `mixerOf(layer)` as each layer's mixer. `knockout`: Δ of token
 * `token` := 0 (after softplus) in `layers` (null: every layer) — the token then writes nothing and
 * the state passes it unchanged. `projection`: how the SSM mixers' projections (INT8_PROJECTIONS) multiply.
 */
export function forwardRef(
  config: MambaConfig,
  weights: WeightTable,
  ids: ArrayLike<number>,
  mixerOf: (layer: number) => MixerRef,
  prefix = 'backbone.',
  knockout?: { token: number; layers: readonly number[] | null },
  projection: Linear = linear,
): ForwardRefOutput {
  const { dModel: D, vocabSize: V, nLayer: L, normEps: eps } = config;
  const T = ids.length;
  const emb = weights(`${prefix}embeddings.weight`) ?? weights(`${prefix}embed_tokens.weight`) ?? need(weights, `${prefix}embedding.weight`);
  let residual = new Float64Array(T * D);
  const m = configMultipliers(config);
  for (let t = 0; t < T; t++) {
    const id = ids[t] as number;
    for (let i = 0; i < D; i++) residual[t * D + i] = (emb[id * D + i] as number) * m.embedding;
  }
  const out: ForwardRefOutput = { logits: new Float64Array(0), hidden: [], normed: new Float64Array(0), layers: [] };
  const blocks = configBlocks(config);
  for (let l = 0; l < L; l++) {
    const block = blocks[l] as BlockSpec;
    const input = rmsnorm(residual, T, D, need(weights, `${prefix}${block.norm}`), eps);
    const knockToken = knockout && (knockout.layers === null || knockout.layers.includes(l)) ? knockout.token : -1;
    const { output, taps } = mixerOf(l)({ config, weights, mixer: `${prefix}${block.mixer}`, layer: l, input, tokens: T, knockToken, projection });
    const next = new Float64Array(T * D);
    for (let i = 0; i < T * D; i++) next[i] = (residual[i] as number) + (output[i] as number) * m.residual;
    residual = next;
    out.hidden.push(residual);
    out.layers.push(taps);
  }
  out.normed = rmsnorm(residual, T, D, need(weights, finalNormName(config, prefix)), eps);
  out.logits = linear(out.normed, T, D, weights('lm_head.weight') ?? emb, V);
  if (m.logits !== 1) out.logits = out.logits.map((v) => v * m.logits);
  return out;
}
