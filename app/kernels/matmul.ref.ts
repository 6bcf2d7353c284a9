/** CPU reference of matmul (float64 accumulation). */
export interface MatmulRefView {
  offset: number;
  stride: number;
}

/**
 * Y[t, o] = Σ_i X[t, i]·W[o, i] + bias[o] (+ yIn[t, o] when `yIn` is given, i.e. accumulate).
 * X is read through the view `xView` of `x`; the result is dense [T, O].
 */
export function matmulRef(
  x: Float32Array,
  xView: MatmulRefView,
  weight: Float32Array,
  bias: Float32Array | null,
  tokens: number,
  inFeatures: number,
  outFeatures: number,
  yIn: Float64Array | null = null,
): Float64Array {
  const y = new Float64Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    const xRow = xView.offset + t * xView.stride;
    for (let o = 0; o < outFeatures; o++) {
      const wRow = o * inFeatures;
      let sum = bias ? (bias[o] ?? 0) : 0;
      for (let i = 0; i < inFeatures; i++) sum += (x[xRow + i] ?? 0) * (weight[wRow + i] ?? 0);
      if (yIn) sum += yIn[t * outFeatures + o] ?? 0;
      y[t * outFeatures + o] = sum;
    }
  }
  return y;
}
