/** CPU reference of causal-conv1d (float64 accumulation). */
export interface CausalConv1dRefResult {
  /** [T, C] silu(bias + depthwise causal conv). */
  output: Float64Array;
  /** [C, K-1] the last K-1 inputs of every channel after the call. */
  state: Float64Array;
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/**
 * out[t, d] = silu(bias[d] + Σ_k w[d, k] · xin(t - (K-1) + k, d)), xin(s, d) = x[s, d] for s ≥ 0,
 * state[d, K-1 + s] for s < 0 (no silu with activation 'none'). x is read through the view (offset, stride); `state` [C, K-1] is
 * the conv state before the call (null: zeros, the start of a sequence).
 */
export function causalConv1dRef(
  x: ArrayLike<number>,
  xView: { offset: number; stride: number },
  weight: Float32Array,
  bias: Float32Array | null,
  state: ArrayLike<number> | null,
  tokens: number,
  channels: number,
  kernelSize: number,
  activation: 'silu' | 'none' = 'silu',
): CausalConv1dRefResult {
  const K = kernelSize;
  const history = K - 1;
  const xin = (s: number, d: number): number =>
    s >= 0 ? (x[xView.offset + s * xView.stride + d] ?? 0) : state ? (state[d * history + history + s] ?? 0) : 0;
  const output = new Float64Array(tokens * channels);
  const next = new Float64Array(channels * history);
  for (let d = 0; d < channels; d++) {
    for (let t = 0; t < tokens; t++) {
      let acc = bias ? (bias[d] ?? 0) : 0;
      for (let k = 0; k < K; k++) acc += (weight[d * K + k] ?? 0) * xin(t - history + k, d);
      output[t * channels + d] = activation === 'silu' ? silu(acc) : acc;
    }
    for (let j = 0; j < history; j++) next[d * history + j] = xin(tokens - history + j, d);
  }
  return { output, state: next };
}
