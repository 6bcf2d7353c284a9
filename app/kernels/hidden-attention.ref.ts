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
  return hiddenAttentionWithBound(delta, b, c, aLog, tokens, dInner, dState, channel).alpha;
}

/**
 * α as hiddenAttentionRef, and per element the size of the fp32 rounding error an evaluation of
 * its sum can carry (float64, for tests): each term C·exp(A·gap)·Δ·B enters with its magnitude
 * times (2·|A·gap| + 8 + N + channels) — exp's relative error grows with its argument, whose own
 * is ~ε after the kernel's two-word prefix sums; three products; a sum over N states and the
 * channels — so that |α_fp32 − α| ≲ ε·bound with ε = 2⁻²⁴. A signed sum's rounding is relative to
 * its terms, not to its (possibly cancelled) value.
 */
export function hiddenAttentionWithBound(
  delta: Float32Array,
  b: Float32Array,
  c: Float32Array,
  aLog: Float32Array,
  tokens: number,
  dInner: number,
  dState: number,
  channel: HiddenAttentionChannel,
): { alpha: Float64Array; bound: Float64Array } {
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
  const bound = new Float64Array(T * T);
  const terms = 8 + N + (d1 - d0);
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) {
      let total = 0;
      let size = 0;
      for (let d = d0; d < d1; d++) {
        const gap = (s[i * Di + d] ?? 0) - (s[j * Di + d] ?? 0);
        const dj = delta[j * Di + d] ?? 0;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const a = -Math.exp(aLog[d * N + n] ?? 0);
          const term = (c[i * N + n] ?? 0) * Math.exp(a * gap) * (b[j * N + n] ?? 0);
          acc += term;
          size += Math.abs(term * dj) * (2 * Math.abs(a * gap) + terms);
        }
        total += acc * dj;
      }
      alpha[i * T + j] = total / (d1 - d0);
      bound[i * T + j] = size / (d1 - d0);
    }
  }
  return { alpha, bound };
}
