/** CPU reference of selective-scan: a plain sequential loop over tokens in float64. */

/** softplus(v) = v when v > 20, else log(1 + e^v). */
export function softplusRef(v: number): number {
  return v > 20 ? v : Math.log1p(Math.exp(v));
}

export function siluRef(v: number): number {
  return v / (1 + Math.exp(-v));
}

export interface SelectiveScanRefInputs {
  tokens: number; // T
  dInner: number; // Di
  dState: number; // N
  x: ArrayLike<number>; // [T, Di]
  dtRaw: ArrayLike<number>; // [T, Di]
  dtBias: ArrayLike<number>; // [Di]
  aLog: ArrayLike<number>; // [Di, N]
  d: ArrayLike<number>; // [Di]
  /** B[t, n] = bc[bOffset + t·bcStride + n], C[t, n] = bc[cOffset + t·bcStride + n]. */
  bc: ArrayLike<number>;
  bOffset: number;
  cOffset: number;
  bcStride: number;
  /** z[t, d] = z[zOffset + t·zStride + d]. */
  z: ArrayLike<number>;
  zOffset: number;
  zStride: number;
  /** [Di, N] state before the first token (zeros at sequence start). */
  state: ArrayLike<number>;
}

export function selectiveScanRef(i: SelectiveScanRefInputs): { y: Float64Array; state: Float64Array; delta: Float64Array } {
  const { tokens: T, dInner: Di, dState: N } = i;
  const at = (a: ArrayLike<number>, k: number): number => a[k] as number;
  const state = Float64Array.from({ length: Di * N }, (_, k) => at(i.state, k));
  const y = new Float64Array(T * Di);
  const delta = new Float64Array(T * Di);
  for (let t = 0; t < T; t++) {
    for (let d = 0; d < Di; d++) {
      const dt = softplusRef(at(i.dtRaw, t * Di + d) + at(i.dtBias, d));
      delta[t * Di + d] = dt;
      const xv = at(i.x, t * Di + d);
      let sum = 0;
      for (let n = 0; n < N; n++) {
        const a = -Math.exp(at(i.aLog, d * N + n));
        const s = Math.exp(dt * a) * (state[d * N + n] as number) + dt * at(i.bc, i.bOffset + t * i.bcStride + n) * xv;
        state[d * N + n] = s;
        sum += s * at(i.bc, i.cOffset + t * i.bcStride + n);
      }
      y[t * Di + d] = (sum + at(i.d, d) * xv) * siluRef(at(i.z, i.zOffset + t * i.zStride + d));
    }
  }
  return { y, state, delta };
}
