/**
 * float64 references of the hybrid blocks' mixers (app/model/reference.ts MixerRef), written from
 * the math with torch's semantics: attention = F.scaled_dot_product_attention(is_causal) with
 * GQA as repeat_interleave of the kv heads, HF rotate_half RoPE (or interleaved pairs) with
 * inv_freq = θ^(−2i/rotaryDim), mamba_ssm MHA's conv1d = depthwise causal conv with bias, no
 * activation; MLP = up → act (· up half when gated) → down. The knockout (knockToken ≥ 0) masks
 * that token's key for every later query of the attention layer; MLP layers ignore it.
 * Taps: attention `attnProbs` [nHeads, T, T] (zeros above the diagonal and on masked keys).
 */
import { causalConv1dRef } from '../../kernels/causal-conv1d.ref.js';
import { causalAttentionRef, ropeRef } from '../../kernels/attention.ref.js';
import { mlpActRef } from '../../kernels/mlp-act.ref.js';
import { linear, need, type MixerRef } from '../../model/reference.js';
import { attentionDims, biasName, type AttentionConfig, type MlpConfig } from './config.js';

export function attentionRef(cfg: AttentionConfig): MixerRef {
  return ({ config, weights, mixer, input, tokens: T, knockToken }) => {
    const D = config.dModel;
    const { qDim, kvDim, qkvDim } = attentionDims(cfg);
    const proj = (name: string, rows: number) => linear(input, T, D, need(weights, mixer + name), rows, weights(mixer + biasName(name)));
    let qkv: Float64Array;
    if ('qkv' in cfg.names) qkv = proj(cfg.names.qkv, qkvDim);
    else {
      const parts = [proj(cfg.names.q, qDim), proj(cfg.names.k, kvDim), proj(cfg.names.v, kvDim)];
      qkv = new Float64Array(T * qkvDim);
      for (let t = 0; t < T; t++) {
        let at = t * qkvDim;
        for (const [i, part] of parts.entries()) {
          const width = i === 0 ? qDim : kvDim;
          qkv.set(part.subarray(t * width, (t + 1) * width), at);
          at += width;
        }
      }
    }
    if (cfg.dConv > 0) {
      const bias = weights(`${mixer}conv1d.bias`) ?? null;
      qkv = causalConv1dRef(qkv, { offset: 0, stride: qkvDim }, need(weights, `${mixer}conv1d.weight`), bias, null, T, qkvDim, cfg.dConv, 'none').output;
    }
    const rope = (offset: number, heads: number) =>
      ropeRef(qkv, { rows: T, heads, headDim: cfg.headDim, start: 0, rotaryDim: cfg.rotaryDim, theta: cfg.ropeTheta, interleaved: cfg.ropeInterleaved, stride: qkvDim, offset });
    const q = rope(0, cfg.nHeads);
    const k = rope(qDim, cfg.nKvHeads);
    const v = new Float64Array(T * kvDim);
    for (let t = 0; t < T; t++) v.set(qkv.subarray(t * qkvDim + qDim + kvDim, (t + 1) * qkvDim), t * kvDim);
    const mask = new Uint8Array(T);
    if (knockToken >= 0) mask[knockToken] = 1;
    const { out, probs } = causalAttentionRef(q, k, v, { queries: T, keys: T, nHeads: cfg.nHeads, nKvHeads: cfg.nKvHeads, headDim: cfg.headDim, scale: cfg.scale }, mask);
    const output = linear(out, T, qDim, need(weights, mixer + cfg.names.out), D, weights(mixer + biasName(cfg.names.out)));
    return { output, taps: { attnProbs: probs } };
  };
}

export function mlpRef(cfg: MlpConfig): MixerRef {
  return ({ config, weights, mixer, input, tokens: T }) => {
    const D = config.dModel;
    const I = cfg.intermediate;
    const { up, down, gate } = cfg.names;
    let h: Float64Array;
    if (cfg.gated && gate) {
      // Separate matrices: the row is [gate | up] (gateFirst) or [up | gate].
      const g = linear(input, T, D, need(weights, mixer + gate), I, weights(mixer + biasName(gate)));
      const u = linear(input, T, D, need(weights, mixer + up), I, weights(mixer + biasName(up)));
      h = new Float64Array(T * 2 * I);
      for (let t = 0; t < T; t++) {
        h.set(g.subarray(t * I, (t + 1) * I), t * 2 * I + (cfg.gateFirst ? 0 : I));
        h.set(u.subarray(t * I, (t + 1) * I), t * 2 * I + (cfg.gateFirst ? I : 0));
      }
    } else {
      h = linear(input, T, D, need(weights, mixer + up), cfg.gated ? 2 * I : I, weights(mixer + biasName(up)));
    }
    const a = mlpActRef(h, { tokens: T, intermediate: I, activation: cfg.activation, gated: cfg.gated, gateFirst: cfg.gateFirst });
    return { output: linear(a, T, I, need(weights, mixer + down), D, weights(mixer + biasName(down))), taps: {} };
  };
}
