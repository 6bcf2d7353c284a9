/** CPU reference of gated-rmsnorm (float64 accumulation). */
import { siluRef } from './selective-scan.ref.js';

/**
 * out[t, c] = v · (mean over c's group of v² + eps)^−½ · weight[c], v = y[t, c] · silu(z[t, c]),
 * groups of `groupSize` consecutive channels; z[t, c] = z[zOffset + t·zStride + c].
 */
export function gatedRmsNormRef(
  y: ArrayLike<number>,
  z: ArrayLike<number>,
  zOffset: number,
  zStride: number,
  weight: ArrayLike<number>,
  rows: number,
  cols: number,
  groupSize: number,
  eps: number,
): Float64Array {
  const out = new Float64Array(rows * cols);
  const v = new Float64Array(groupSize);
  for (let r = 0; r < rows; r++) {
    for (let first = 0; first < cols; first += groupSize) {
      let sumSq = 0;
      for (let i = 0; i < groupSize; i++) {
        const c = first + i;
        const value = (y[r * cols + c] as number) * siluRef(z[zOffset + r * zStride + c] as number);
        v[i] = value;
        sumSq += value * value;
      }
      const scale = 1 / Math.sqrt(sumSq / groupSize + eps);
      for (let i = 0; i < groupSize; i++) {
        const c = first + i;
        out[r * cols + c] = (v[i] as number) * scale * (weight[c] as number);
      }
    }
  }
  return out;
}
