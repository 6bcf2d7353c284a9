/**
 * CPU reference of hidden-attention (float64): Mamba-1's implicit attention matrix of one layer,
 * α[i, j] = Σ_n C[i, n] · exp(A[d, n] · (S[i, d] − S[j, d])) · Δ[j, d] · B[j, n] for j ≤ i (0 above
 * the diagonal), S = prefix sum of Δ over tokens, A = −exp(A_log); one channel d or the mean over d.
 */
import type { HiddenAttentionChannel } from './hidden-attention.js';

/** α [T, T] row-major. delta [T, Di], b and c [T, N], aLog [Di, N]. */
export function hiddenAttentionRef(
  delta: Float32Array,
  b: Float32Array,
  c: Float32Array,
  aLog: Float32Array,
  tokens: number,
  dInner: number,
  dState: number,
  channel: HiddenAttentionChannel,
): Float64Array {
  const T = tokens;
  const Di = dInner;
  const N = dState;
  const s = new Float64Array(T * Di);
  for (let d = 0; d < Di; d++) {
    let sum = 0;
    for (let t = 0; t < T; t++) {
      sum += delta[t * Di + d] ?? 0;
      s[t * Di + d] = sum;
    }
  }
  const [d0, d1] = channel === 'mean' ? [0, Di] : [channel, channel + 1];
  const alpha = new Float64Array(T * T);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) {
      let total = 0;
      for (let d = d0; d < d1; d++) {
        const gap = (s[i * Di + d] ?? 0) - (s[j * Di + d] ?? 0);
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const a = -Math.exp(aLog[d * N + n] ?? 0);
          acc += (c[i * N + n] ?? 0) * Math.exp(a * gap) * (b[j * N + n] ?? 0);
        }
        total += acc * (delta[j * Di + d] ?? 0);
      }
      alpha[i * T + j] = total / (d1 - d0);
    }
  }
  return alpha;
}
