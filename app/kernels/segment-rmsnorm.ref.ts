/** CPU reference of segment-rmsnorm (float64): each segment of each row divided by sqrt(mean square + eps). */
export function segmentRmsNormRef(x: ArrayLike<number>, rows: number, rowStride: number, bounds: readonly number[], eps: number): Float64Array {
  const out = Float64Array.from(x);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s + 1 < bounds.length; s++) {
      const start = r * rowStride + (bounds[s] as number);
      const end = r * rowStride + (bounds[s + 1] as number);
      let sumSq = 0;
      for (let i = start; i < end; i++) sumSq += (out[i] as number) ** 2;
      const scale = 1 / Math.sqrt(sumSq / (end - start) + eps);
      for (let i = start; i < end; i++) out[i] = (out[i] as number) * scale;
    }
  }
  return out;
}
