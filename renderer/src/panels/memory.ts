/**
 * Pure functions behind the B/C and memory panels: per-token norms of [T, N] rows, the retention
 * of a token j at later tokens i in one layer — mean over (d, n) of exp(A[d, n]·(S_i[d] − S_j[d]))
 * with S the prefix sum of Δ over tokens, i.e. how much of what token j wrote into the state is
 * still there after the decays of tokens j+1..i — and its half-life.
 */

/** ‖row_t‖₂ of each row of a [T, width] row-major matrix. */
export function rowNorms(data: ArrayLike<number>, width: number): Float64Array {
  if (!(Number.isInteger(width) && width > 0) || data.length % width !== 0) {
    throw new RangeError(`rowNorms: ${data.length} values are not whole rows of ${width}`);
  }
  const T = data.length / width;
  const out = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let sq = 0;
    for (let k = 0; k < width; k++) {
      const v = data[t * width + k] as number;
      sq += v * v;
    }
    out[t] = Math.sqrt(sq);
  }
  return out;
}

/**
 * Retention of token j at every token i: NaN for i < j, 1 at i = j, then
 * mean over (d, n) of exp(A[d, n]·(S_i[d] − S_j[d])) where S_i − S_j = Δ_{j+1} + … + Δ_i.
 * `delta` is [T, Di] row-major, `A` is [Di, N] row-major (A = −exp(A_log) < 0).
 */
export function retention(delta: ArrayLike<number>, A: ArrayLike<number>, dInner: number, dState: number, j: number): Float64Array {
  const Di = dInner;
  const N = dState;
  if (!(Number.isInteger(Di) && Di > 0 && Number.isInteger(N) && N > 0) || delta.length % Di !== 0 || A.length !== Di * N) {
    throw new RangeError(`retention: Δ has ${delta.length} values and A ${A.length}, not [T, ${Di}] and [${Di}, ${N}]`);
  }
  const T = delta.length / Di;
  if (!(Number.isInteger(j) && j >= 0 && j < T)) throw new RangeError(`retention: no token ${j} (there are ${T})`);
  const out = new Float64Array(T).fill(NaN);
  out[j] = 1;
  const gap = new Float64Array(Di); // S_i − S_j per channel
  for (let i = j + 1; i < T; i++) {
    let sum = 0;
    for (let d = 0; d < Di; d++) {
      const g = (gap[d] as number) + (delta[i * Di + d] as number);
      gap[d] = g;
      for (let n = 0; n < N; n++) sum += Math.exp((A[d * N + n] as number) * g);
    }
    out[i] = sum / (Di * N);
  }
  return out;
}

/** The first token i > j whose retention of j is ≤ `level` (0.5: the half-life), or null: beyond the sequence. */
export function halfLife(curve: ArrayLike<number>, j: number, level = 0.5): { token: number; tokens: number } | null {
  for (let i = j + 1; i < curve.length; i++) if ((curve[i] as number) <= level) return { token: i, tokens: i - j };
  return null;
}
