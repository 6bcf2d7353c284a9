/**
 * CPU references of the attention ops (float64): RoPE, causal grouped-query attention over a KV
 * cache with masked keys, and the softmax probabilities. Written from the math (torch semantics:
 * F.scaled_dot_product_attention with is_causal; GQA as repeat_interleave of the kv heads, so q
 * head h reads kv head floor(h / (nHeads / nKvHeads)); HF rotate_half RoPE with
 * inv_freq[i] = theta^(−2i/rotaryDim)), not from the shaders.
 */

export interface RopeRefShape {
  rows: number;
  heads: number;
  headDim: number;
  /** Position of row 0 (row t is at start + t). */
  start: number;
  rotaryDim: number;
  theta: number;
  interleaved: boolean;
  /** Floats between rows (default heads·headDim) and the offset of row 0's head 0. */
  stride?: number;
  offset?: number;
}

/** Rotates the leading rotaryDim dims of every head of `x` ([rows, heads·headDim] after the view): a new [rows, heads·headDim] array. */
export function ropeRef(x: ArrayLike<number>, s: RopeRefShape): Float64Array {
  const width = s.heads * s.headDim;
  const stride = s.stride ?? width;
  const offset = s.offset ?? 0;
  const out = new Float64Array(s.rows * width);
  const half = s.rotaryDim / 2;
  for (let t = 0; t < s.rows; t++) {
    for (let h = 0; h < s.heads; h++) {
      const src = offset + t * stride + h * s.headDim;
      const dst = t * width + h * s.headDim;
      for (let d = 0; d < s.headDim; d++) out[dst + d] = x[src + d] as number;
      for (let i = 0; i < half; i++) {
        const angle = (s.start + t) * Math.pow(s.theta, (-2 * i) / s.rotaryDim);
        const [a, b] = s.interleaved ? [2 * i, 2 * i + 1] : [i, i + half];
        const x1 = x[src + a] as number;
        const x2 = x[src + b] as number;
        out[dst + a] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
        out[dst + b] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
      }
    }
  }
  return out;
}

export interface AttentionRefShape {
  /** Query rows T: the last T of the S keys (query t is at position S − T + t). */
  queries: number;
  /** Keys S (cached + new). */
  keys: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  scale: number;
}

/**
 * Causal attention: q [T, nHeads·hd], k and v [S, nKvHeads·hd]; query t (position p = S − T + t)
 * sees keys s ≤ p except those with mask[s] ≠ 0 and s < p (a masked key stays visible to its own
 * query, so no row is empty). Returns out [T, nHeads·hd] and probs [nHeads, T, S] (zeros where unseen).
 */
export function causalAttentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttentionRefShape, mask?: ArrayLike<number>): { out: Float64Array; probs: Float64Array } {
  const { queries: T, keys: S, nHeads: H, nKvHeads: Hkv, headDim: hd, scale } = s;
  const group = H / Hkv;
  const out = new Float64Array(T * H * hd);
  const probs = new Float64Array(H * T * S);
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const p = S - T + t;
      const scores: number[] = [];
      for (let j = 0; j <= p; j++) {
        if (j < p && mask && (mask[j] ?? 0) !== 0) {
          scores.push(-Infinity);
          continue;
        }
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += (q[t * H * hd + h * hd + d] as number) * (k[j * Hkv * hd + kv * hd + d] as number);
        scores.push(dot * scale);
      }
      const best = Math.max(...scores);
      const w = scores.map((x) => Math.exp(x - best));
      const total = w.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= p; j++) {
        const pr = (w[j] as number) / total;
        probs[(h * T + t) * S + j] = pr;
        for (let d = 0; d < hd; d++) out[t * H * hd + h * hd + d] = (out[t * H * hd + h * hd + d] as number) + pr * (v[j * Hkv * hd + kv * hd + d] as number);
      }
    }
  }
  return { out, probs };
}
