/**
 * A hybrid model's attention block as a mixer (issue 22): causal multi-head / grouped-query
 * self-attention with a KV cache as its state. T tokens, D = d_model:
 *   qkv = [q; k; v](normed) (+ bias)         matmul (one fused or three)   [T, qDim + 2·kvDim]
 *   qkv = conv1d(qkv) + b   (dConv > 0)       causal-conv1d, no SiLU        (mamba_ssm MHA; window carried)
 *   RoPE at positions len + t; k, v → cache;  attention (app/kernels/attention.ts): flash prefill,
 *   causal softmax over cached + new keys      split-key decode (T ≤ 4)     [T, qDim]
 *   out = out_proj(attn) (+ bias)             matmul                        [T, D]
 * State per sequence, all zero = the empty sequence (so the session's reset, fork and copy of
 * state buffers just work): [keys (capacity × kvDim), values (same), meta (u32 [len, overflowed,
 * 0, 0]: len advanced on the GPU, so a one-token plan built once serves every step), mask (u32
 * [capacity]: 1 = a knocked-out key, skipped by every later query), the conv window
 * (qkvDim × (dConv − 1), when dConv > 0)]. Nothing is ever written past the capacity; the session
 * refuses a sequence that would pass it (`capacity`).
 */
import { storageBuffer } from '../../gpu/buffers.js';
import { ATTENTION_MAX_HEAD_DIM, ATTENTION_META_BYTES, attention, ropeTable } from '../../kernels/attention.js';
import { causalConv1d, CONV_KERNEL_SIZES } from '../../kernels/causal-conv1d.js';
import { MATMUL_SCRATCH_ELEMENTS, MATMUL_SCRATCH_KEY, matmul } from '../../kernels/matmul.js';
import type { Mixer, MixerBuild, MixerContext, MixerState } from '../../model/mixer.js';
import { attentionActivations, type ActivationBuffer } from '../../model/memory.js';
import { attentionDims, biasName, checkAttentionConfig, type AttentionConfig } from './config.js';
import { normedDecode, type BlockSteps } from './decode.js';

export interface AttentionMixer extends Mixer {
  /** KV-cache capacity in tokens: a sequence longer than this must be refused before it runs. */
  readonly capacity: number;
  readonly attention: AttentionConfig;
}

/** The conv weight of mamba_ssm MHA (dConv > 0), under the mixer prefix. */
export const ATTENTION_CONV_WEIGHT = 'conv1d.weight';

export function attentionMixer(build: MixerBuild, cfg: AttentionConfig): AttentionMixer {
  const l = build.layer;
  const what = `layer ${l} attention`;
  checkAttentionConfig(what, cfg);
  if (cfg.dConv > 0 && (cfg.dConv < CONV_KERNEL_SIZES.min || cfg.dConv > CONV_KERNEL_SIZES.max)) {
    throw new RangeError(`${what}: dConv ${cfg.dConv} is outside the conv kernel's ${CONV_KERNEL_SIZES.min}..${CONV_KERNEL_SIZES.max}`);
  }
  if (cfg.headDim > ATTENTION_MAX_HEAD_DIM) throw new RangeError(`${what}: headDim ${cfg.headDim} is over the kernels' ${ATTENTION_MAX_HEAD_DIM}`);
  const { qDim, kvDim, qkvDim } = attentionDims(cfg);
  const D = build.config.dModel;
  const w = build.weights;
  const projections = 'qkv' in cfg.names ? [{ name: cfg.names.qkv, rows: qkvDim, first: 0 }] : [
    { name: cfg.names.q, rows: qDim, first: 0 },
    { name: cfg.names.k, rows: kvDim, first: qDim },
    { name: cfg.names.v, rows: kvDim, first: qDim + kvDim },
  ];
  const needed = [...projections.map((p) => p.name), cfg.names.out, ...(cfg.dConv > 0 ? [ATTENTION_CONV_WEIGHT] : [])];
  for (const name of needed) if (!w.has(name)) throw new RangeError(`${what}: no weight ${name}`);
  const capacity = cfg.capacity;
  const T = build.maxTokens;
  // Sized by the memory plan's formulas (app/model/memory.ts), so that it counts these buffers exactly.
  const buffers = attentionActivations(cfg, T);
  const make = (a: ActivationBuffer) => build.activation(a.label, a.elements);
  const act = build.shared(`attention.activations.${buffers.key}`, () => ({
    qkv: make(buffers.qkv),
    conv: cfg.dConv > 0 ? make(buffers.conv) : null,
    q: make(buffers.q),
    k: make(buffers.k),
    out: make(buffers.out),
    partials: make(buffers.partials),
    scratch: T > 1 ? build.shared(MATMUL_SCRATCH_KEY, () => build.activation('matmulScratch', MATMUL_SCRATCH_ELEMENTS)) : undefined,
  }));
  const rope =
    cfg.rotaryDim > 0
      ? build.shared(`attention.rope.${capacity}.${cfg.rotaryDim}.${cfg.ropeTheta}`, () => {
          const table = ropeTable(capacity, cfg.rotaryDim, cfg.ropeTheta);
          const buffer = make(buffers.rope);
          build.ctx.device.queue.writeBuffer(buffer, 0, table);
          return buffer;
        })
      : null;
  const sizes = {
    keys: capacity * kvDim * 4,
    meta: ATTENTION_META_BYTES,
    mask: Math.ceil(capacity / 4) * 16,
    conv: cfg.dConv > 0 ? qkvDim * (cfg.dConv - 1) * 4 : 0,
  };

  const steps = (m: BlockSteps): void => {
    const { tokens, run, copy, taps } = m;
    if (tokens > capacity) throw new RangeError(`${what}: a chunk of ${tokens} tokens does not fit its KV cache of ${capacity} tokens`);
    const ctx = build.ctx;
    const [keys, values, meta, mask, convState] = m.state as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer | undefined];
    for (const p of projections) {
      run(
        matmul(
          ctx,
          { tokens, inFeatures: D, outFeatures: p.rows, yOffset: p.first, yStride: qkvDim, weightFormat: w.format(p.name) },
          { x: m.input, weight: w.weight(p.name), bias: w.optional(biasName(p.name)), y: act.qkv, scratch: act.scratch },
          `Attention.L${m.layer}.${p.name.replace(/\.weight$/, '')}`,
        ),
      );
    }
    const conv = act.conv;
    if (conv && convState) {
      run(
        causalConv1d(
          ctx,
          { tokens, channels: qkvDim, kernelSize: cfg.dConv, activation: 'none' },
          { x: act.qkv, weight: w.weight(ATTENTION_CONV_WEIGHT), bias: w.optional(biasName(ATTENTION_CONV_WEIGHT)), convState, output: conv },
          `Attention.L${m.layer}.conv1d`,
        ),
      );
    }
    attention(
      ctx,
      { tokens, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: cfg.headDim, capacity, rotaryDim: cfg.rotaryDim, interleaved: cfg.ropeInterleaved, scale: cfg.scale, knockRow: m.knockRow },
      { qkv: conv ?? act.qkv, rope, q: act.q, k: act.k, keys, values, meta, mask, output: act.out, partials: act.partials },
      `Attention.L${m.layer}`,
    ).forEach(run);
    copy(act.q, taps?.attnQ?.[m.layer], qDim * 4);
    copy(act.k, taps?.attnK?.[m.layer], kvDim * 4);
    const out = cfg.names.out;
    run(matmul(ctx, { tokens, inFeatures: qDim, outFeatures: D, accumulate: m.accumulate, weightFormat: w.format(out) }, { x: act.out, weight: w.weight(out), bias: w.optional(biasName(out)), y: m.output, scratch: act.scratch }, `Attention.L${m.layer}.out_proj`));
  };

  return {
    capacity,
    attention: cfg,
    trace: null,
    stateBytes: 2 * sizes.keys + sizes.meta + sizes.mask + sizes.conv,
    newState(): MixerState {
      const { device } = build.ctx;
      const name = (part: string) => `Attention.state.${part}.${l}`;
      return [
        storageBuffer(device, name('keys'), sizes.keys),
        storageBuffer(device, name('values'), sizes.keys),
        storageBuffer(device, name('meta'), sizes.meta),
        storageBuffer(device, name('mask'), sizes.mask),
        ...(cfg.dConv > 0 ? [storageBuffer(device, name('conv'), sizes.conv)] : []),
      ];
    },
    canFuseDecode: () => true,
    decodeTaps: [],
    encode: (m: MixerContext) => steps({ ...m, accumulate: false }),
    encodeDecode: normedDecode(build, 'Attention', steps),
    destroy(): void {},
  };
}
